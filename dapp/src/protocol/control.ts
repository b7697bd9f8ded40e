// Room control payloads (protocol/src/control.rs): Invite, Remove, SetRole, SetPolicy (+ Gate),
// RotateKey { wraps: Wrap }, and direct room ids (protocol/src/room.rs).

import { keccak_256 } from "@noble/hashes/sha3.js";
import { concatBytes, fromHex, utf8 } from "../lib/bytes";
import { getBytes, getRepeatedBytes, getUint, readFields, Writer, type Field } from "./wire";

/** `enum Role`, ordered by rank. */
export const Role = { Unspecified: 0, Member: 1, Admin: 2, Owner: 3 } as const;
export type Role = (typeof Role)[keyof typeof Role];

/** `enum Policy`. */
export const Policy = { Unspecified: 0, InviteOnly: 1, Open: 2, TokenGated: 3, Paid: 4 } as const;
export type Policy = (typeof Policy)[keyof typeof Policy];

export const ROLE_NAMES: Record<number, string> = { 1: "member", 2: "admin", 3: "owner" };
export const POLICY_NAMES: Record<number, string> = { 1: "invite only", 2: "open", 3: "token gated", 4: "paid" };

/** Payload of `KIND_INVITE`: `repeated bytes members = 1`. */
export interface Invite {
  members: Uint8Array[];
}

export function encodeInvite(p: Invite): Uint8Array {
  const w = new Writer();
  for (const m of p.members) w.bytesAlways(1, m);
  return w.finish();
}

export function decodeInvite(b: Uint8Array): Invite {
  return { members: getRepeatedBytes(readFields(b), 1) };
}

/** Payload of `KIND_REMOVE`: `bytes member = 1`. */
export interface Remove {
  member: Uint8Array;
}

export function encodeRemove(p: Remove): Uint8Array {
  return new Writer().bytes(1, p.member).finish();
}

export function decodeRemove(b: Uint8Array): Remove {
  return { member: getBytes(readFields(b), 1) };
}

/** Payload of `KIND_SET_ROLE`: `bytes member = 1; Role role = 2`. */
export interface SetRole {
  member: Uint8Array;
  role: Role;
}

export function encodeSetRole(p: SetRole): Uint8Array {
  return new Writer().bytes(1, p.member).uint(2, p.role).finish();
}

export function decodeSetRole(b: Uint8Array): SetRole {
  const f = readFields(b);
  return { member: getBytes(f, 1), role: Number(getUint(f, 2)) as Role };
}

/** `enum GateKind`: what a gate checks on chain. */
export const GateKind = { Unspecified: 0, Erc20: 1, Erc721: 2, Erc1155: 3, Subscription: 4 } as const;

/** `message Gate` of token-gated and paid rooms. */
export interface Gate {
  kind: number;
  chainId: bigint;
  contract: Uint8Array;
  tokenId: Uint8Array;
  minBalance: Uint8Array;
}

/** Payload of `KIND_SET_POLICY`: `Policy policy = 1; Gate gate = 2` (gated policies only). */
export interface SetPolicy {
  policy: Policy;
  gate?: Gate;
}

export function encodeSetPolicy(p: SetPolicy): Uint8Array {
  const w = new Writer().uint(1, p.policy);
  if (p.gate) {
    const g = new Writer()
      .uint(1, p.gate.kind)
      .uint(2, p.gate.chainId)
      .bytes(3, p.gate.contract)
      .bytes(4, p.gate.tokenId)
      .bytes(5, p.gate.minBalance)
      .finish();
    w.bytesAlways(2, g);
  }
  return w.finish();
}

export function decodeSetPolicy(b: Uint8Array): SetPolicy {
  const f = readFields(b);
  const policy = Number(getUint(f, 1)) as Policy;
  const gateField = f.find((x: Field) => x.tag === 2);
  if (!gateField) return { policy };
  const g = readFields(getBytes(f, 2));
  return {
    policy,
    gate: {
      kind: Number(getUint(g, 1)),
      chainId: getUint(g, 2),
      contract: getBytes(g, 3),
      tokenId: getBytes(g, 4),
      minBalance: getBytes(g, 5),
    },
  };
}

/** The epoch key sealed to one device: `bytes box_key = 1; bytes enc = 2; bytes ciphertext = 3`. */
export interface Wrap {
  boxKey: Uint8Array;
  enc: Uint8Array;
  ciphertext: Uint8Array;
}

/** Payload of `KIND_ROTATE_KEY`: `repeated Wrap wraps = 1`. The epoch id is the envelope id. */
export interface RotateKey {
  wraps: Wrap[];
}

export function encodeRotateKey(p: RotateKey): Uint8Array {
  const w = new Writer();
  for (const x of p.wraps) {
    w.bytesAlways(1, new Writer().bytes(1, x.boxKey).bytes(2, x.enc).bytes(3, x.ciphertext).finish());
  }
  return w.finish();
}

export function decodeRotateKey(b: Uint8Array): RotateKey {
  return {
    wraps: getRepeatedBytes(readFields(b), 1).map((m) => {
      const f = readFields(m);
      return { boxKey: getBytes(f, 1), enc: getBytes(f, 2), ciphertext: getBytes(f, 3) };
    }),
  };
}

const DIRECT_DOMAIN = "dchat/direct/v1";

/** The direct room between two wallets: keccak256("dchat/direct/v1" || lower || higher address). */
export function directRoomId(a: string, b: string): Uint8Array {
  const x = fromHex(a, 20);
  const y = fromHex(b, 20);
  const [lo, hi] = compareBytes(x, y) <= 0 ? [x, y] : [y, x];
  return keccak_256(concatBytes(utf8(DIRECT_DOMAIN), lo, hi));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
