// The signed message envelope (protocol/proto/envelope.proto, package dchat.v1).
//
// `body` is the encoded Body; `hash = keccak256(body)` is the message id; the device's Ed25519
// key signs the 32-byte hash. The body is sent exactly as encoded here and never re-encoded.

import { ed25519 } from "@noble/curves/ed25519.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { equalBytes, fromHex, toHex, type Hex } from "../lib/bytes";
import { getBytes, getRepeatedBytes, getUint, readFields, Writer } from "./wire";

/** Message kinds (`enum Kind`). */
export const Kind = {
  Unspecified: 0,
  Text: 1,
  Media: 2,
  Reaction: 3,
  Edit: 4,
  Delete: 5,
  Receipt: 6,
  Typing: 7,
  Presence: 8,
  CreateRoom: 16,
  Invite: 17,
  Join: 18,
  Leave: 19,
  Remove: 20,
  SetRole: 21,
  RotateKey: 22,
  SetPolicy: 23,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

/** The only body version nodes accept. */
export const BODY_VERSION = 1;

/** The signed part of a message (`message Body`). */
export interface Body {
  version: number;
  /** Room id, 32 bytes. */
  room: Uint8Array;
  /** Sending wallet address, 20 bytes. */
  sender: Uint8Array;
  /** Ed25519 public key of the signing device, 32 bytes. */
  deviceKey: Uint8Array;
  /** Sender clock, milliseconds since the Unix epoch. */
  timestampMs: bigint;
  /** Lamport clock within the room. */
  lamport: bigint;
  kind: number;
  payload: Uint8Array;
  /** Wallets mentioned (notified), 20 bytes each; outside the sealed payload. */
  mentions?: Uint8Array[];
  /** Id of the message replied to (its author is notified), 32 bytes, or empty. */
  replyTo?: Uint8Array;
}

/** A signed envelope (`message Envelope`). */
export interface Envelope {
  body: Uint8Array;
  hash: Uint8Array;
  signature: Uint8Array;
  signer: Uint8Array;
}

/** The JSON form the API takes and returns: every field `0x` hex. */
export interface EnvelopeJson {
  body: Hex;
  hash: Hex;
  signature: Hex;
  signer: Hex;
}

export function encodeBody(b: Body): Uint8Array {
  const w = new Writer()
    .uint(1, b.version)
    .bytes(2, b.room)
    .bytes(3, b.sender)
    .bytes(4, b.deviceKey)
    .uint(5, b.timestampMs)
    .uint(6, b.lamport)
    .uint(7, b.kind)
    .bytes(8, b.payload);
  for (const m of b.mentions ?? []) w.bytesAlways(9, m);
  return w.bytes(10, b.replyTo ?? new Uint8Array()).finish();
}

export function decodeBody(bytes: Uint8Array): Body {
  const f = readFields(bytes);
  // Read leniently: a body from an older writer may carry other fields under these tags.
  const lenOnly = f.filter((x) => (x.tag === 9 || x.tag === 10) && x.value instanceof Uint8Array);
  const mentions = getRepeatedBytes(lenOnly, 9);
  const replyTo = getBytes(lenOnly, 10);
  return {
    version: Number(getUint(f, 1)),
    room: getBytes(f, 2),
    sender: getBytes(f, 3),
    deviceKey: getBytes(f, 4),
    timestampMs: getUint(f, 5),
    lamport: getUint(f, 6),
    kind: Number(getUint(f, 7)),
    payload: getBytes(f, 8),
    // Left out when absent, so bodies without them read back as they were built.
    ...(mentions.length > 0 ? { mentions } : {}),
    ...(replyTo.length > 0 ? { replyTo } : {}),
  };
}

/** The message id: keccak256 of the encoded body. */
export function messageId(body: Uint8Array): Uint8Array {
  return keccak_256(body);
}

/** Encodes `body` and signs its hash with the device's Ed25519 secret key. */
export function signBody(body: Body, deviceSecret: Uint8Array): Envelope {
  const encoded = encodeBody(body);
  const hash = messageId(encoded);
  const signature = ed25519.sign(hash, deviceSecret);
  return { body: encoded, hash, signature, signer: body.deviceKey };
}

/** Checks what any node checks about the bytes: the hash, the signer and the signature. */
export function verifyEnvelope(env: Envelope): boolean {
  if (!equalBytes(messageId(env.body), env.hash)) return false;
  const body = decodeBody(env.body);
  if (!equalBytes(body.deviceKey, env.signer)) return false;
  try {
    return ed25519.verify(env.signature, env.hash, env.signer, { zip215: false });
  } catch {
    return false;
  }
}

/** The protobuf encoding (`Content-Type: application/x-protobuf`). */
export function encodeEnvelope(env: Envelope): Uint8Array {
  return new Writer()
    .bytes(1, env.body)
    .bytes(2, env.hash)
    .bytes(3, env.signature)
    .bytes(4, env.signer)
    .finish();
}

export function envelopeToJson(env: Envelope): EnvelopeJson {
  return {
    body: toHex(env.body),
    hash: toHex(env.hash),
    signature: toHex(env.signature),
    signer: toHex(env.signer),
  };
}

export function envelopeFromJson(j: EnvelopeJson): Envelope {
  return {
    body: fromHex(j.body),
    hash: fromHex(j.hash, 32),
    signature: fromHex(j.signature, 64),
    signer: fromHex(j.signer, 32),
  };
}

/** The parts of a message object that its envelope can prove. */
export interface MessageClaims {
  id: string;
  room: string;
  sender: string;
  device_key: string;
  timestamp_ms: number;
  lamport: number;
  text?: string;
  envelope: EnvelopeJson;
}

/**
 * Checks a message the node served against its own envelope: the id is the body's hash, the
 * device signed it, and the fields shown (room, sender, device, time, lamport, text) are the ones
 * signed. Whether the device is delegated by the sender is the node's word (no endpoint serves
 * delegations).
 */
export function verifyMessage(m: MessageClaims): boolean {
  try {
    const env = envelopeFromJson(m.envelope);
    if (!verifyEnvelope(env)) return false;
    const body = decodeBody(env.body);
    const same = (a: Uint8Array, hex: string) => toHex(a) === hex.toLowerCase();
    if (!same(env.hash, m.id) || !same(body.room, m.room) || !same(body.sender, m.sender)) return false;
    if (!same(body.deviceKey, m.device_key)) return false;
    if (body.timestampMs !== BigInt(m.timestamp_ms) || body.lamport !== BigInt(m.lamport)) return false;
    if (m.text !== undefined && new TextDecoder("utf-8", { fatal: true }).decode(body.payload) !== m.text) return false;
    return true;
  } catch {
    return false;
  }
}
