// Per-message on-chain parts: the "anchored" badge with its Merkle proof and transaction, and
// tipping the sender through the wallet.

import { useState } from "react";
import { describeAnchorCheck, formatEth, parseEth, proofRoot, TxRevertedError } from "../chain/util";
import { describeError } from "../lib/errors";
import type { ChatMessage, ChatStore } from "../state/chat";
import { chainName } from "../wallet/wallet";
import { shortAddress, shortId } from "./format";

function errorText(err: unknown): string {
  if (err instanceof TxRevertedError) return err.message;
  return describeError(err).detail;
}

/** "Anchored" once the node has put the message in a batch on chain; opens the proof. */
export function AnchorBadge({ m, store }: { m: ChatMessage; store: ChatStore }) {
  const [open, setOpen] = useState(false);
  const [check, setCheck] = useState<string>();
  const p = store.onchain.proof(m.id);
  if (p?.state !== "anchored") return null;
  const proof = p.proof;
  const localOk = proofRoot(m.id, proof.proof) === proof.root.toLowerCase();

  async function verify() {
    setCheck("Checking with the contract…");
    try {
      const { chain } = await store.onchain.connect(store.info, proof.chain_id);
      const result = await chain.checkAnchor(proof.contract, proof.anchorer, proof.root, m.id, proof.proof);
      setCheck(describeAnchorCheck(result, proof.anchorer));
    } catch (err) {
      setCheck(errorText(err));
    }
  }

  return (
    <>
      <button
        type="button"
        className="linkish small anchored"
        aria-expanded={open}
        data-testid="anchored-badge"
        title="This message's hash is in a batch whose root is anchored on chain"
        onClick={() => setOpen((v) => !v)}
      >
        ⚓ anchored
      </button>
      {open && (
        <div className="proof" role="region" aria-label="On-chain proof" data-testid="proof">
          <dl>
            <dt>Chain</dt>
            <dd>{chainName(proof.chain_id)}</dd>
            <dt>Contract</dt>
            <dd>
              <code title={proof.contract}>{shortAddress(proof.contract)}</code> (MessageAnchor)
            </dd>
            <dt>Anchored by</dt>
            <dd data-testid="proof-anchorer">
              <code title={proof.anchorer}>{shortAddress(proof.anchorer)}</code>
            </dd>
            <dt>Merkle root</dt>
            <dd>
              <code title={proof.root}>{shortId(proof.root)}</code>
            </dd>
            <dt>Proof</dt>
            <dd>
              {proof.proof.length === 0 ? (
                "none (the batch holds only this message)"
              ) : (
                <ol className="proof-path">
                  {proof.proof.map((h) => (
                    <li key={h}>
                      <code title={h}>{shortId(h)}</code>
                    </li>
                  ))}
                </ol>
              )}
            </dd>
            <dt>Transaction</dt>
            <dd>
              {proof.tx_hash ? (
                <code title={proof.tx_hash} data-testid="proof-tx">
                  {proof.tx_hash}
                </code>
              ) : (
                "found already on chain after a restart"
              )}
              {proof.block !== null && ` (block ${proof.block})`}
            </dd>
          </dl>
          <p className={localOk ? "ok small" : "problem small"} data-testid="proof-local">
            {localOk ? "✓ The proof leads from this message's id to the batch root." : "✗ The proof does not lead to the batch root."}
          </p>
          <button type="button" className="secondary small" onClick={() => void verify()}>
            Check on chain
          </button>
          {check && (
            <p className="small" role="status" data-testid="proof-check">
              {check}
            </p>
          )}
        </div>
      )}
    </>
  );
}

/** Tips the sender of a message in ETH (Payments.tip), referencing the message's id. */
export function TipButton({ m, store }: { m: ChatMessage; store: ChatStore }) {
  const [open, setOpen] = useState(false);
  const [amount, setAmount] = useState("0.001");
  const [status, setStatus] = useState<{ text: string; kind: "busy" | "ok" | "error" }>();
  if (!store.info?.contracts.length || m.status !== "sent" || !m.verified) return null;
  const to = m.sender;

  async function send() {
    let wei: bigint;
    try {
      wei = parseEth(amount);
    } catch (err) {
      setStatus({ text: (err as Error).message, kind: "error" });
      return;
    }
    setStatus({ text: "Confirm the tip in your wallet…", kind: "busy" });
    try {
      const { chain, contracts } = await store.onchain.connect(store.info);
      const r = await chain.tip(contracts.payments, to, m.id, wei, (hash) => setStatus({ text: `Waiting for the transaction ${shortId(hash)}…`, kind: "busy" }));
      setStatus({ text: `Tipped ${formatEth(wei)} ETH to ${shortAddress(to)} (transaction ${r.hash}, block ${r.block}).`, kind: "ok" });
    } catch (err) {
      setStatus({ text: errorText(err), kind: "error" });
    }
  }

  return (
    <>
      <button type="button" className="linkish small" aria-expanded={open} onClick={() => setOpen((v) => !v)} aria-label={`Tip ${shortAddress(to)} for this message`}>
        Tip
      </button>
      {open && (
        <form
          className="tip-form"
          data-testid="tip-form"
          onSubmit={(e) => {
            e.preventDefault();
            void send();
          }}
        >
          <label>
            Amount (ETH){" "}
            <input inputMode="decimal" value={amount} onChange={(e) => setAmount(e.target.value)} aria-invalid={status?.kind === "error"} size={10} />
          </label>
          <button type="submit" className="small" disabled={status?.kind === "busy"}>
            Send tip
          </button>
          {status && (
            <span className={`small ${status.kind === "error" ? "problem" : status.kind === "ok" ? "ok" : "muted"}`} role={status.kind === "error" ? "alert" : "status"} data-testid="tip-status">
              {status.text}
            </span>
          )}
        </form>
      )}
    </>
  );
}
