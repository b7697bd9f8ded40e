// Room control payloads: `CreateRoom` and room id derivation.

import { keccak_256 } from "@noble/hashes/sha3.js";
import { concatBytes } from "../lib/bytes";
import { getBytes, getRepeatedBytes, getUint, readFields, Writer } from "./wire";

/** `enum RoomKind`. */
export const RoomKind = { Unspecified: 0, Group: 1, Channel: 2, Direct: 3 } as const;
export type RoomKind = (typeof RoomKind)[keyof typeof RoomKind];

/** Payload of a `KIND_CREATE_ROOM` envelope. */
export interface CreateRoom {
  name: string;
  kind: RoomKind;
  /** Initial members besides the creator, 20 bytes each. */
  members: Uint8Array[];
  /** 32 random bytes. */
  salt: Uint8Array;
}

export function encodeCreateRoom(c: CreateRoom): Uint8Array {
  const w = new Writer().string(1, c.name).uint(2, c.kind);
  for (const m of c.members) w.bytesAlways(3, m);
  return w.bytes(4, c.salt).finish(); // a direct room's salt is empty, so left out
}

export function decodeCreateRoom(bytes: Uint8Array): CreateRoom {
  const f = readFields(bytes);
  return {
    name: new TextDecoder().decode(getBytes(f, 1)),
    kind: Number(getUint(f, 2)) as RoomKind,
    members: getRepeatedBytes(f, 3),
    salt: getBytes(f, 4),
  };
}

/** The room id: keccak256(creator address (20 bytes) || salt (32 bytes)). */
export function roomId(creator: Uint8Array, salt: Uint8Array): Uint8Array {
  if (creator.length !== 20) throw new Error("creator must be a 20-byte address");
  if (salt.length !== 32) throw new Error("salt must be 32 bytes");
  return keccak_256(concatBytes(creator, salt));
}
