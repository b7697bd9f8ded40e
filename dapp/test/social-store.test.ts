// The social store's writes against a scripted node: each takes the social clock the node gives
// just before it (one write after another), and typing pings follow the client-side limit.

import { describe, expect, it } from "vitest";
import type { NodeClient } from "../src/api/client";
import type { Room } from "../src/api/types";
import { generateDeviceKeys } from "../src/crypto/device";
import { toHex } from "../src/lib/bytes";
import { decodeBody, Kind, type Envelope } from "../src/protocol/envelope";
import { decodeNotificationsRead, decodePeer, decodeTyping, socialRoomId, SocialKind } from "../src/protocol/social";
import { ChatStore } from "../src/state/chat";
import { SocialStore } from "../src/state/social";
import type { Session } from "../src/state/session";

const ALICE = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" as const;
const BOB = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const ROOM = ("0x" + "ab".repeat(32)) as `0x${string}`;
const NOTE = "0x" + "cd".repeat(32);

function scriptedNode() {
  const room: Room = { id: ROOM, name: "g", kind: "channel", owner: ALICE, created_at: 0, role: "owner", policy: "open", next_lamport: 9 };
  const writes: { path: string; env: Envelope }[] = [];
  const posts: Envelope[] = [];
  let clock = 7;
  const client = {
    wsUrl: () => "ws://127.0.0.1:9/v1/ws",
    call: async (method: string, path: string, env?: Envelope) => {
      if (method === "GET" && path === "/v1/contacts") {
        return { contacts: [], incoming: [], outgoing: writes.some((w) => w.path === "/v1/contacts") ? [{ address: BOB, since_ms: 1 }] : [], blocked: [], next_lamport: clock };
      }
      if (method === "POST" && env) {
        // Like the node, a pause before answering: a second write must still wait for this one.
        await new Promise((r) => setTimeout(r, 20));
        writes.push({ path, env });
        clock++;
        if (path === "/v1/mutes") return { rooms: [ROOM] };
        return path === "/v1/contacts" ? { id: toHex(env.hash), fresh: true, state: "outgoing" } : { id: toHex(env.hash), fresh: true, unread: 0 };
      }
      if (path.startsWith("/v1/notifications")) return { notifications: [], unread: 0 };
      return { rooms: [], total: 0, notifications: 0, requests: [], presence: [] };
    },
    post: async (_room: string, env: Envelope) => {
      posts.push(env);
      return { id: toHex(env.hash), duplicate: false, stored: false };
    },
  };
  return { client: client as unknown as NodeClient, room, writes, posts };
}

function stores() {
  const node = scriptedNode();
  const session: Session = { address: ALICE, token: "t", expiresAt: 0, chainId: 31337, keys: generateDeviceKeys() };
  const chat = new ChatStore(node.client, session, () => undefined);
  chat.rooms = [node.room];
  return { node, chat, social: new SocialStore(node.client, session, chat) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("social store against a scripted node", () => {
  it("a contact request names the peer on the wallet's social id, at the social clock the node gives", async () => {
    const { node, social } = stores();
    expect(await social.contact("request", BOB)).toBe("outgoing");
    expect(node.writes).toHaveLength(1);
    const body = decodeBody(node.writes[0]!.env.body);
    expect(toHex(body.room)).toBe(socialRoomId(ALICE));
    expect(body.kind).toBe(SocialKind.FriendRequest);
    expect(body.lamport).toBe(7n);
    expect(decodePeer(body.payload)).toBe(BOB.toLowerCase());
    // The lists are read again afterwards.
    expect(social.relation(BOB)).toBe("outgoing");
    await expect(social.contact("request", ALICE.toLowerCase())).rejects.toThrow(/own address/);
  });

  it("writes made at once go one after another, each at the next social clock", async () => {
    const { node, social } = stores();
    await Promise.all([social.markNotification(NOTE), social.markAllNotifications(), social.setMuted(ROOM, true)]);
    expect(node.writes.map((w) => decodeBody(w.env.body).lamport)).toEqual([7n, 8n, 9n]);
    const [one, all, mute] = node.writes.map((w) => decodeBody(w.env.body));
    expect(one!.kind).toBe(SocialKind.NotificationsRead);
    expect(decodeNotificationsRead(one!.payload)).toEqual({ upToMs: 0n, ids: [NOTE] });
    expect(decodeNotificationsRead(all!.payload).upToMs).toBeGreaterThan(0n);
    expect(mute!.kind).toBe(SocialKind.Mute);
    expect(node.writes[2]!.path).toBe("/v1/mutes");
    expect(social.isMuted(ROOM)).toBe(true);
    expect(social.notifications.unread).toBe(0);
  });

  it("typing: one ping half a second after typing starts, none for a message sent at once, a stop after a ping", async () => {
    const { node, social } = stores();
    // Typed and sent at once: nothing goes out.
    social.typingInput(ROOM, false);
    social.typingStopped(ROOM);
    await sleep(700);
    expect(node.posts).toHaveLength(0);

    // Typing for a while: one ping, however many keystrokes.
    social.typingInput(ROOM, false);
    social.typingInput(ROOM, false);
    await sleep(600);
    social.typingInput(ROOM, false);
    expect(node.posts).toHaveLength(1);
    const ping = decodeBody(node.posts[0]!.body);
    expect(ping.kind).toBe(Kind.Typing);
    expect(toHex(ping.room)).toBe(ROOM);
    expect(decodeTyping(ping.payload).stopped).toBe(false);
    expect(ping.lamport).toBe(8n);

    // Cleared: a stop.
    social.typingInput(ROOM, true);
    await sleep(10);
    expect(node.posts).toHaveLength(2);
    expect(decodeTyping(decodeBody(node.posts[1]!.body).payload).stopped).toBe(true);
  });
});
