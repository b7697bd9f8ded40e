// Building the envelopes the dApp sends: text messages, CreateRoom and Join.

import { fromHex, randomBytes, toHex, utf8 } from "../lib/bytes";
import { BODY_VERSION, Kind, signBody, type Envelope } from "./envelope";
import { directRoomId } from "./control";
import { encodeCreateRoom, roomId, RoomKind } from "./room";

/** The signing identity: the wallet and its delegated device key. */
export interface Signer {
  /** Wallet address (any case). */
  address: string;
  signPublic: Uint8Array;
  signSecret: Uint8Array;
}

/** What a message body may point at besides its payload: wallets mentioned, the message answered. */
export interface MessageRefs {
  /** Wallet addresses (any case). */
  mentions?: string[];
  /** Id of the message replied to. */
  replyTo?: string;
}

function base(signer: Signer, room: Uint8Array, lamport: number | bigint, kind: number, payload: Uint8Array, now: number, refs?: MessageRefs) {
  return signBody(
    {
      version: BODY_VERSION,
      room,
      sender: fromHex(signer.address, 20),
      deviceKey: signer.signPublic,
      timestampMs: BigInt(now),
      lamport: BigInt(lamport),
      kind,
      payload,
      ...(refs?.mentions?.length ? { mentions: refs.mentions.map((a) => fromHex(a, 20)) } : {}),
      ...(refs?.replyTo ? { replyTo: fromHex(refs.replyTo, 32) } : {}),
    },
    signer.signSecret,
  );
}

/** A text message. `lamport` is one more than the newest lamport seen in the room. */
export function composeText(signer: Signer, room: string, lamport: number, text: string, now = Date.now(), refs?: MessageRefs): Envelope {
  return base(signer, fromHex(room, 32), lamport, Kind.Text, utf8(text), now, refs);
}

/** A control envelope (invite, leave, remove, set role, set policy, rotate key) with its payload. */
export function composeControl(signer: Signer, room: string, lamport: number, kind: number, payload: Uint8Array, now = Date.now()): Envelope {
  return base(signer, fromHex(room, 32), lamport, kind, payload, now);
}

/** A sealed message: `payload` is the encoded `Sealed`. */
export function composeSealed(signer: Signer, room: string, lamport: number, kind: number, payload: Uint8Array, now = Date.now(), refs?: MessageRefs): Envelope {
  return base(signer, fromHex(room, 32), lamport, kind, payload, now, refs);
}

/**
 * The `CreateRoom` of the direct room with `peer` (lamport 0, name "direct", empty salt, members
 * = [peer]); either wallet may send it, and the node answers with the room when it exists.
 */
export function composeDirect(signer: Signer, peer: string, now = Date.now()): { envelope: Envelope; roomId: `0x${string}` } {
  const id = directRoomId(signer.address, peer);
  const payload = encodeCreateRoom({ name: "direct", kind: RoomKind.Direct, members: [fromHex(peer, 20)], salt: new Uint8Array() });
  return { envelope: base(signer, id, 0, Kind.CreateRoom, payload, now), roomId: toHex(id) };
}

/** A `Join` for a channel (empty payload, as the reference client sends). */
export function composeJoin(signer: Signer, room: string, lamport: number, now = Date.now()): Envelope {
  return base(signer, fromHex(room, 32), lamport, Kind.Join, new Uint8Array(), now);
}

/** A `CreateRoom` (lamport 0): the room id derives from the creator and a random salt. */
export function composeCreateRoom(
  signer: Signer,
  args: { name: string; kind: "group" | "channel"; members: string[]; salt?: Uint8Array },
  now = Date.now(),
): { envelope: Envelope; roomId: `0x${string}` } {
  const salt = args.salt ?? randomBytes(32);
  const sender = fromHex(signer.address, 20);
  const id = roomId(sender, salt);
  const payload = encodeCreateRoom({
    name: args.name,
    kind: args.kind === "group" ? RoomKind.Group : RoomKind.Channel,
    members: args.members.map((m) => fromHex(m, 20)),
    salt,
  });
  return { envelope: base(signer, id, 0, Kind.CreateRoom, payload, now), roomId: toHex(id) };
}
