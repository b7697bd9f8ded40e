// dchat's contracts through the user's wallet (EIP-1193): tips and paid-room subscriptions on
// `Payments`, anchored roots on `MessageAnchor` (docs/contracts.md). Reads go through the
// wallet's `eth_call`, so the dApp needs no RPC URL of its own.

import { decodeFunctionResult, encodeFunctionData, type EIP1193Provider } from "viem";
import type { Hex } from "../lib/bytes";
import { WalletError } from "../wallet/wallet";
import { TxRevertedError } from "./util";

export { TxRevertedError };

// JSON ABIs of the functions used (a human-readable ABI would pull viem's ABI parser into the bundle).
const p = <N extends string, T extends string>(name: N, type: T) => ({ name, type });
export const PAYMENTS_ABI = [
  { type: "function", name: "tip", stateMutability: "payable", inputs: [p("to", "address"), p("messageHash", "bytes32")], outputs: [] },
  { type: "function", name: "subscribe", stateMutability: "payable", inputs: [p("room", "bytes32"), p("periods", "uint32")], outputs: [p("expiry", "uint64")] },
  {
    type: "function",
    name: "roomInfo",
    stateMutability: "view",
    inputs: [p("room", "bytes32")],
    outputs: [{ name: "", type: "tuple", components: [p("owner", "address"), p("periodSeconds", "uint64"), p("token", "address"), p("pricePerPeriod", "uint256")] }],
  },
  { type: "function", name: "subscriptionExpiry", stateMutability: "view", inputs: [p("room", "bytes32"), p("subscriber", "address")], outputs: [p("", "uint64")] },
  { type: "function", name: "registerRoom", stateMutability: "nonpayable", inputs: [p("room", "bytes32")], outputs: [] },
  {
    type: "function",
    name: "setRoomPrice",
    stateMutability: "nonpayable",
    inputs: [p("room", "bytes32"), p("token", "address"), p("pricePerPeriod", "uint256"), p("periodSeconds", "uint64")],
    outputs: [],
  },
] as const;

export const ANCHOR_ABI = [
  {
    type: "function",
    name: "anchorOf",
    stateMutability: "view",
    inputs: [p("anchorer", "address"), p("root", "bytes32")],
    outputs: [{ name: "record", type: "tuple", components: [p("count", "uint64"), p("timestamp", "uint64"), p("blockNumber", "uint64")] }],
  },
  {
    type: "function",
    name: "verify",
    stateMutability: "view",
    inputs: [p("anchorer", "address"), p("root", "bytes32"), p("messageHash", "bytes32"), p("proof", "bytes32[]")],
    outputs: [p("", "bool")],
  },
  {
    type: "function",
    name: "verifyFromActiveNode",
    stateMutability: "view",
    inputs: [p("anchorer", "address"), p("root", "bytes32"), p("messageHash", "bytes32"), p("proof", "bytes32[]")],
    outputs: [p("", "bool")],
  },
] as const;

/** What `MessageAnchor` says about an anchored message (docs/contracts.md#messageanchor). */
export interface AnchorCheck {
  /** `verify(anchorer, root, id, proof)`: the anchorer anchored the root and it holds the message. */
  included: boolean;
  /** `verifyFromActiveNode`: that, and the anchorer runs an active node in NodeRegistry now. */
  activeNode: boolean;
  /** Block of the anchoring (0 when the anchorer never anchored the root). */
  block: bigint;
  /** Its time, Unix seconds. */
  timestamp: bigint;
}

export const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

/** A paid room's terms on chain. */
export interface RoomTerms {
  owner: string;
  periodSeconds: bigint;
  token: string;
  pricePerPeriod: bigint;
}

function walletError(err: unknown): WalletError {
  if (err instanceof WalletError) return err;
  let e: unknown = err;
  for (let i = 0; i < 6 && e && typeof e === "object"; i++) {
    const code = (e as { code?: unknown }).code;
    if (code === 4001) return new WalletError("rejected", "The request was rejected in the wallet.");
    e = (e as { cause?: unknown }).cause;
  }
  const msg = (err as { message?: string })?.message ?? "wallet error";
  if (/insufficient funds/i.test(msg)) return new WalletError("other", "The wallet does not hold enough ETH for this payment and its gas.");
  return new WalletError("other", msg);
}

export class ChainClient {
  constructor(
    readonly provider: EIP1193Provider,
    readonly account: `0x${string}`,
  ) {}

  private async request<T>(method: string, params: unknown[]): Promise<T> {
    try {
      return (await (this.provider.request as (a: { method: string; params: unknown[] }) => Promise<unknown>)({ method, params })) as T;
    } catch (err) {
      throw walletError(err);
    }
  }

  async chainId(): Promise<number> {
    return Number(await this.request<string>("eth_chainId", []));
  }

  async call(to: string, data: Hex): Promise<Hex> {
    return this.request<Hex>("eth_call", [{ to, data }, "latest"]);
  }

  /** Sends a transaction from the wallet and waits until it is mined (bounded). */
  async send(to: string, data: Hex, value: bigint, onHash?: (hash: Hex) => void): Promise<{ hash: Hex; block: number }> {
    const tx: Record<string, string> = { from: this.account, to, data };
    if (value > 0n) tx.value = `0x${value.toString(16)}`;
    const hash = await this.request<Hex>("eth_sendTransaction", [tx]);
    onHash?.(hash);
    for (let i = 0; i < 240; i++) {
      const receipt = await this.request<{ status: string; blockNumber: string } | null>("eth_getTransactionReceipt", [hash]);
      if (receipt) {
        if (receipt.status !== "0x1") throw new TxRevertedError(hash);
        return { hash, block: Number(receipt.blockNumber) };
      }
      await new Promise((r) => setTimeout(r, i < 20 ? 250 : 1000));
    }
    throw new WalletError("other", `The transaction ${hash} was not mined in time; check it in your wallet.`);
  }

  tip(payments: string, to: string, messageId: Hex, wei: bigint, onHash?: (hash: Hex) => void) {
    const data = encodeFunctionData({ abi: PAYMENTS_ABI, functionName: "tip", args: [to as `0x${string}`, messageId] });
    return this.send(payments, data, wei, onHash);
  }

  async roomTerms(payments: string, room: Hex): Promise<RoomTerms> {
    const data = encodeFunctionData({ abi: PAYMENTS_ABI, functionName: "roomInfo", args: [room] });
    const r = decodeFunctionResult({ abi: PAYMENTS_ABI, functionName: "roomInfo", data: await this.call(payments, data) });
    return { owner: r.owner, periodSeconds: r.periodSeconds, token: r.token, pricePerPeriod: r.pricePerPeriod };
  }

  async subscriptionExpiry(payments: string, room: Hex): Promise<number> {
    const data = encodeFunctionData({ abi: PAYMENTS_ABI, functionName: "subscriptionExpiry", args: [room, this.account] });
    return Number(decodeFunctionResult({ abi: PAYMENTS_ABI, functionName: "subscriptionExpiry", data: await this.call(payments, data) }));
  }

  subscribe(payments: string, room: Hex, periods: number, wei: bigint, onHash?: (hash: Hex) => void) {
    const data = encodeFunctionData({ abi: PAYMENTS_ABI, functionName: "subscribe", args: [room, periods] });
    return this.send(payments, data, wei, onHash);
  }

  registerRoom(payments: string, room: Hex) {
    return this.send(payments, encodeFunctionData({ abi: PAYMENTS_ABI, functionName: "registerRoom", args: [room] }), 0n);
  }

  setRoomPrice(payments: string, room: Hex, wei: bigint, periodSeconds: bigint) {
    const data = encodeFunctionData({ abi: PAYMENTS_ABI, functionName: "setRoomPrice", args: [room, ZERO_ADDRESS, wei, periodSeconds] });
    return this.send(payments, data, 0n);
  }

  /** Asks `MessageAnchor` whether `anchorer` anchored `root` with `id` in it, and whether it runs an active node. */
  async checkAnchor(anchor: string, anchorer: string, root: Hex, id: Hex, proof: Hex[]): Promise<AnchorCheck> {
    const who = anchorer as `0x${string}`;
    const verifyData = encodeFunctionData({ abi: ANCHOR_ABI, functionName: "verify", args: [who, root, id, proof] });
    const activeData = encodeFunctionData({ abi: ANCHOR_ABI, functionName: "verifyFromActiveNode", args: [who, root, id, proof] });
    const recordData = encodeFunctionData({ abi: ANCHOR_ABI, functionName: "anchorOf", args: [who, root] });
    const [verified, active, recorded] = await Promise.all([this.call(anchor, verifyData), this.call(anchor, activeData), this.call(anchor, recordData)]);
    const included = decodeFunctionResult({ abi: ANCHOR_ABI, functionName: "verify", data: verified });
    const activeNode = decodeFunctionResult({ abi: ANCHOR_ABI, functionName: "verifyFromActiveNode", data: active });
    const record = decodeFunctionResult({ abi: ANCHOR_ABI, functionName: "anchorOf", data: recorded });
    return { included, activeNode, block: record.blockNumber, timestamp: record.timestamp };
  }
}

