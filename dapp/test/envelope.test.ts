import { describe, expect, it } from "vitest";
import { ed25519 } from "@noble/curves/ed25519.js";
import { fromHex, toHex, utf8 } from "../src/lib/bytes";
import {
  decodeBody,
  encodeBody,
  encodeEnvelope,
  envelopeFromJson,
  envelopeToJson,
  Kind,
  messageId,
  signBody,
  verifyEnvelope,
  verifyMessage,
  type Body,
} from "../src/protocol/envelope";
import { composeCreateRoom, composeJoin, composeText } from "../src/protocol/compose";
import { decodeCreateRoom, encodeCreateRoom, roomId, RoomKind } from "../src/protocol/room";

// Encoded by hand from protocol/proto/envelope.proto (proto3: fields in tag order, defaults
// omitted, as prost writes them); the hash computed with an independent Keccak-256.
const FIXED_BODY: Body = {
  version: 1,
  room: new Uint8Array(32).fill(0x11),
  sender: new Uint8Array(20).fill(0x22),
  deviceKey: new Uint8Array(32).fill(0x33),
  timestampMs: 1893456000123n,
  lamport: 7n,
  kind: Kind.Text,
  payload: utf8("hello"),
};
const FIXED_BODY_HEX =
  "0801" + // version = 1
  "1220" + "11".repeat(32) + // room
  "1a14" + "22".repeat(20) + // sender
  "2220" + "33".repeat(32) + // device_key
  "28fbe896d68d37" + // timestamp_ms = 1893456000123
  "3007" + // lamport = 7
  "3801" + // kind = KIND_TEXT
  "420568656c6c6f"; // payload = "hello"
const FIXED_HASH = "0x5b75bceebd2c7b0493b12d2383e698c17a0d5c6f444722f9f4f918c509d57930";

const secret = fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const signer = { address: "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", signSecret: secret, signPublic: ed25519.getPublicKey(secret) };

describe("envelope body encoding", () => {
  it("encodes a fixed body to the bytes the proto definition gives", () => {
    expect(toHex(encodeBody(FIXED_BODY))).toBe("0x" + FIXED_BODY_HEX);
  });

  it("hashes the fixed body to its known message id", () => {
    expect(toHex(messageId(encodeBody(FIXED_BODY)))).toBe(FIXED_HASH);
  });

  it("hashes the empty string to Keccak-256's known value (not SHA3-256)", () => {
    expect(toHex(messageId(new Uint8Array()))).toBe("0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  });

  it("leaves out default values as proto3 does (lamport 0, empty payload)", () => {
    const body = { ...FIXED_BODY, lamport: 0n, payload: new Uint8Array(), kind: Kind.Join };
    const hex = toHex(encodeBody(body)).slice(2);
    expect(hex.endsWith("28fbe896d68d37" + "3812")).toBe(true);
    expect(hex).not.toContain("3000");
  });

  it("decodes what it encodes", () => {
    const decoded = decodeBody(encodeBody(FIXED_BODY));
    expect(decoded).toEqual({ ...FIXED_BODY, payload: FIXED_BODY.payload });
  });

  it("encodes timestamps and lamports up to 2^64-1", () => {
    const body = { ...FIXED_BODY, lamport: 2n ** 64n - 1n };
    expect(toHex(encodeBody(body))).toContain("30ffffffffffffffffff01");
    expect(decodeBody(encodeBody(body)).lamport).toBe(2n ** 64n - 1n);
    expect(() => encodeBody({ ...FIXED_BODY, lamport: 2n ** 64n })).toThrow(RangeError);
  });

  it("keeps unknown fields out of the decoded body but inside the signed bytes", () => {
    const withUnknown = fromHex(FIXED_BODY_HEX + "4801");
    expect(decodeBody(withUnknown).payload).toEqual(utf8("hello"));
    expect(toHex(messageId(withUnknown))).not.toBe(FIXED_HASH);
  });
});

describe("signed envelopes", () => {
  it("signs the 32-byte hash with the device key (RFC 8032 test key)", () => {
    const env = signBody({ ...FIXED_BODY, deviceKey: signer.signPublic }, secret);
    expect(env.hash).toEqual(messageId(env.body));
    expect(env.signature).toHaveLength(64);
    expect(ed25519.verify(env.signature, env.hash, signer.signPublic)).toBe(true);
    expect(toHex(signer.signPublic)).toBe("0xd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    expect(verifyEnvelope(env)).toBe(true);
  });

  it("detects a changed body, a wrong signer and a bad signature", () => {
    const env = signBody({ ...FIXED_BODY, deviceKey: signer.signPublic }, secret);
    const tampered = { ...env, body: env.body.slice(0, -1) };
    expect(verifyEnvelope(tampered)).toBe(false);
    expect(verifyEnvelope({ ...env, signer: new Uint8Array(32).fill(1) })).toBe(false);
    const sig = env.signature.slice();
    sig[0]! ^= 1;
    expect(verifyEnvelope({ ...env, signature: sig })).toBe(false);
  });

  it("encodes the protobuf Envelope with the four fields in order", () => {
    const env = signBody({ ...FIXED_BODY, deviceKey: signer.signPublic }, secret);
    const hex = toHex(encodeEnvelope(env)).slice(2);
    const bodyLen = env.body.length.toString(16).padStart(2, "0");
    expect(hex.startsWith("0a" + bodyLen + toHex(env.body).slice(2) + "1220" + toHex(env.hash).slice(2) + "1a40")).toBe(true);
    expect(hex.endsWith("2220" + toHex(signer.signPublic).slice(2))).toBe(true);
  });

  it("round-trips the JSON form", () => {
    const env = signBody({ ...FIXED_BODY, deviceKey: signer.signPublic }, secret);
    const json = envelopeToJson(env);
    expect(json.body).toMatch(/^0x[0-9a-f]+$/);
    expect(envelopeFromJson(json)).toEqual(env);
  });
});

describe("room envelopes", () => {
  it("encodes CreateRoom as the proto definition gives", () => {
    const salt = Uint8Array.from({ length: 32 }, (_, i) => i);
    const payload = encodeCreateRoom({
      name: "lobby",
      kind: RoomKind.Group,
      members: [new Uint8Array(20).fill(0x44), new Uint8Array(20).fill(0x55)],
      salt,
    });
    expect(toHex(payload)).toBe(
      "0x0a056c6f626279" + "1001" + "1a14" + "44".repeat(20) + "1a14" + "55".repeat(20) + "2220" + toHex(salt).slice(2),
    );
    expect(decodeCreateRoom(payload).members).toHaveLength(2);
  });

  it("derives the room id as keccak256(creator || salt)", () => {
    const salt = Uint8Array.from({ length: 32 }, (_, i) => i);
    const id = roomId(fromHex("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"), salt);
    expect(toHex(id)).toBe("0xf450a8def78984e4004073d3b886724dd7d809bb7ec7586300b72b9767121922");
  });

  it("builds a CreateRoom at lamport 0 for the derived room", () => {
    const salt = Uint8Array.from({ length: 32 }, (_, i) => i);
    const { envelope, roomId: id } = composeCreateRoom(signer, { name: "lobby", kind: "channel", members: [], salt }, 1_700_000_000_000);
    const body = decodeBody(envelope.body);
    expect(id).toBe("0xf450a8def78984e4004073d3b886724dd7d809bb7ec7586300b72b9767121922");
    expect(toHex(body.room)).toBe(id);
    expect(body.kind).toBe(Kind.CreateRoom);
    expect(body.lamport).toBe(0n);
    expect(decodeCreateRoom(body.payload)).toMatchObject({ name: "lobby", kind: RoomKind.Channel });
    expect(verifyEnvelope(envelope)).toBe(true);
  });

  it("builds Join and text envelopes with the given lamport", () => {
    const room = "0x" + "ab".repeat(32);
    const join = decodeBody(composeJoin(signer, room, 5, 1).body);
    expect(join).toMatchObject({ kind: Kind.Join, lamport: 5n, timestampMs: 1n });
    expect(join.payload).toHaveLength(0);
    const text = decodeBody(composeText(signer, room, 6, "hi ✓", 2).body);
    expect(new TextDecoder().decode(text.payload)).toBe("hi ✓");
    expect(toHex(text.sender)).toBe(signer.address.toLowerCase());
  });
});

describe("messages served by the node", () => {
  const room = "0x" + "ab".repeat(32);
  const env = composeText(signer, room, 3, "the real text", 1_893_456_000_123);
  const served = {
    id: toHex(env.hash),
    room,
    sender: signer.address,
    device_key: toHex(signer.signPublic),
    timestamp_ms: 1_893_456_000_123,
    lamport: 3,
    text: "the real text",
    envelope: envelopeToJson(env),
  };

  it("verifies a message whose fields are the signed ones", () => {
    expect(verifyMessage(served)).toBe(true);
  });

  it("refuses a message whose text, sender, order or id differ from its envelope", () => {
    expect(verifyMessage({ ...served, text: "an altered text" })).toBe(false);
    expect(verifyMessage({ ...served, sender: "0x" + "11".repeat(20) })).toBe(false);
    expect(verifyMessage({ ...served, lamport: 4 })).toBe(false);
    expect(verifyMessage({ ...served, id: "0x" + "00".repeat(32) })).toBe(false);
    expect(verifyMessage({ ...served, envelope: { ...served.envelope, signature: ("0x" + "00".repeat(64)) as `0x${string}` } })).toBe(false);
  });
});
