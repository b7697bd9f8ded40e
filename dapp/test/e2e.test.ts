import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { extract, expand } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes, fromHex, toHex, utf8 } from "../src/lib/bytes";
import {
  decodeSealed,
  E2eError,
  epochInfo,
  messageAad,
  newEpochKey,
  openMessage,
  sealMessage,
  unwrapEpochKey,
  wrapEpochKey,
} from "../src/crypto/e2e";
import { Kind } from "../src/protocol/envelope";

const room = fromHex("0x" + "11".repeat(32));
const sender = fromHex("0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2");
const epochId = fromHex("0x" + "ee".repeat(32));
const recipientSecret = fromHex("0x" + "42".repeat(32));
const recipient = x25519.getPublicKey(recipientSecret);

/**
 * RFC 9180 base-mode single-shot seal for DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
 * ChaCha20-Poly1305, written from the RFC's definitions: a second implementation to check the
 * library against.
 */
function rfc9180Seal(pkR: Uint8Array, skE: Uint8Array, info: Uint8Array, aad: Uint8Array, pt: Uint8Array) {
  const i2osp2 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
  const v1 = utf8("HPKE-v1");
  const labeledExtract = (suite: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array) =>
    extract(sha256, concatBytes(v1, suite, utf8(label), ikm), salt);
  const labeledExpand = (suite: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, len: number) =>
    expand(sha256, prk, concatBytes(i2osp2(len), v1, suite, utf8(label), info), len);

  const kemSuite = concatBytes(utf8("KEM"), i2osp2(0x0020));
  const pkE = x25519.getPublicKey(skE);
  const dh = x25519.getSharedSecret(skE, pkR);
  const eaePrk = labeledExtract(kemSuite, new Uint8Array(), "eae_prk", dh);
  const sharedSecret = labeledExpand(kemSuite, eaePrk, "shared_secret", concatBytes(pkE, pkR), 32);

  const suite = concatBytes(utf8("HPKE"), i2osp2(0x0020), i2osp2(0x0001), i2osp2(0x0003));
  const pskIdHash = labeledExtract(suite, new Uint8Array(), "psk_id_hash", new Uint8Array());
  const infoHash = labeledExtract(suite, new Uint8Array(), "info_hash", info);
  const context = concatBytes(Uint8Array.of(0), pskIdHash, infoHash);
  const secret = labeledExtract(suite, sharedSecret, "secret", new Uint8Array());
  const key = labeledExpand(suite, secret, "key", context, 32);
  const nonce = labeledExpand(suite, secret, "base_nonce", context, 12);
  return { enc: pkE, ciphertext: chacha20poly1305(key, nonce, aad).encrypt(pt) };
}

describe("epoch key wrapping (HPKE)", () => {
  it("unwraps what it wraps, for the member's box key", async () => {
    const epochKey = newEpochKey();
    const wrapped = await wrapEpochKey({ epochKey, recipient, room, sender });
    expect(wrapped.enc).toHaveLength(32);
    expect(wrapped.ciphertext).toHaveLength(48);
    expect(await unwrapEpochKey({ wrapped, boxSecret: recipientSecret, room, sender })).toEqual(epochKey);
  });

  it("matches an independent RFC 9180 implementation given the same ephemeral key", async () => {
    const epochKey = fromHex("0x" + "07".repeat(32));
    const skE = fromHex("0x" + "5a".repeat(32));
    const ours = await wrapEpochKey({ epochKey, recipient, room, sender, ephemeral: { secret: skE } });
    const ref = rfc9180Seal(recipient, skE, concatBytes(utf8("dchat/epoch/v1"), room), sender, epochKey);
    expect(toHex(ours.enc)).toBe(toHex(ref.enc));
    expect(toHex(ours.ciphertext)).toBe(toHex(ref.ciphertext));
  });

  it("binds the room and the sender: another room, sender or device cannot unwrap", async () => {
    const wrapped = await wrapEpochKey({ epochKey: newEpochKey(), recipient, room, sender });
    const otherRoom = new Uint8Array(32).fill(0x12);
    const otherSender = new Uint8Array(20).fill(0x01);
    await expect(unwrapEpochKey({ wrapped, boxSecret: recipientSecret, room: otherRoom, sender })).rejects.toThrow(E2eError);
    await expect(unwrapEpochKey({ wrapped, boxSecret: recipientSecret, room, sender: otherSender })).rejects.toThrow(E2eError);
    await expect(unwrapEpochKey({ wrapped, boxSecret: new Uint8Array(32).fill(9), room, sender })).rejects.toThrow(E2eError);
  });

  it("uses info = \"dchat/epoch/v1\" || room", () => {
    expect(toHex(epochInfo(room))).toBe(toHex(utf8("dchat/epoch/v1")) + "11".repeat(32));
  });
});

describe("sealed messages (XChaCha20-Poly1305)", () => {
  const epochKey = fromHex("0x" + "07".repeat(32));
  const keyFor = (id: Uint8Array) => (toHex(id) === toHex(epochId) ? epochKey : undefined);

  it("lays out the AAD as label || room || sender || epoch id || kind (u32 BE)", () => {
    const aad = messageAad(room, sender, epochId, Kind.Text);
    expect(toHex(aad)).toBe(
      toHex(utf8("dchat/msg/v1")) + "11".repeat(32) + "c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2" + "ee".repeat(32) + "00000001",
    );
  });

  it("opens what it seals and encodes Sealed {epoch, nonce, ciphertext}", () => {
    const nonce = new Uint8Array(24).fill(3);
    const sealed = sealMessage({ epochKey, epochId, room, sender, kind: Kind.Text, plaintext: utf8("hi"), nonce });
    const hex = toHex(sealed).slice(2);
    expect(hex.startsWith("0a20" + "ee".repeat(32) + "1218" + "03".repeat(24) + "1a12")).toBe(true);
    expect(decodeSealed(sealed).ciphertext).toHaveLength(2 + 16);
    const opened = openMessage({ sealed, keyFor, room, sender, kind: Kind.Text });
    expect(new TextDecoder().decode(opened.plaintext)).toBe("hi");
  });

  it("refuses a message moved to another room, sender or kind, or tampered with", () => {
    const sealed = sealMessage({ epochKey, epochId, room, sender, kind: Kind.Text, plaintext: utf8("hi") });
    expect(() => openMessage({ sealed, keyFor, room: new Uint8Array(32), sender, kind: Kind.Text })).toThrow(E2eError);
    expect(() => openMessage({ sealed, keyFor, room, sender: new Uint8Array(20), kind: Kind.Text })).toThrow(E2eError);
    expect(() => openMessage({ sealed, keyFor, room, sender, kind: Kind.Media })).toThrow(E2eError);
    const bad = sealed.slice();
    bad[bad.length - 1]! ^= 1;
    expect(() => openMessage({ sealed: bad, keyFor, room, sender, kind: Kind.Text })).toThrow(E2eError);
    expect(() => openMessage({ sealed, keyFor: () => undefined, room, sender, kind: Kind.Text })).toThrow(/no key/);
  });

  it("uses a fresh random nonce for every message", () => {
    const a = decodeSealed(sealMessage({ epochKey, epochId, room, sender, kind: 1, plaintext: utf8("x") }));
    const b = decodeSealed(sealMessage({ epochKey, epochId, room, sender, kind: 1, plaintext: utf8("x") }));
    expect(toHex(a.nonce)).not.toBe(toHex(b.nonce));
  });
});

// Shared test vectors (the Rust protocol crate runs the same file).
const vectorsPath = fileURLToPath(new URL("../../protocol/testdata/e2e/vectors.json", import.meta.url));
const haveVectors = existsSync(vectorsPath);

describe("shared E2E test vectors", () => {
  // Skipped only while the file is absent; once it exists it must match.
  it.skipIf(!haveVectors)(
    haveVectors ? "matches protocol/testdata/e2e/vectors.json" : "protocol/testdata/e2e/vectors.json (skipped: the file does not exist yet)",
    async () => {
      const v = JSON.parse(readFileSync(vectorsPath, "utf8")) as Record<string, unknown>;
      await checkVectors(v);
    },
  );
});

/** One HPKE-wrapped epoch key: the recipient device's keys and what the sender produced. */
interface WrapVector {
  epoch_key: string;
  room: string;
  sender: string;
  recipient_secret: string;
  recipient_public: string;
  enc: string;
  ciphertext: string;
}

/** One sealed message: `payload` is the encoded `Sealed` (its nonce inside). */
interface MessageVector {
  epoch: string;
  epoch_key: string;
  room: string;
  sender: string;
  kind: number;
  plaintext: string;
  payload: string;
}

async function checkVectors(v: Record<string, unknown>) {
  const wraps = (v.wraps ?? []) as WrapVector[];
  const messages = (v.messages ?? []) as MessageVector[];
  expect(wraps.length, "vectors.json has no `wraps`").toBeGreaterThan(0);
  expect(messages.length, "vectors.json has no `messages`").toBeGreaterThan(0);

  for (const w of wraps) {
    expect(toHex(x25519.getPublicKey(fromHex(w.recipient_secret)))).toBe(toHex(fromHex(w.recipient_public)));
    const key = await unwrapEpochKey({
      wrapped: { enc: fromHex(w.enc), ciphertext: fromHex(w.ciphertext) },
      boxSecret: fromHex(w.recipient_secret),
      room: fromHex(w.room),
      sender: fromHex(w.sender),
    });
    expect(toHex(key)).toBe(toHex(fromHex(w.epoch_key)));
    // And what this client wraps, the same device unwraps.
    const ours = await wrapEpochKey({ epochKey: key, recipient: fromHex(w.recipient_public), room: fromHex(w.room), sender: fromHex(w.sender) });
    expect(await unwrapEpochKey({ wrapped: ours, boxSecret: fromHex(w.recipient_secret), room: fromHex(w.room), sender: fromHex(w.sender) })).toEqual(key);
  }

  for (const m of messages) {
    const epochKey = fromHex(m.epoch_key);
    const epochId = fromHex(m.epoch);
    const room = fromHex(m.room);
    const sender = fromHex(m.sender);
    const sealed = fromHex(m.payload);
    const opened = openMessage({ sealed, keyFor: (id) => (toHex(id) === toHex(epochId) ? epochKey : undefined), room, sender, kind: m.kind });
    expect(toHex(opened.plaintext)).toBe(toHex(fromHex(m.plaintext)));
    // Sealing the same plaintext with the vector's nonce gives the same bytes.
    const nonce = decodeSealed(sealed).nonce;
    expect(toHex(sealMessage({ epochKey, epochId, room, sender, kind: m.kind, plaintext: fromHex(m.plaintext), nonce }))).toBe(toHex(sealed));
  }
}
