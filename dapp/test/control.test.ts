// Room control payloads against bytes encoded by hand from the Rust prost structs in
// protocol/src/control.rs (Invite { repeated bytes members = 1 }, Remove { bytes member = 1 },
// SetRole { bytes member = 1; Role role = 2 }, SetPolicy { Policy policy = 1; Gate gate = 2 },
// Gate { kind = 1; chain_id = 2; contract = 3; token_id = 4; min_balance = 5 },
// RotateKey { repeated Wrap wraps = 1 }, Wrap { box_key = 1; enc = 2; ciphertext = 3 }).

import { describe, expect, it } from "vitest";
import { concat, hexToBytes, keccak256, stringToBytes } from "viem";
import { fromHex, toHex } from "../src/lib/bytes";
import {
  decodeInvite,
  decodeRemove,
  decodeRotateKey,
  decodeSetPolicy,
  decodeSetRole,
  directRoomId,
  encodeInvite,
  encodeRemove,
  encodeRotateKey,
  encodeSetPolicy,
  encodeSetRole,
  Policy,
  Role,
} from "../src/protocol/control";
import { composeDirect } from "../src/protocol/compose";
import { decodeBody, encodeBody, envelopeToJson, Kind } from "../src/protocol/envelope";
import { decodeCreateRoom, RoomKind } from "../src/protocol/room";
import { controlLine } from "../src/ui/control-lines";
import { generateDeviceKeys } from "../src/crypto/device";
import { parseRoute, href } from "../src/ui/route";

const fill = (byte: number, n: number) => new Uint8Array(n).fill(byte);
const hex = (...parts: (string | Uint8Array)[]) =>
  parts.map((p) => (typeof p === "string" ? p.replace(/\s+/g, "") : toHex(p).slice(2))).join("");

describe("control payloads", () => {
  it("Invite: repeated bytes members = 1", () => {
    const bytes = encodeInvite({ members: [fill(0x11, 20), fill(0x22, 20)] });
    // tag 1, wire type 2 = 0x0a; length 20 = 0x14.
    expect(toHex(bytes).slice(2)).toBe(hex("0a 14", fill(0x11, 20), "0a 14", fill(0x22, 20)));
    expect(decodeInvite(bytes).members.map(toHex)).toEqual([toHex(fill(0x11, 20)), toHex(fill(0x22, 20))]);
  });

  it("Remove: bytes member = 1", () => {
    const bytes = encodeRemove({ member: fill(0x44, 20) });
    expect(toHex(bytes).slice(2)).toBe(hex("0a 14", fill(0x44, 20)));
    expect(toHex(decodeRemove(bytes).member)).toBe(toHex(fill(0x44, 20)));
  });

  it("SetRole: bytes member = 1, Role role = 2 (admin = 2, owner = 3)", () => {
    const bytes = encodeSetRole({ member: fill(0x33, 20), role: Role.Admin });
    // tag 2, varint = 0x10; Role::Admin = 2.
    expect(toHex(bytes).slice(2)).toBe(hex("0a 14", fill(0x33, 20), "10 02"));
    expect(decodeSetRole(bytes)).toEqual({ member: fill(0x33, 20), role: Role.Admin });
    expect(toHex(encodeSetRole({ member: fill(0x33, 20), role: Role.Owner })).slice(-4)).toBe("1003");
    // A hand-made payload decodes with the same field numbers.
    expect(decodeSetRole(fromHex("0x" + hex("0a 14", fill(0x77, 20), "10 01")))).toEqual({ member: fill(0x77, 20), role: Role.Member });
  });

  it("SetPolicy: Policy policy = 1, and a Gate message = 2 for gated policies", () => {
    expect(toHex(encodeSetPolicy({ policy: Policy.Open }))).toBe("0x0802");
    expect(toHex(encodeSetPolicy({ policy: Policy.InviteOnly }))).toBe("0x0801");
    const gated = encodeSetPolicy({
      policy: Policy.TokenGated,
      gate: { kind: 1, chainId: 31337n, contract: fill(0x55, 20), tokenId: new Uint8Array(), minBalance: new Uint8Array() },
    });
    // Gate: kind 1 (08 01), chain_id 31337 = varint e9 f4 01 (10 ...), contract (1a 14 ...): 28 bytes.
    const gate = hex("08 01 10 e9f401 1a 14", fill(0x55, 20));
    expect(toHex(gated).slice(2)).toBe(hex("08 03 12 1c") + gate);
    const back = decodeSetPolicy(gated);
    expect(back.policy).toBe(Policy.TokenGated);
    expect(back.gate?.chainId).toBe(31337n);
    expect(toHex(back.gate!.contract)).toBe(toHex(fill(0x55, 20)));
  });

  it("RotateKey: repeated Wrap wraps = 1, Wrap { box_key = 1, enc = 2, ciphertext = 3 }", () => {
    const wrap = { boxKey: fill(0x01, 32), enc: fill(0x02, 32), ciphertext: fill(0x03, 48) };
    const bytes = encodeRotateKey({ wraps: [wrap, wrap] });
    // One Wrap: 0a 20 <32> 12 20 <32> 1a 30 <48> = 118 bytes (0x76).
    const inner = hex("0a 20", wrap.boxKey, "12 20", wrap.enc, "1a 30", wrap.ciphertext);
    expect(inner.length / 2).toBe(118);
    expect(toHex(bytes).slice(2)).toBe(hex("0a 76") + inner + hex("0a 76") + inner);
    expect(decodeRotateKey(bytes).wraps).toEqual([wrap, wrap]);
  });
});

describe("direct rooms", () => {
  const a = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
  const b = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

  it("the id is keccak256(\"dchat/direct/v1\" || lower address || higher address), either way round", () => {
    // b < a as numbers: 0x3c.. before 0x70..
    const expected = keccak256(concat([stringToBytes("dchat/direct/v1"), hexToBytes(b as `0x${string}`), hexToBytes(a as `0x${string}`)]));
    expect(toHex(directRoomId(a, b))).toBe(expected);
    expect(toHex(directRoomId(b, a))).toBe(expected);
  });

  it("the CreateRoom is kind 3, named direct, with the peer as the only member and no salt", () => {
    const keys = generateDeviceKeys();
    const { envelope, roomId } = composeDirect({ address: a, signPublic: keys.signPublic, signSecret: keys.signSecret }, b);
    const body = decodeBody(envelope.body);
    expect(body.kind).toBe(Kind.CreateRoom);
    expect(Number(body.lamport)).toBe(0);
    expect(toHex(body.room)).toBe(roomId);
    const p = decodeCreateRoom(body.payload);
    expect(p).toEqual({ name: "direct", kind: RoomKind.Direct, members: [fromHex(b, 20)], salt: new Uint8Array() });
  });

  it("has a route", () => {
    expect(parseRoute(href({ name: "new-direct" }))).toEqual({ name: "new-direct" });
  });
});

describe("control lines", () => {
  const self = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
  const other = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
  const keys = generateDeviceKeys();
  const msg = (kind: string, kindNo: number, payload: Uint8Array, sender = self) => {
    const { envelope } = composeDirect({ address: sender, signPublic: keys.signPublic, signSecret: keys.signSecret }, other === sender ? self : other);
    // A signed body for its shape, with the kind and payload under test.
    return { kind, sender, envelope: envelopeToJson({ ...envelope, body: bodyWith(envelope.body, kindNo, payload) }) };
  };

  it("says who did what", () => {
    expect(controlLine(msg("invite", Kind.Invite, encodeInvite({ members: [fromHex(other, 20)] })), self)).toBe("You invited 0x3C44…93BC");
    expect(controlLine(msg("remove", Kind.Remove, encodeRemove({ member: fromHex(self, 20) }), other), self)).toBe("0x3C44…93BC removed you");
    expect(controlLine(msg("set_role", Kind.SetRole, encodeSetRole({ member: fromHex(other, 20), role: Role.Admin })), self)).toBe("You made 0x3C44…93BC admin");
    expect(controlLine(msg("set_role", Kind.SetRole, encodeSetRole({ member: fromHex(other, 20), role: Role.Owner })), self)).toBe("You handed ownership to 0x3C44…93BC");
    expect(controlLine(msg("set_policy", Kind.SetPolicy, encodeSetPolicy({ policy: Policy.Open })), self)).toBe("You set the room to open");
    expect(controlLine(msg("rotate_key", Kind.RotateKey, new Uint8Array()), self)).toBe("You started a new key epoch");
    expect(controlLine(msg("leave", Kind.Leave, new Uint8Array(), other), self)).toBe("0x3C44…93BC left");
    expect(controlLine(msg("text", Kind.Text, new Uint8Array()), self)).toBeUndefined();
  });
});

/** A body re-encoded with another kind and payload (the line reads only the payload). */
function bodyWith(body: Uint8Array, kind: number, payload: Uint8Array): Uint8Array {
  return encodeBody({ ...decodeBody(body), kind, payload });
}
