// Media messages and the encryption of private-room files (protocol/src/media.rs).
//
// - A `Media` (kind 2) message carries a `MediaRef`: CID, plaintext size, type, dimensions, name,
//   and in private rooms the file's 32-byte content key and 19-byte nonce prefix (the whole
//   MediaRef is then sealed like a text message, so the node sees none of it).
// - Private-room files: XChaCha20-Poly1305 over 64 KiB chunks (STREAM). Chunk i uses the nonce
//   prefix (19) || i (u32 BE) || last (1 byte: 1 for the final chunk) and the AAD "dchat/media/v1".
//   The final chunk holds the remaining 0..=65536 bytes (an empty file is one empty final chunk).

import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { concatBytes, randomBytes, utf8 } from "../lib/bytes";
export { decodeMediaRef, encodeMediaRef, MediaError, type MediaRef } from "../protocol/media";
import { MediaError } from "../protocol/media";

export const CHUNK = 64 * 1024;
export const TAG = 16;
import { NONCE_PREFIX } from "../protocol/media";
export { NONCE_PREFIX };
const AAD = utf8("dchat/media/v1");

/** A fresh content key and nonce prefix. */
export function newContentKey(): { key: Uint8Array; noncePrefix: Uint8Array } {
  return { key: randomBytes(32), noncePrefix: randomBytes(NONCE_PREFIX) };
}

function nonce(prefix: Uint8Array, counter: number, last: boolean): Uint8Array {
  if (prefix.length !== NONCE_PREFIX) throw new MediaError("nonce prefix must be 19 bytes");
  const n = new Uint8Array(24);
  n.set(prefix, 0);
  new DataView(n.buffer).setUint32(NONCE_PREFIX, counter >>> 0, false);
  n[23] = last ? 1 : 0;
  return n;
}

/** Size of the ciphertext of a `len`-byte file. */
export function encryptedLen(len: number): number {
  return len + Math.max(1, Math.ceil(len / CHUNK)) * TAG;
}

/** Encrypts a whole file. */
export function encryptMedia(key: Uint8Array, noncePrefix: Uint8Array, plain: Uint8Array): Uint8Array {
  const chunks = Math.max(1, Math.ceil(plain.length / CHUNK));
  const out = new Uint8Array(encryptedLen(plain.length));
  let off = 0;
  for (let i = 0; i < chunks; i++) {
    const last = i === chunks - 1;
    const piece = plain.subarray(i * CHUNK, Math.min(plain.length, (i + 1) * CHUNK));
    const sealed = xchacha20poly1305(key, nonce(noncePrefix, i, last), AAD).encrypt(piece);
    out.set(sealed, off);
    off += sealed.length;
  }
  return out;
}

/**
 * Encrypts a file as it reads it, 64 KiB at a time, so the plaintext is never held whole; the
 * ciphertext is the same as `encryptMedia` gives. `onProgress` gets the bytes read so far.
 */
export async function encryptFile(key: Uint8Array, noncePrefix: Uint8Array, file: Blob, onProgress?: (done: number) => void): Promise<Blob> {
  const chunks = Math.max(1, Math.ceil(file.size / CHUNK));
  const parts: Uint8Array<ArrayBuffer>[] = [];
  for (let i = 0; i < chunks; i++) {
    const end = Math.min(file.size, (i + 1) * CHUNK);
    const piece = new Uint8Array(await file.slice(i * CHUNK, end).arrayBuffer());
    parts.push(new Uint8Array(xchacha20poly1305(key, nonce(noncePrefix, i, i === chunks - 1), AAD).encrypt(piece)));
    onProgress?.(end);
  }
  return new Blob(parts, { type: "application/octet-stream" });
}

/** Decrypts a whole file; fails on a wrong key, tampering, reordering, truncation or extension. */
export function decryptMedia(key: Uint8Array, noncePrefix: Uint8Array, cipher: Uint8Array): Uint8Array {
  const step = CHUNK + TAG;
  if (cipher.length < TAG) throw new MediaError("encrypted media is truncated: it ends before its final chunk");
  const chunks = Math.max(1, Math.ceil(cipher.length / step));
  const parts: Uint8Array[] = [];
  for (let i = 0; i < chunks; i++) {
    const last = i === chunks - 1;
    const piece = cipher.subarray(i * step, Math.min(cipher.length, (i + 1) * step));
    try {
      parts.push(xchacha20poly1305(key, nonce(noncePrefix, i, last), AAD).decrypt(piece));
    } catch {
      if (last) {
        let middle = false;
        try {
          xchacha20poly1305(key, nonce(noncePrefix, i, false), AAD).decrypt(piece);
          middle = true;
        } catch {
          // not a middle chunk either
        }
        if (middle) throw new MediaError("encrypted media is truncated: it ends before its final chunk");
      }
      throw new MediaError(`cannot decrypt media chunk ${i}: wrong key or tampered ciphertext`);
    }
  }
  return concatBytes(...parts);
}
