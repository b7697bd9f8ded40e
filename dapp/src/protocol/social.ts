// The social layer's envelopes (protocol/src/social.rs, payloads in protocol/proto/envelope.proto):
// contacts and blocks, notifications read, mutes, settings and presence name the author's social
// id as their room and the author's social clock as lamport; read marks and typing name the room
// they are about.

import { keccak_256 } from "@noble/hashes/sha3.js";
import { concatBytes, fromHex, toHex, utf8, type Hex } from "../lib/bytes";
import { composeControl, type Signer } from "./compose";
import { decodeBody, Kind, type Envelope } from "./envelope";
import { getBytes, getRepeatedBytes, getUint, readFields, Writer } from "./wire";

/** Social kinds (`enum Kind`, 32–40). */
export const SocialKind = {
  FriendRequest: 32,
  FriendAccept: 33,
  FriendDecline: 34,
  FriendRemove: 35,
  Block: 36,
  Unblock: 37,
  NotificationsRead: 38,
  Mute: 39,
  Settings: 40,
} as const;
export type SocialKind = (typeof SocialKind)[keyof typeof SocialKind];

/** The contact kinds, whose payload is a `Peer`. */
export type ContactAction = "request" | "accept" | "decline" | "remove" | "block" | "unblock";

export const CONTACT_KIND: Record<ContactAction, number> = {
  request: SocialKind.FriendRequest,
  accept: SocialKind.FriendAccept,
  decline: SocialKind.FriendDecline,
  remove: SocialKind.FriendRemove,
  block: SocialKind.Block,
  unblock: SocialKind.Unblock,
};

/** `enum Status` of `Presence`. */
export const PresenceStatus = { Online: 1, Away: 2, Offline: 3 } as const;
export type PresenceStatusName = "online" | "away" | "offline";

/** Most notification ids one `NotificationsRead` marks (the node refuses more). */
export const MAX_READ_IDS = 256;

const SOCIAL_DOMAIN = utf8("dchat/social/v1");

/** keccak256("dchat/social/v1" ‖ address): the room a wallet's own social envelopes name. */
export function socialRoomId(address: string): Hex {
  return toHex(keccak_256(concatBytes(SOCIAL_DOMAIN, fromHex(address, 20))));
}

/** `Peer { bytes address = 1 }`. */
export function encodePeer(address: string): Uint8Array {
  return new Writer().bytes(1, fromHex(address, 20)).finish();
}

export function decodePeer(b: Uint8Array): string {
  return toHex(getBytes(readFields(b), 1));
}

/** `ReadMark { uint64 lamport = 1; bytes message = 2 }`. */
export function encodeReadMark(lamport: number | bigint, message?: string): Uint8Array {
  return new Writer()
    .uint(1, lamport)
    .bytes(2, message ? fromHex(message, 32) : new Uint8Array())
    .finish();
}

export function decodeReadMark(b: Uint8Array): { lamport: bigint; message: Uint8Array } {
  const f = readFields(b);
  return { lamport: getUint(f, 1), message: getBytes(f, 2) };
}

/** `NotificationsRead { uint64 up_to_ms = 1; repeated bytes ids = 2 }`. */
export function encodeNotificationsRead(upToMs: number | bigint, ids: string[] = []): Uint8Array {
  if (ids.length > MAX_READ_IDS) throw new RangeError(`at most ${MAX_READ_IDS} notification ids`);
  const w = new Writer().uint(1, upToMs);
  for (const id of ids) w.bytesAlways(2, fromHex(id, 32));
  return w.finish();
}

export function decodeNotificationsRead(b: Uint8Array): { upToMs: bigint; ids: Hex[] } {
  const f = readFields(b);
  return { upToMs: getUint(f, 1), ids: getRepeatedBytes(f, 2).map(toHex) };
}

/** `Mute { bytes room = 1; bool muted = 2 }`. */
export function encodeMute(room: string, muted: boolean): Uint8Array {
  return new Writer()
    .bytes(1, fromHex(room, 32))
    .uint(2, muted ? 1 : 0)
    .finish();
}

/** `Settings { bool hide_presence = 1 }`. */
export function encodeSettings(s: { hidePresence: boolean }): Uint8Array {
  return new Writer().uint(1, s.hidePresence ? 1 : 0).finish();
}

/** `Typing { bool stopped = 1 }`: typing is the empty payload. */
export function encodeTyping(stopped: boolean): Uint8Array {
  return new Writer().uint(1, stopped ? 1 : 0).finish();
}

export function decodeTyping(b: Uint8Array): { stopped: boolean } {
  return { stopped: getUint(readFields(b), 1) !== 0n };
}

/** `Presence { Status status = 1 }`. */
export function encodePresence(status: PresenceStatusName): Uint8Array {
  const v = status === "online" ? PresenceStatus.Online : status === "away" ? PresenceStatus.Away : PresenceStatus.Offline;
  return new Writer().uint(1, v).finish();
}

/** An envelope on the author's social id at the author's social clock (`next_lamport`). */
function onSocialId(signer: Signer, lamport: number, kind: number, payload: Uint8Array, now: number): Envelope {
  return composeControl(signer, socialRoomId(signer.address), lamport, kind, payload, now);
}

/** A contact envelope (request, accept, decline, remove, block, unblock) about `peer`. */
export function composeContact(signer: Signer, lamport: number, action: ContactAction, peer: string, now = Date.now()): Envelope {
  return onSocialId(signer, lamport, CONTACT_KIND[action], encodePeer(peer), now);
}

/** Marks notifications read: all created up to `upToMs` (0: none that way) and those listed. */
export function composeNotificationsRead(signer: Signer, lamport: number, upToMs: number, ids: string[] = [], now = Date.now()): Envelope {
  return onSocialId(signer, lamport, SocialKind.NotificationsRead, encodeNotificationsRead(upToMs, ids), now);
}

/** Mutes (or unmutes) a room's notifications; the latest per room wins. */
export function composeMute(signer: Signer, lamport: number, room: string, muted: boolean, now = Date.now()): Envelope {
  return onSocialId(signer, lamport, SocialKind.Mute, encodeMute(room, muted), now);
}

/** The wallet's settings; the latest wins. */
export function composeSettings(signer: Signer, lamport: number, settings: { hidePresence: boolean }, now = Date.now()): Envelope {
  return onSocialId(signer, lamport, SocialKind.Settings, encodeSettings(settings), now);
}

/** The wallet's presence (ephemeral), on its social id. */
export function composePresence(signer: Signer, lamport: number, status: PresenceStatusName, now = Date.now()): Envelope {
  return onSocialId(signer, lamport, Kind.Presence, encodePresence(status), now);
}

/** A read mark in `room`: every message up to `readLamport` is read (`lamport` of the body too). */
export function composeReadMark(signer: Signer, room: string, readLamport: number, message?: string, now = Date.now()): Envelope {
  return composeControl(signer, room, readLamport, Kind.Receipt, encodeReadMark(readLamport, message), now);
}

/** A typing ping (or its end) in `room`; `lamport` follows the room's newest message. */
export function composeTyping(signer: Signer, room: string, lamport: number, stopped: boolean, now = Date.now()): Envelope {
  return composeControl(signer, room, lamport, Kind.Typing, encodeTyping(stopped), now);
}

/** `@0x…` mentions in a text: the addresses, lowercase, each once. */
export function parseMentions(text: string): Hex[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/(^|[^0-9A-Za-z_])@(0x[0-9a-fA-F]{40})(?![0-9a-fA-F])/g)) out.add(m[2]!.toLowerCase());
  return [...out] as Hex[];
}

/** The mentions and the message replied to of a served message's signed body. */
export function bodyRefs(envelope: { body: string }): { mentions: Hex[]; replyTo?: Hex } {
  try {
    const body = decodeBody(fromHex(envelope.body));
    return { mentions: (body.mentions ?? []).map(toHex), ...(body.replyTo?.length ? { replyTo: toHex(body.replyTo) } : {}) };
  } catch {
    return { mentions: [] };
  }
}
