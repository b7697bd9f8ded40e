// Talking to a wallet (EIP-1193) through viem.

import { createClient, custom, getAddress, type EIP1193Provider } from "viem";
import { getChainId, requestAddresses, signMessage, switchChain } from "viem/actions";

/** What went wrong with a wallet request, for the UI. */
export type WalletFailure = "rejected" | "unknown_chain" | "pending" | "other";

/** Thrown by the wallet functions; `kind` says how to present it. */
export class WalletError extends Error {
  override name = "WalletError";
  constructor(
    readonly kind: WalletFailure,
    message: string,
  ) {
    super(message);
  }
}

/** EIP-1193 / EIP-1474 error codes, found on the error or anywhere in its causes. */
function providerCode(err: unknown): number | undefined {
  let e: unknown = err;
  for (let i = 0; i < 8 && e && typeof e === "object"; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "number") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function toWalletError(err: unknown): WalletError {
  if (err instanceof WalletError) return err;
  const code = providerCode(err);
  const msg = (err as { shortMessage?: string; message?: string })?.shortMessage ?? (err as Error)?.message ?? "wallet error";
  if (code === 4001) return new WalletError("rejected", "The request was rejected in the wallet.");
  if (code === 4902) return new WalletError("unknown_chain", "The wallet does not know this network.");
  if (code === -32002) return new WalletError("pending", "The wallet already has a request open: finish it in the wallet.");
  return new WalletError("other", msg);
}

export class Wallet {
  private readonly client;

  constructor(readonly provider: EIP1193Provider) {
    // A bare client with only the actions used here keeps the bundle small.
    this.client = createClient({ transport: custom(provider) });
  }

  /** Asks the wallet for its accounts; returns the first, EIP-55 checksummed. */
  async connect(): Promise<`0x${string}`> {
    try {
      const [address] = await requestAddresses(this.client);
      if (!address) throw new WalletError("other", "The wallet returned no account.");
      return getAddress(address);
    } catch (err) {
      throw toWalletError(err);
    }
  }

  async chainId(): Promise<number> {
    try {
      return await getChainId(this.client);
    } catch (err) {
      throw toWalletError(err);
    }
  }

  async switchChain(id: number): Promise<void> {
    try {
      await switchChain(this.client, { id });
    } catch (err) {
      throw toWalletError(err);
    }
  }

  /** EIP-191 personal_sign of `message`. */
  async signMessage(address: `0x${string}`, message: string): Promise<`0x${string}`> {
    try {
      return await signMessage(this.client, { account: address, message });
    } catch (err) {
      throw toWalletError(err);
    }
  }

  /** Follows account and chain changes; returns a function that stops. */
  watch(handlers: { accounts?(a: string[]): void; chain?(id: number): void }): () => void {
    const onAccounts = (a: string[]) => handlers.accounts?.(a);
    const onChain = (id: string) => handlers.chain?.(Number(id));
    this.provider.on?.("accountsChanged", onAccounts);
    this.provider.on?.("chainChanged", onChain);
    return () => {
      this.provider.removeListener?.("accountsChanged", onAccounts);
      this.provider.removeListener?.("chainChanged", onChain);
    };
  }
}

/** Names of the chains a node is likely to accept (the UI shows ids it does not know). */
const CHAIN_NAMES: Record<number, string> = {
  1: "Ethereum",
  10: "OP Mainnet",
  137: "Polygon",
  8453: "Base",
  42161: "Arbitrum One",
  11155111: "Sepolia",
  84532: "Base Sepolia",
  31337: "Local (Anvil)",
};

export function chainName(id: number): string {
  return CHAIN_NAMES[id] ?? `Chain ${id}`;
}
