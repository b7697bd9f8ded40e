// End-to-end encryption for group and direct rooms (not enabled by the node yet).
//
// - A room epoch has a random 32-byte epoch key.
// - The epoch key is wrapped for every member device's X25519 box key with HPKE base mode
//   (RFC 9180), suite DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305, with
//   info = "dchat/epoch/v1" || room id (32 bytes) and aad = sender address (20 bytes).
// - Messages are sealed with XChaCha20-Poly1305 under the epoch key and a random 24-byte nonce,
//   with AAD = "dchat/msg/v1" || room (32) || sender (20) || epoch id (32) || kind (u32 BE).
// - The envelope payload is the protobuf `Sealed { bytes epoch = 1; bytes nonce = 2;
//   bytes ciphertext = 3; }`.

import { CipherSuite, HkdfSha256 } from "@hpke/core";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import { Chacha20Poly1305 } from "@hpke/chacha20poly1305";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { concatBytes, randomBytes, u32be, utf8 } from "../lib/bytes";
import { getBytes, readFields, Writer } from "../protocol/wire";

export const EPOCH_KEY_BYTES = 32;
export const EPOCH_ID_BYTES = 32;
export const NONCE_BYTES = 24;
/** HPKE info prefix for wrapping an epoch key. */
export const EPOCH_INFO_LABEL = "dchat/epoch/v1";
/** AAD prefix for a sealed message. */
export const MESSAGE_AAD_LABEL = "dchat/msg/v1";

/** Thrown when a wrapped key or sealed message does not open (wrong key, tampered or malformed). */
export class E2eError extends Error {
  override name = "E2eError";
}

function check(name: string, bytes: Uint8Array, len: number): void {
  if (bytes.length !== len) throw new E2eError(`${name} must be ${len} bytes, got ${bytes.length}`);
}

let suite: CipherSuite | undefined;
function hpke(): CipherSuite {
  return (suite ??= new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Chacha20Poly1305(),
  }));
}

/** A fresh random epoch key. */
export function newEpochKey(): Uint8Array {
  return randomBytes(EPOCH_KEY_BYTES);
}

/** HPKE info for a room: "dchat/epoch/v1" || room id. */
export function epochInfo(room: Uint8Array): Uint8Array {
  check("room", room, 32);
  return concatBytes(utf8(EPOCH_INFO_LABEL), room);
}

/** An epoch key wrapped for one device: HPKE `enc` (the ephemeral public key) and ciphertext. */
export interface WrappedEpochKey {
  enc: Uint8Array;
  ciphertext: Uint8Array;
}

/** Deterministic HPKE ephemeral key, for test vectors only. */
export type Ephemeral = { secret: Uint8Array } | { ikm: Uint8Array };

/** Wraps `epochKey` for the device whose X25519 box key is `recipient`. */
export async function wrapEpochKey(args: {
  epochKey: Uint8Array;
  recipient: Uint8Array;
  room: Uint8Array;
  sender: Uint8Array;
  ephemeral?: Ephemeral;
}): Promise<WrappedEpochKey> {
  check("epoch key", args.epochKey, EPOCH_KEY_BYTES);
  check("recipient box key", args.recipient, 32);
  check("sender", args.sender, 20);
  const s = hpke();
  const recipientPublicKey = await s.kem.importKey("raw", copy(args.recipient).buffer, true);
  let ekm: CryptoKeyPair | Uint8Array | undefined;
  if (args.ephemeral && "secret" in args.ephemeral) {
    ekm = {
      privateKey: await s.kem.importKey("raw", copy(args.ephemeral.secret).buffer, false),
      publicKey: await s.kem.importKey("raw", copy(x25519.getPublicKey(args.ephemeral.secret)).buffer, true),
    };
  } else if (args.ephemeral) {
    ekm = args.ephemeral.ikm;
  }
  const sender = await s.createSenderContext({
    recipientPublicKey,
    info: copy(epochInfo(args.room)),
    ...(ekm ? { ekm } : {}),
  });
  const ciphertext = new Uint8Array(await sender.seal(copy(args.epochKey), copy(args.sender)));
  return { enc: new Uint8Array(sender.enc), ciphertext };
}

/** Unwraps an epoch key with the device's X25519 secret key. */
export async function unwrapEpochKey(args: {
  wrapped: WrappedEpochKey;
  boxSecret: Uint8Array;
  room: Uint8Array;
  sender: Uint8Array;
}): Promise<Uint8Array> {
  check("sender", args.sender, 20);
  check("enc", args.wrapped.enc, 32);
  const s = hpke();
  let key: Uint8Array;
  try {
    const recipientKey = await s.kem.importKey("raw", copy(args.boxSecret).buffer, false);
    const ctx = await s.createRecipientContext({
      recipientKey,
      enc: copy(args.wrapped.enc),
      info: copy(epochInfo(args.room)),
    });
    key = new Uint8Array(await ctx.open(copy(args.wrapped.ciphertext), copy(args.sender)));
  } catch (err) {
    throw new E2eError(`epoch key does not unwrap: ${(err as Error).message}`);
  }
  check("epoch key", key, EPOCH_KEY_BYTES);
  return key;
}

/** The AAD of a sealed message. */
export function messageAad(room: Uint8Array, sender: Uint8Array, epochId: Uint8Array, kind: number): Uint8Array {
  check("room", room, 32);
  check("sender", sender, 20);
  check("epoch id", epochId, EPOCH_ID_BYTES);
  return concatBytes(utf8(MESSAGE_AAD_LABEL), room, sender, epochId, u32be(kind));
}

/** `message Sealed`: the payload of an encrypted envelope. */
export interface Sealed {
  epoch: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

export function encodeSealed(s: Sealed): Uint8Array {
  return new Writer().bytes(1, s.epoch).bytes(2, s.nonce).bytes(3, s.ciphertext).finish();
}

export function decodeSealed(bytes: Uint8Array): Sealed {
  const f = readFields(bytes);
  const s = { epoch: getBytes(f, 1), nonce: getBytes(f, 2), ciphertext: getBytes(f, 3) };
  check("epoch id", s.epoch, EPOCH_ID_BYTES);
  check("nonce", s.nonce, NONCE_BYTES);
  return s;
}

/** Seals a message payload; returns the encoded `Sealed` to put in `Body.payload`. */
export function sealMessage(args: {
  epochKey: Uint8Array;
  epochId: Uint8Array;
  room: Uint8Array;
  sender: Uint8Array;
  kind: number;
  plaintext: Uint8Array;
  /** Fixed nonce, for test vectors only. */
  nonce?: Uint8Array;
}): Uint8Array {
  check("epoch key", args.epochKey, EPOCH_KEY_BYTES);
  const nonce = args.nonce ?? randomBytes(NONCE_BYTES);
  check("nonce", nonce, NONCE_BYTES);
  const aad = messageAad(args.room, args.sender, args.epochId, args.kind);
  const ciphertext = xchacha20poly1305(args.epochKey, nonce, aad).encrypt(args.plaintext);
  return encodeSealed({ epoch: args.epochId, nonce, ciphertext });
}

/**
 * Opens a sealed payload. `keyFor` returns the epoch key of an epoch id (the caller keeps the
 * unwrapped keys of the room's epochs).
 */
export function openMessage(args: {
  sealed: Uint8Array;
  keyFor: (epochId: Uint8Array) => Uint8Array | undefined;
  room: Uint8Array;
  sender: Uint8Array;
  kind: number;
}): { epochId: Uint8Array; plaintext: Uint8Array } {
  const s = decodeSealed(args.sealed);
  const key = args.keyFor(s.epoch);
  if (!key) throw new E2eError("no key for this epoch");
  const aad = messageAad(args.room, args.sender, s.epoch, args.kind);
  try {
    return { epochId: s.epoch, plaintext: xchacha20poly1305(key, s.nonce, aad).decrypt(s.ciphertext) };
  } catch {
    throw new E2eError("message does not open: wrong key or tampered");
  }
}

/** A standalone copy: the HPKE library wants plain ArrayBuffer-backed bytes. */
function copy(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(b);
}
