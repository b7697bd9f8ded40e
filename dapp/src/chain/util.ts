// Small on-chain helpers the UI needs at once (the contract calls in contracts.ts load lazily).

import { keccak_256 } from "@noble/hashes/sha3.js";
import { concatBytes, equalBytes, fromHex, toHex, type Hex } from "../lib/bytes";

/** A transaction that was mined but reverted. */
export class TxRevertedError extends Error {
  override name = "TxRevertedError";
  constructor(readonly hash: Hex) {
    super(`The transaction ${hash} was reverted by the contract.`);
  }
}

/**
 * The root a proof leads to (OpenZeppelin MerkleProof with dchat's double-hashed leaf, see
 * docs/contracts.md#leaves-and-tree): leaf = keccak256(keccak256(id)), then sorted-pair hashing.
 */
export function proofRoot(id: Hex, proof: Hex[]): Hex {
  let node = keccak_256(keccak_256(fromHex(id, 32)));
  for (const p of proof) {
    const sib = fromHex(p, 32);
    node = keccak_256(lessOrEqual(node, sib) ? concatBytes(node, sib) : concatBytes(sib, node));
  }
  return toHex(node);
}

function lessOrEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (equalBytes(a, b)) return true;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return true;
}

/** What "Check on chain" says, from `MessageAnchor`'s answers about an anchored message. */
export function describeAnchorCheck(c: { included: boolean; activeNode: boolean; block: bigint }, anchorer: string): string {
  if (!c.included) return `The contract does NOT confirm this proof: ${anchorer} did not anchor this root with this message in it.`;
  const by = `Verified on chain: MessageAnchor.verify returned true; ${anchorer} anchored this root in block ${c.block}.`;
  return c.activeNode
    ? `${by} The anchorer runs an active node in NodeRegistry.`
    : `${by} The anchorer is not an active node in NodeRegistry, so only its own word vouches for the batch.`;
}

/** Wei from a decimal ETH amount typed by the user; throws a readable error. */
export function parseEth(text: string): bigint {
  const t = text.trim();
  if (!/^\d+(\.\d{1,18})?$|^\.\d{1,18}$/.test(t)) throw new Error("Enter an amount in ETH, such as 0.01.");
  const [whole = "0", frac = ""] = t.split(".");
  const wei = BigInt(whole || "0") * 10n ** 18n + BigInt((frac + "0".repeat(18)).slice(0, 18));
  if (wei === 0n) throw new Error("The amount must be more than 0.");
  return wei;
}

export function formatEth(wei: bigint): string {
  const whole = wei / 10n ** 18n;
  const frac = (wei % 10n ** 18n).toString().padStart(18, "0").replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : whole.toString();
}
