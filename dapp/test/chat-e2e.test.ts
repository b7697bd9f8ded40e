// The chat store's send path in a private room, against a scripted node: the first message
// starts a key epoch wrapped for every member device (and the sender's own), the message is
// sealed under it, and the next message reuses it while the node says no rotation is due.

import { describe, expect, it } from "vitest";
import type { NodeClient } from "../src/api/client";
import type { MembersReply, Room } from "../src/api/types";
import { generateDeviceKeys } from "../src/crypto/device";
import { decodeSealed, openMessage, unwrapEpochKey } from "../src/crypto/e2e";
import { fromHex, toHex } from "../src/lib/bytes";
import { decodeRotateKey } from "../src/protocol/control";
import { decodeBody, Kind, type Envelope } from "../src/protocol/envelope";
import { ChatStore } from "../src/state/chat";
import type { Session } from "../src/state/session";

const ALICE = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" as const;
const BOB = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const ROOM = ("0x" + "ab".repeat(32)) as `0x${string}`;

function scriptedNode(aliceBox: Uint8Array, bobBox: Uint8Array) {
  const room: Room = { id: ROOM, name: "g", kind: "group", owner: ALICE, created_at: 0, role: "owner", policy: "invite_only", next_lamport: 5 };
  const controls: { kind: number; env: Envelope }[] = [];
  const posts: Envelope[] = [];
  let epoch: MembersReply["epoch"] = null;
  const client = {
    wsUrl: () => "ws://127.0.0.1:9/v1/ws",
    room: async () => ({ ...room, next_lamport: 5 + controls.length + posts.length }),
    members: async (): Promise<MembersReply> => ({
      room,
      members: [
        { address: ALICE, role: "owner", box_keys: [toHex(aliceBox)] },
        { address: BOB, role: "member", box_keys: [toHex(bobBox)] },
      ],
      epoch,
      rotate: epoch === null,
    }),
    keys: async () => [],
    control: async (_room: string, kind: number, env: Envelope) => {
      controls.push({ kind, env });
      const body = decodeBody(env.body);
      epoch = { id: toHex(env.hash), lamport: Number(body.lamport), box_keys: [toHex(aliceBox), toHex(bobBox)] };
      return { id: toHex(env.hash), room };
    },
    post: async (_room: string, env: Envelope) => {
      posts.push(env);
      return { id: toHex(env.hash), duplicate: false, stored: true };
    },
  };
  return { client: client as unknown as NodeClient, room, controls, posts };
}

async function until(f: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(f()).toBe(true);
}

describe("sending in a private room", () => {
  it("rotates first, wraps for every member device and its own, then seals under the new epoch", async () => {
    const alice = generateDeviceKeys();
    const bob = generateDeviceKeys();
    const node = scriptedNode(alice.boxPublic, bob.boxPublic);
    const session: Session = { address: ALICE, token: "t", expiresAt: 0, chainId: 31337, keys: alice };
    const store = new ChatStore(node.client, session, () => undefined);
    store.rooms = [node.room];

    store.send(ROOM, "first secret");
    await until(() => node.posts.length === 1);

    expect(node.controls).toHaveLength(1);
    const rotate = node.controls[0]!;
    expect(rotate.kind).toBe(Kind.RotateKey);
    const rotateBody = decodeBody(rotate.env.body);
    expect(rotateBody.kind).toBe(Kind.RotateKey);
    expect(Number(rotateBody.lamport)).toBe(5);
    const wraps = decodeRotateKey(rotateBody.payload).wraps;
    expect(new Set(wraps.map((w) => toHex(w.boxKey)))).toEqual(new Set([toHex(alice.boxPublic), toHex(bob.boxPublic)]));

    // Bob's device unwraps the epoch key (aad: the rotating wallet) and opens the message.
    const bobWrap = wraps.find((w) => toHex(w.boxKey) === toHex(bob.boxPublic))!;
    const key = await unwrapEpochKey({ wrapped: bobWrap, boxSecret: bob.boxSecret, room: fromHex(ROOM, 32), sender: fromHex(ALICE, 20) });
    const msg = decodeBody(node.posts[0]!.body);
    expect(msg.kind).toBe(Kind.Text);
    expect(Number(msg.lamport)).toBeGreaterThan(5);
    const sealed = decodeSealed(msg.payload);
    expect(toHex(sealed.epoch)).toBe(toHex(rotate.env.hash));
    const opened = openMessage({ sealed: msg.payload, keyFor: () => key, room: msg.room, sender: msg.sender, kind: msg.kind });
    expect(new TextDecoder().decode(opened.plaintext)).toBe("first secret");

    // The shown copy is the plaintext, marked as sealed.
    const shown = store.view(ROOM).messages.find((m) => m.kind === "text")!;
    expect(shown.encrypted).toBe(true);
    expect(shown.plain).toBe("first secret");
    expect(shown.text).toBeUndefined();
    expect(store.view(ROOM).messages.some((m) => m.kind === "rotate_key")).toBe(true);

    // No rotation due and the key is held: the next message reuses the epoch.
    store.send(ROOM, "second secret");
    await until(() => node.posts.length === 2);
    expect(node.controls).toHaveLength(1);
    const second = decodeBody(node.posts[1]!.body);
    expect(toHex(decodeSealed(second.payload).epoch)).toBe(toHex(rotate.env.hash));
    expect(second.lamport).toBeGreaterThan(msg.lamport);
  });
});
