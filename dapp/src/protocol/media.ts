// The payload of a `Media` (kind 2) message: `MediaRef` (protocol/src/media.rs). The encryption
// of private-room files is in crypto/media.ts.

import { getBytes, getUint, readFields, Writer } from "./wire";

/** Bytes of a private-room file's nonce prefix. */
export const NONCE_PREFIX = 19;

export class MediaError extends Error {
  override name = "MediaError";
}

/** Payload of a `Media` message. */
export interface MediaRef {
  cid: string;
  size: number;
  mime: string;
  width: number;
  height: number;
  name: string;
  /** Private rooms: content key (32 bytes); empty in channels. */
  key: Uint8Array;
  /** Private rooms: nonce prefix (19 bytes); empty in channels. */
  noncePrefix: Uint8Array;
}

export function encodeMediaRef(r: MediaRef): Uint8Array {
  return new Writer()
    .string(1, r.cid)
    .uint(2, r.size)
    .string(3, r.mime)
    .uint(4, r.width)
    .uint(5, r.height)
    .string(6, r.name)
    .bytes(7, r.key)
    .bytes(8, r.noncePrefix)
    .finish();
}

export function decodeMediaRef(bytes: Uint8Array): MediaRef {
  const f = readFields(bytes);
  const text = (tag: number) => new TextDecoder("utf-8", { fatal: true }).decode(getBytes(f, tag));
  const r: MediaRef = {
    cid: text(1),
    size: Number(getUint(f, 2)),
    mime: text(3),
    width: Number(getUint(f, 4)),
    height: Number(getUint(f, 5)),
    name: text(6),
    key: getBytes(f, 7),
    noncePrefix: getBytes(f, 8),
  };
  const encrypted = r.key.length > 0 || r.noncePrefix.length > 0;
  if (encrypted && (r.key.length !== 32 || r.noncePrefix.length !== NONCE_PREFIX)) throw new MediaError("malformed media reference: key or nonce prefix length");
  return r;
}

