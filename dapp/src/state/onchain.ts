// On-chain pieces of the chat: anchored-message proofs (from the node) and the wallet's view of
// the contracts the node names in GET /v1/info (tips, paid rooms).

import { ApiError, type NodeClient } from "../api/client";
import type { NodeInfo, ProofReply } from "../api/types";
import type { ChainClient } from "../chain/contracts";
import { discoverWallets } from "../wallet/discovery";
import { Wallet, WalletError, chainName } from "../wallet/wallet";

export type Contracts = NodeInfo["contracts"][number];

/** What this device knows of a message's anchoring. */
export type ProofState = { state: "anchored"; proof: ProofReply } | { state: "pending" } | { state: "none" };

/** How many of a room's newest messages are checked for a proof. */
const PROOF_WINDOW = 12;
const PROOF_RECHECK_MS = 5_000;

export class OnChain {
  private proofs = new Map<string, ProofState & { checkedAt: number; tries?: number }>();
  private queue: string[] = [];
  private running = false;
  /** The node does not anchor: stop asking. */
  private disabled = false;
  private chainClient: Promise<ChainClient> | undefined;

  constructor(
    private readonly client: NodeClient,
    private readonly self: `0x${string}`,
    private readonly changed: () => void,
    public wallet?: Wallet,
  ) {}

  proof(id: string): ProofState | undefined {
    return this.proofs.get(id.toLowerCase());
  }

  /** Asks the node about the newest messages of a room that are not known to be anchored yet. */
  checkProofs(ids: string[]): void {
    if (this.disabled) return;
    const now = Date.now();
    for (const raw of ids.slice(-PROOF_WINDOW)) {
      const id = raw.toLowerCase();
      const p = this.proofs.get(id);
      if (p?.state === "anchored" || p?.state === "none") continue;
      // Not anchored yet: ask again later and later (a message relayed from another node is never
      // anchored by this one).
      if (p && now - p.checkedAt < Math.min(PROOF_RECHECK_MS * 2 ** ((p.tries ?? 1) - 1), 300_000)) continue;
      if (!this.queue.includes(id)) this.queue.push(id);
    }
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let id = this.queue.shift(); id && !this.disabled; id = this.queue.shift()) {
        try {
          const proof = await this.client.proof(id);
          this.proofs.set(id, { state: "anchored", proof, checkedAt: Date.now() });
          this.changed();
        } catch (err) {
          if (err instanceof ApiError && err.code === "anchoring_disabled") this.disabled = true;
          else if (err instanceof ApiError && err.code === "message_not_found") this.proofs.set(id, { state: "none", checkedAt: Date.now() });
          else this.proofs.set(id, { state: "pending", checkedAt: Date.now(), tries: (this.proofs.get(id)?.tries ?? 0) + 1 });
        }
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * The wallet, on a chain where the node names dchat's contracts (switching when needed), as the
   * signed-in account. After a reload the sign-in wallet is found again (EIP-6963 or window.ethereum).
   */
  async connect(info: NodeInfo | undefined, chainId?: number): Promise<{ chain: ChainClient; contracts: Contracts }> {
    const all = info?.contracts ?? [];
    if (all.length === 0) throw new WalletError("other", "This node names no payment contracts.");
    const chain = await (this.chainClient ??= this.open().catch((err) => {
      this.chainClient = undefined;
      throw err;
    }));
    let current = await chain.chainId();
    let contracts = all.find((c) => c.chain_id === (chainId ?? current));
    if (!contracts || current !== contracts.chain_id) {
      const target = contracts ?? all[0]!;
      await (this.wallet ?? new Wallet(chain.provider)).switchChain(target.chain_id);
      current = await chain.chainId();
      if (current !== target.chain_id) throw new WalletError("unknown_chain", `Switch your wallet to ${chainName(target.chain_id)} to pay.`);
      contracts = target;
    }
    return { chain, contracts };
  }

  private async open(): Promise<ChainClient> {
    let wallet = this.wallet;
    if (!wallet) {
      const found = await new Promise<Wallet | undefined>((resolve) => {
        let stop = () => undefined as void;
        const timer = setTimeout(() => {
          stop();
          resolve(undefined);
        }, 1_000);
        stop = discoverWallets((ws) => {
          if (ws.length === 0) return;
          clearTimeout(timer);
          setTimeout(() => stop(), 0);
          resolve(new Wallet(ws[0]!.provider));
        });
      });
      if (!found) throw new WalletError("other", "No wallet found in this browser.");
      wallet = found;
      this.wallet = wallet;
    }
    const account = await wallet.connect();
    if (account.toLowerCase() !== this.self.toLowerCase()) {
      throw new WalletError("other", `Your wallet is on account ${account}; switch it to ${this.self}, the account you signed in with.`);
    }
    const { ChainClient } = await import("../chain/contracts");
    return new ChainClient(wallet.provider, account);
  }
}
