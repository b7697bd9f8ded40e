import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ed25519 } from "@noble/curves/ed25519.js";
import { concat, keccak256, toBytes } from "viem";
import { fromHex, toHex } from "../src/lib/bytes";
import { decodeBody, encodeBody, Kind, verifyEnvelope, type Body } from "../src/protocol/envelope";
import { composeSealed, composeText } from "../src/protocol/compose";
import {
  bodyRefs,
  composeContact,
  composeMute,
  composeNotificationsRead,
  composePresence,
  composeReadMark,
  composeSettings,
  composeTyping,
  decodeNotificationsRead,
  decodePeer,
  decodeReadMark,
  decodeTyping,
  encodeNotificationsRead,
  parseMentions,
  socialRoomId,
  SocialKind,
  type ContactAction,
} from "../src/protocol/social";
import {
  emptyNotifications,
  MAX_NOTIFICATIONS,
  MAX_NOTIFICATIONS_PAGED,
  notificationArrived,
  notificationsAppended,
  notificationsLoaded,
  notificationsMarked,
  typingIn,
  typingPing,
  typingPrune,
  typingText,
  TypingThrottle,
  TYPING_TTL_MS,
  unreadMessage,
  unreadRead,
  unreadSnapshot,
} from "../src/state/social-reducers";
import type { Notification } from "../src/api/social";
import { formatWei, notificationText } from "../src/ui/social/NotificationsPanel";
import { applyMention, mentionMatches, mentionQuery, splitMentions } from "../src/ui/social/mentions";

const secret = fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const ALICE = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2";
const BOB = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const signer = { address: ALICE, signSecret: secret, signPublic: ed25519.getPublicKey(secret) };
const ROOM = "0x" + "ab".repeat(32);
const MSG = "0x" + "cd".repeat(32);
const NOW = 1893456000123;
const bobHex = BOB.slice(2).toLowerCase();

describe("social ids", () => {
  it("are keccak256 of the domain and the 20 address bytes (checked with viem's Keccak)", () => {
    const expected = keccak256(concat([toBytes("dchat/social/v1"), toBytes(ALICE.toLowerCase() as `0x${string}`)]));
    expect(socialRoomId(ALICE)).toBe(expected);
    // The address's case does not matter: the bytes do.
    expect(socialRoomId(ALICE.toLowerCase())).toBe(expected);
    expect(socialRoomId(BOB)).not.toBe(expected);
  });
});

describe("social envelopes", () => {
  // Payload bytes encoded by hand from protocol/proto/envelope.proto (proto3: tag order,
  // defaults left out, as prost writes them).
  const contactCases: [ContactAction, number][] = [
    ["request", 32],
    ["accept", 33],
    ["decline", 34],
    ["remove", 35],
    ["block", 36],
    ["unblock", 37],
  ];
  for (const [action, kind] of contactCases) {
    it(`${action}: kind ${kind} on the author's social id, payload Peer { address }`, () => {
      const env = composeContact(signer, 4, action, BOB, NOW);
      expect(verifyEnvelope(env)).toBe(true);
      const body = decodeBody(env.body);
      expect(toHex(body.room)).toBe(socialRoomId(ALICE));
      expect(body.kind).toBe(kind);
      expect(body.lamport).toBe(4n);
      expect(body.timestampMs).toBe(BigInt(NOW));
      expect(toHex(body.sender)).toBe(ALICE.toLowerCase());
      expect(toHex(body.payload)).toBe("0x0a14" + bobHex);
      expect(decodePeer(body.payload)).toBe("0x" + bobHex);
    });
  }

  it("the whole body of a friend request, byte for byte", () => {
    const env = composeContact(signer, 1, "request", BOB, NOW);
    const expected =
      "0801" + // version
      "1220" + socialRoomId(ALICE).slice(2) + // room = social id
      "1a14" + ALICE.slice(2).toLowerCase() + // sender
      "2220" + toHex(signer.signPublic).slice(2) + // device key
      "28fbe896d68d37" + // timestamp_ms
      "3001" + // lamport 1
      "3820" + // kind 32
      "4216" + "0a14" + bobHex; // payload: Peer
    expect(toHex(env.body)).toBe("0x" + expected);
    expect(toHex(env.hash)).toBe(keccak256(env.body));
  });

  it("notifications read: up_to_ms and ids", () => {
    const env = composeNotificationsRead(signer, 9, 1767225600000, [MSG], NOW);
    const body = decodeBody(env.body);
    expect(body.kind).toBe(SocialKind.NotificationsRead);
    expect(toHex(body.room)).toBe(socialRoomId(ALICE));
    // 1767225600000 as a varint: 80 d0 ea b6 b7 33.
    expect(toHex(body.payload)).toBe("0x0880d0eab6b733" + "1220" + "cd".repeat(32));
    expect(decodeNotificationsRead(body.payload)).toEqual({ upToMs: 1767225600000n, ids: [MSG] });
    // By id only: up_to_ms left out.
    expect(toHex(encodeNotificationsRead(0, [MSG]))).toBe("0x1220" + "cd".repeat(32));
    expect(() => encodeNotificationsRead(0, Array(257).fill(MSG))).toThrow(/256/);
  });

  it("mute: the room, and muted only when true", () => {
    const on = decodeBody(composeMute(signer, 2, ROOM, true, NOW).body);
    expect(on.kind).toBe(SocialKind.Mute);
    expect(toHex(on.payload)).toBe("0x0a20" + "ab".repeat(32) + "1001");
    const off = decodeBody(composeMute(signer, 3, ROOM, false, NOW).body);
    expect(toHex(off.payload)).toBe("0x0a20" + "ab".repeat(32));
  });

  it("settings: hide_presence", () => {
    expect(toHex(decodeBody(composeSettings(signer, 2, { hidePresence: true }, NOW).body).payload)).toBe("0x0801");
    const off = decodeBody(composeSettings(signer, 2, { hidePresence: false }, NOW).body);
    expect(off.kind).toBe(SocialKind.Settings);
    expect(off.payload.length).toBe(0);
  });

  it("presence: kind 8 on the social id, status 1 / 2 / 3", () => {
    for (const [status, byte] of [
      ["online", "01"],
      ["away", "02"],
      ["offline", "03"],
    ] as const) {
      const body = decodeBody(composePresence(signer, 5, status, NOW).body);
      expect(body.kind).toBe(Kind.Presence);
      expect(toHex(body.room)).toBe(socialRoomId(ALICE));
      expect(toHex(body.payload)).toBe("0x08" + byte);
    }
  });

  it("read mark: kind 6 in the room itself, ReadMark { lamport, message }", () => {
    const env = composeReadMark(signer, ROOM, 12, MSG, NOW);
    expect(verifyEnvelope(env)).toBe(true);
    const body = decodeBody(env.body);
    expect(body.kind).toBe(Kind.Receipt);
    expect(toHex(body.room)).toBe(ROOM);
    expect(body.lamport).toBe(12n);
    expect(toHex(body.payload)).toBe("0x080c1220" + "cd".repeat(32));
    expect(decodeReadMark(body.payload).lamport).toBe(12n);
  });

  it("typing: kind 7 in the room; typing is the empty payload, stopped is 0801", () => {
    const typing = decodeBody(composeTyping(signer, ROOM, 3, false, NOW).body);
    expect(typing.kind).toBe(Kind.Typing);
    expect(toHex(typing.room)).toBe(ROOM);
    expect(typing.payload.length).toBe(0);
    expect(decodeTyping(typing.payload).stopped).toBe(false);
    const stopped = decodeBody(composeTyping(signer, ROOM, 3, true, NOW).body);
    expect(toHex(stopped.payload)).toBe("0x0801");
    expect(decodeTyping(stopped.payload).stopped).toBe(true);
  });
});

describe("mentions and replies in the body", () => {
  it("encodes mentions (9, repeated) and reply_to (10) after the payload", () => {
    const body: Body = {
      version: 1,
      room: new Uint8Array(32).fill(0x11),
      sender: new Uint8Array(20).fill(0x22),
      deviceKey: new Uint8Array(32).fill(0x33),
      timestampMs: 1893456000123n,
      lamport: 7n,
      kind: Kind.Text,
      payload: new TextEncoder().encode("hello"),
      mentions: [fromHex(BOB, 20), new Uint8Array(20).fill(0x44)],
      replyTo: fromHex(MSG, 32),
    };
    const hex = toHex(encodeBody(body));
    expect(hex.endsWith("420568656c6c6f" + "4a14" + bobHex + "4a14" + "44".repeat(20) + "5220" + "cd".repeat(32))).toBe(true);
    expect(decodeBody(encodeBody(body))).toEqual(body);
  });

  it("text and sealed messages carry them when given, and only then", () => {
    const plain = composeText(signer, ROOM, 3, "hi", NOW);
    expect(bodyRefs({ body: toHex(plain.body) })).toEqual({ mentions: [] });
    const withRefs = composeText(signer, ROOM, 3, `hi @${BOB}`, NOW, { mentions: [BOB], replyTo: MSG });
    expect(bodyRefs({ body: toHex(withRefs.body) })).toEqual({ mentions: ["0x" + bobHex], replyTo: MSG });
    const sealed = composeSealed(signer, ROOM, 3, Kind.Text, new Uint8Array([1, 2]), NOW, { replyTo: MSG });
    expect(bodyRefs({ body: toHex(sealed.body) }).replyTo).toBe(MSG);
    expect(verifyEnvelope(withRefs)).toBe(true);
  });

  it("finds @0x… mentions in a text, each once", () => {
    expect(parseMentions(`hey @${BOB} and @${BOB.toLowerCase()}, also @${ALICE}!`)).toEqual(["0x" + bobHex, ALICE.toLowerCase()]);
    expect(parseMentions(`mail@${BOB}`)).toEqual([]);
    expect(parseMentions(`@${BOB}ff`)).toEqual([]);
    expect(parseMentions("no mentions @0x1234")).toEqual([]);
  });

  it("completes the @ being typed with a member's address", () => {
    const text = "hi @0x7099";
    const q = mentionQuery(text, text.length)!;
    expect(q).toEqual({ start: 3, prefix: "0x7099" });
    expect(mentionMatches([ALICE, BOB], q.prefix, ALICE)).toEqual([BOB]);
    expect(mentionMatches([ALICE, BOB], "", ALICE)).toEqual([BOB]);
    expect(applyMention(text, q.start, text.length, BOB)).toEqual({ text: `hi @${BOB} `, caret: 4 + 42 + 1 });
    expect(mentionQuery("mail@0x70", 9)).toBeUndefined();
    expect(mentionQuery("hi @", 4)).toEqual({ start: 3, prefix: "" });
    expect(splitMentions(`hi @${BOB}, and @${ALICE}`)).toEqual(["hi ", { address: BOB }, ", and ", { address: ALICE }]);
    expect(splitMentions("plain")).toEqual(["plain"]);
    expect(splitMentions(`@${BOB}`)).toEqual([{ address: BOB }]);
    expect(splitMentions(`mail@${BOB}`)).toEqual([`mail@${BOB}`]);
    // A whole address needs no completion.
    expect(mentionQuery(`hi @${BOB}`, 4 + 42)).toBeUndefined();
  });
});

const note = (id: string, created_ms: number, kind = "mention", read = false): Notification => ({ id: id as `0x${string}`, kind, room: null, actor: BOB, created_ms, read });

describe("notifications state", () => {
  it("adds a live notification once, newest first, with the node's count", () => {
    let s = notificationsLoaded(emptyNotifications, [note("0x01", 100), note("0x02", 200, "reply", true)], 1);
    expect(s.items.map((n) => n.id)).toEqual(["0x02", "0x01"]);
    s = notificationArrived(s, note("0x03", 300), 2);
    expect(s.items[0]!.id).toBe("0x03");
    expect(s.unread).toBe(2);
    // The same one again (a reconnect replays nothing twice).
    const again = notificationArrived(s, note("0x03", 300));
    expect(again.items).toHaveLength(3);
    expect(again.unread).toBe(2);
    // Without the node's count, one more.
    expect(notificationArrived(s, note("0x04", 400)).unread).toBe(3);
  });

  it("pages older notifications below, once each, and keeps them when a new one arrives", () => {
    const newest = Array.from({ length: MAX_NOTIFICATIONS }, (_, i) => note(`0x${(1000 + i).toString(16)}`, 10_000 - i));
    let s = notificationsLoaded(emptyNotifications, newest, 5, "0xlast");
    expect(s.next).toBe("0xlast");
    // The older page repeats one already shown (it arrived between the two requests).
    s = notificationsAppended(s, [newest[newest.length - 1]!, note("0x01", 50), note("0x02", 40)], 6, undefined);
    expect(s.items).toHaveLength(MAX_NOTIFICATIONS + 2);
    expect(s.items.slice(-2).map((n) => n.id)).toEqual(["0x01", "0x02"]);
    expect(s.next).toBeUndefined();
    expect(s.unread).toBe(6);
    // A live one goes on top and the older ones stay.
    s = notificationArrived(s, note("0x03", 20_000));
    expect(s.items[0]!.id).toBe("0x03");
    expect(s.items).toHaveLength(MAX_NOTIFICATIONS + 3);
    expect(s.next).toBeUndefined();
  });

  it("keeps at most the paged cap, and the next page starts after the last kept", () => {
    const many = Array.from({ length: MAX_NOTIFICATIONS_PAGED }, (_, i) => note(`0x${(5000 + i).toString(16)}`, 100_000 - i));
    let s = notificationsAppended(emptyNotifications, many, 0, "0xnext");
    expect(s.items).toHaveLength(MAX_NOTIFICATIONS_PAGED);
    expect(s.next).toBe("0xnext");
    s = notificationArrived(s, note("0x04", 200_000));
    expect(s.items).toHaveLength(MAX_NOTIFICATIONS_PAGED);
    expect(s.next).toBe(many[many.length - 2]!.id);
  });

  it("marks one by id, or all up to a time", () => {
    const s = notificationsLoaded(emptyNotifications, [note("0x01", 100), note("0x02", 200), note("0x03", 300)], 3);
    const one = notificationsMarked(s, { ids: ["0x02"] });
    expect(one.items.filter((n) => n.read).map((n) => n.id)).toEqual(["0x02"]);
    expect(one.unread).toBe(2);
    const upTo = notificationsMarked(one, { upToMs: 200 });
    expect(upTo.items.filter((n) => !n.read).map((n) => n.id)).toEqual(["0x03"]);
    expect(upTo.unread).toBe(1);
    expect(notificationsMarked(s, { upToMs: 1000, unread: 0 }).items.every((n) => n.read)).toBe(true);
  });

  it("words known kinds, a tip with its amount, and any other kind generically", () => {
    expect(notificationText(note("0x01", 1, "mention"))).toBe("0x7099…79C8 mentioned you");
    expect(notificationText(note("0x01", 1, "contact_request"))).toBe("0x7099…79C8 asked to be your contact");
    expect(notificationText({ ...note("0x01", 1, "tip"), amount: "10000000000000000" })).toBe("0x7099…79C8 tipped you 0.01 ETH");
    expect(notificationText(note("0x01", 1, "tip"))).toBe("0x7099…79C8 tipped you");
    const tip = { token: "0x" + "00".repeat(20), amount: "20000000000000000", fee: "200000000000000", message: MSG, chain_id: 31337 };
    expect(notificationText({ ...note("0x01", 1, "tip"), tip })).toBe("0x7099…79C8 tipped you 0.02 ETH");
    expect(notificationText(note("0x01", 1, "room_archived"))).toBe("0x7099…79C8: room archived");
    expect(notificationText(note("0x01", 1, "mention"), "Plans")).toBe("0x7099…79C8 mentioned you in Plans");
    expect(notificationText(note("0x01", 1, "invite"))).toBe("0x7099…79C8 added you to a room");
    expect(notificationText(note("0x01", 1, "invite"), "Plans")).toBe("0x7099…79C8 added you to Plans");
    expect(formatWei("1500000000000000000")).toBe("1.5");
    expect(formatWei("x")).toBeUndefined();
  });
});

describe("unread state", () => {
  const self = ALICE;
  const base = unreadSnapshot({}, [{ room: ROOM as `0x${string}`, unread: 2, read_lamport: 5, muted: false, request: false }]);
  const msg = (id: string, lamport: number, sender = BOB, kind = "text") => ({ id, room: ROOM, lamport, kind, sender });

  it("counts live messages of others past the read mark, once each", () => {
    let s = unreadMessage(base, msg("0xa", 6), self);
    expect(s[ROOM]!.unread).toBe(3);
    s = unreadMessage(s, msg("0xa", 6), self);
    expect(s[ROOM]!.unread).toBe(3);
    // Own messages, control messages, and messages at or below the mark do not count.
    expect(unreadMessage(s, msg("0xb", 7, ALICE), self)).toBe(s);
    expect(unreadMessage(s, msg("0xc", 7, BOB, "join"), self)).toBe(s);
    expect(unreadMessage(s, msg("0xd", 5), self)).toBe(s);
    // Rooms the node has not counted yet are left to the caller.
    expect(unreadMessage(s, { ...msg("0xe", 9), room: MSG }, self)).toBe(s);
  });

  it("a read mark at the newest message clears the room; a lower one leaves what came after", () => {
    let s = unreadMessage(base, msg("0xa", 6), self);
    s = unreadMessage(s, msg("0xb", 8), self);
    expect(unreadRead(s, ROOM, 8, 8)[ROOM]).toMatchObject({ unread: 0, readLamport: 8 });
    expect(unreadRead(s, ROOM, 6, 8)[ROOM]).toMatchObject({ unread: 1, readLamport: 6 });
    // An older mark changes nothing, nor a mark in a room the node has not counted yet.
    expect(unreadRead(s, ROOM, 3, 8)).toBe(s);
    expect(unreadRead(s, MSG, 30, 30)).toBe(s);
  });

  it("keeps a mark sent from here over a node answer computed before it landed", () => {
    const read = unreadRead(base, ROOM, 9, 9);
    const stale = unreadSnapshot(read, [{ room: ROOM as `0x${string}`, unread: 4, read_lamport: 5, muted: true, request: false }]);
    expect(stale[ROOM]).toMatchObject({ unread: 0, readLamport: 9, muted: true });
    const fresh = unreadSnapshot(read, [{ room: ROOM as `0x${string}`, unread: 1, read_lamport: 9, muted: false, request: false }]);
    expect(fresh[ROOM]).toMatchObject({ unread: 1, readLamport: 9 });
  });
});

describe("typing state", () => {
  it("shows a ping until the TTL passes, and ends it on stopped", () => {
    let s = typingPing({}, ROOM, BOB, false, 1000);
    expect(typingIn(s, ROOM, 1000 + TYPING_TTL_MS - 1)).toEqual([BOB.toLowerCase()]);
    expect(typingIn(s, ROOM, 1000 + TYPING_TTL_MS)).toEqual([]);
    expect(typingPrune(s, 1000 + TYPING_TTL_MS)).toEqual({});
    expect(typingPrune(s, 2000)).toBe(s);
    // A refresh extends it; stopped ends it at once.
    s = typingPing(s, ROOM, BOB, false, 5000);
    expect(typingIn(s, ROOM, 1000 + TYPING_TTL_MS + 100)).toHaveLength(1);
    expect(typingIn(typingPing(s, ROOM, BOB, true, 5001), ROOM, 5001)).toEqual([]);
    // A stop for someone not typing changes nothing.
    expect(typingPing(s, ROOM, ALICE, true, 5001)).toBe(s);
  });

  it("words one, two or more typists", () => {
    const short = (a: string) => a.slice(0, 4);
    expect(typingText([], short)).toBe("");
    expect(typingText(["0xab"], short)).toBe("0xab is typing…");
    expect(typingText(["0xab", "0xcd"], short)).toBe("0xab and 0xcd are typing…");
    expect(typingText(["0xab", "0xcd", "0xef"], short)).toBe("3 people are typing…");
  });

  it("sends at most one ping every 3 s per room, and a stop only after a ping within the hold", () => {
    const t = new TypingThrottle();
    expect(t.ping(ROOM, 0)).toBe(true);
    expect(t.ping(ROOM, 2999)).toBe(false);
    expect(t.ping(MSG, 100)).toBe(true);
    expect(t.ping(ROOM, 3000)).toBe(true);
    expect(t.stop(ROOM, 4000)).toBe(true);
    expect(t.stop(ROOM, 4001)).toBe(false);
    t.ping(ROOM, 10_000);
    expect(t.stop(ROOM, 10_000 + TYPING_TTL_MS)).toBe(false);
  });
});

describe("shared vectors written by the protocol crate (protocol/testdata/social/vectors.json)", () => {
  interface Case {
    name: string;
    kind: number;
    room: string;
    lamport: number;
    payload: string;
    mentions: string[];
    reply_to: string;
    body: string;
    id: string;
  }
  const path = fileURLToPath(new URL("../../protocol/testdata/social/vectors.json", import.meta.url));
  const v = JSON.parse(readFileSync(path, "utf8")) as { author: string; social_room: string; cases: Case[] };
  // Only the body's device key matters here; the signature is not part of the vectors.
  const vsigner = { address: v.author, signPublic: new Uint8Array(32).fill(0x55), signSecret: secret };
  const at = 1767225600000;
  const PEER = "0x" + "22".repeat(20);
  const CONTACT_CASES: Record<string, ContactAction> = {
    friend_request: "request",
    friend_accept: "accept",
    friend_decline: "decline",
    friend_remove: "remove",
    block: "block",
    unblock: "unblock",
  };
  const build = (c: Case) => {
    const m = c.mentions;
    switch (c.name) {
      case "friend_request":
      case "friend_accept":
      case "friend_decline":
      case "friend_remove":
      case "block":
      case "unblock":
        return composeContact(vsigner, c.lamport, CONTACT_CASES[c.name]!, PEER, at);
      case "notifications_read_all":
        return composeNotificationsRead(vsigner, c.lamport, at, [], at);
      case "notifications_read_ids":
        return composeNotificationsRead(vsigner, c.lamport, 0, ["0x" + "44".repeat(32)], at);
      case "mute":
        return composeMute(vsigner, c.lamport, "0x" + "33".repeat(32), true, at);
      case "unmute":
        return composeMute(vsigner, c.lamport, "0x" + "33".repeat(32), false, at);
      case "hide_presence":
        return composeSettings(vsigner, c.lamport, { hidePresence: true }, at);
      case "show_presence":
        return composeSettings(vsigner, c.lamport, { hidePresence: false }, at);
      case "presence_online":
        return composePresence(vsigner, c.lamport, "online", at);
      case "presence_away":
        return composePresence(vsigner, c.lamport, "away", at);
      case "presence_offline":
        return composePresence(vsigner, c.lamport, "offline", at);
      case "read_mark":
        return composeReadMark(vsigner, c.room, 12, "0x" + "44".repeat(32), at);
      case "typing":
        return composeTyping(vsigner, c.room, c.lamport, false, at);
      case "typing_stopped":
        return composeTyping(vsigner, c.room, c.lamport, true, at);
      case "text_mention_reply":
        return composeText(vsigner, c.room, c.lamport, "hi", at, { mentions: m, replyTo: c.reply_to });
      default:
        throw new Error(`no builder for ${c.name}`);
    }
  };

  it("names the author's social id as this module computes it", () => {
    expect(socialRoomId(v.author)).toBe(v.social_room);
    expect(v.cases.length).toBeGreaterThanOrEqual(19);
  });

  for (const c of v.cases) {
    it(`${c.name}: the same body bytes and id`, () => {
      const env = build(c);
      expect(toHex(env.body)).toBe(c.body);
      expect(toHex(env.hash)).toBe(c.id);
      expect(toHex(decodeBody(env.body).payload)).toBe(c.payload);
    });
  }
});
