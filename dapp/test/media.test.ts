import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { sha256 } from "@noble/hashes/sha2.js";
import { fromHex, toHex } from "../src/lib/bytes";
import { CHUNK, decodeMediaRef, decryptMedia, encodeMediaRef, encryptedLen, encryptFile, encryptMedia, MediaError, TAG } from "../src/crypto/media";

/** The protocol tests' file contents: byte i is (i * 31 ^ (i >> 9)) & 0xff. */
function data(len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (Math.imul(i, 31) ^ (i >>> 9)) & 0xff;
  return out;
}

const key = new Uint8Array(32).fill(9);
const prefix = new Uint8Array(19).fill(4);

describe("media encryption (protocol/src/media.rs)", () => {
  it("round-trips at every chunk boundary, with the protocol's ciphertext length", () => {
    for (const len of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17]) {
      const plain = data(len);
      const ct = encryptMedia(key, prefix, plain);
      expect(ct.length).toBe(encryptedLen(len));
      expect(decryptMedia(key, prefix, ct)).toEqual(plain);
    }
  });

  it("encrypts a file as it reads it to the same bytes as the whole-file encryption", async () => {
    for (const len of [0, 5, CHUNK, 2 * CHUNK + 3]) {
      const plain = data(len);
      const seen: number[] = [];
      const blob = await encryptFile(key, prefix, new Blob([new Uint8Array(plain)]), (n) => seen.push(n));
      expect(new Uint8Array(await blob.arrayBuffer())).toEqual(encryptMedia(key, prefix, plain));
      expect(seen[seen.length - 1]).toBe(len);
    }
  });

  it("detects tampering, a wrong key, truncation, reordering and extension", () => {
    const step = CHUNK + TAG;
    const ct = encryptMedia(key, prefix, data(3 * CHUNK + 100));
    const flipped = ct.slice();
    flipped[step + 5]! ^= 1;
    expect(() => decryptMedia(key, prefix, flipped)).toThrow(/chunk 1/);
    expect(() => decryptMedia(new Uint8Array(32), prefix, ct)).toThrow(/chunk 0/);
    expect(() => decryptMedia(key, prefix, ct.slice(0, 2 * step))).toThrow(/truncated/);
    expect(() => decryptMedia(key, prefix, ct.slice(0, 2 * step + 40))).toThrow(MediaError);
    expect(() => decryptMedia(key, prefix, new Uint8Array())).toThrow(/truncated/);
    const swapped = ct.slice();
    swapped.set(ct.subarray(step, 2 * step), 0);
    swapped.set(ct.subarray(0, step), step);
    expect(() => decryptMedia(key, prefix, swapped)).toThrow(/chunk 0/);
    const extended = new Uint8Array(ct.length + 20);
    extended.set(ct);
    expect(() => decryptMedia(key, prefix, extended)).toThrow(MediaError);
  });

  it("encodes MediaRef as prost does and refuses malformed keys", () => {
    const ref = { cid: "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", size: 5, mime: "image/png", width: 2, height: 3, name: "a.png", key, noncePrefix: prefix };
    expect(decodeMediaRef(encodeMediaRef(ref))).toEqual(ref);
    expect(() => decodeMediaRef(encodeMediaRef({ ...ref, key: new Uint8Array(31) }))).toThrow(/key/);
  });

  const vectorsPath = fileURLToPath(new URL("../../protocol/testdata/media/vectors.json", import.meta.url));
  const have = existsSync(vectorsPath);
  it.skipIf(!have)("matches protocol/testdata/media/vectors.json (written by the Rust protocol crate)", () => {
    const v = JSON.parse(readFileSync(vectorsPath, "utf8")) as {
      files: { len: number; key: string; nonce_prefix: string; ciphertext_len: number; ciphertext_sha256: string; ciphertext?: string }[];
      refs: { cid: string; size: number; mime: string; width: number; height: number; name: string; key: string; nonce_prefix: string; encoded: string }[];
    };
    expect(v.files.length).toBeGreaterThan(0);
    for (const f of v.files) {
      const plain = data(f.len);
      const ct = encryptMedia(fromHex(f.key), fromHex(f.nonce_prefix), plain);
      expect(ct.length).toBe(f.ciphertext_len);
      expect(toHex(sha256(ct)), `file of ${f.len} bytes`).toBe(f.ciphertext_sha256);
      if (f.ciphertext) expect(toHex(ct)).toBe(f.ciphertext);
      expect(decryptMedia(fromHex(f.key), fromHex(f.nonce_prefix), ct)).toEqual(plain);
    }
    for (const r of v.refs) {
      const decoded = decodeMediaRef(fromHex(r.encoded));
      expect(decoded).toEqual({ cid: r.cid, size: r.size, mime: r.mime, width: r.width, height: r.height, name: r.name, key: fromHex(r.key), noncePrefix: fromHex(r.nonce_prefix) });
      expect(toHex(encodeMediaRef(decoded))).toBe(r.encoded);
    }
  });
});
