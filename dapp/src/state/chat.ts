// The signed-in app's state: rooms, their timelines, unread counts and the live connection.
// Lives outside React; components subscribe to changes (useSyncExternalStore).

import { ApiError, type NodeClient } from "../api/client";
import { LiveConnection, type LiveStatus } from "../api/live";
import type { ChannelEntry, Member, MembersReply, Message, NodeInfo, Room } from "../api/types";
import { describeError } from "../lib/errors";
import { fromHex, toHex, type Hex } from "../lib/bytes";
import { decodeBody, envelopeFromJson, envelopeToJson, Kind, verifyMessage, type Envelope } from "../protocol/envelope";
import { composeControl, composeCreateRoom, composeDirect, composeJoin, composeSealed, composeText, type MessageRefs, type Signer } from "../protocol/compose";
import { encodeInvite, encodeRemove, encodeRotateKey, encodeSetPolicy, encodeSetRole, type Gate, type Policy, type Role } from "../protocol/control";
import { decodeMediaRef, encodeMediaRef, type MediaRef } from "../protocol/media";
import { messageTokens, queryTokens, searchKey } from "../crypto/search";
import { IndexerClient, type MessageHit } from "../api/indexer";
import { GatewayClient, type LinkedProfile } from "../api/gateway";
import type { Session } from "./session";
import { OnChain } from "./onchain";
import type { Wallet } from "../wallet/wallet";

export type SendStatus = "sent" | "pending" | "failed";

/** Where a sealed message stands on this device. */
export type SealedState = "opening" | "open" | "no_key" | "bad";

export interface ChatMessage extends Message {
  status: SendStatus;
  /** The opened text of a sealed message. */
  plain?: string;
  /** Sealed messages only. */
  sealed?: SealedState;
  /** Why a send failed. */
  error?: string;
  /** False when the envelope does not prove what the node says (see verifyMessage). */
  verified: boolean;
  /** A media message's reference (opened, in private rooms). */
  media?: MediaRef;
}

/** An upload in progress (or failed) in a room's composer. */
export interface UploadState {
  name: string;
  sent: number;
  total: number;
  phase: "encrypting" | "uploading" | "sending" | "failed";
  error?: string;
}

/** Largest file this client sends (the node's default limit; a receiver decrypts it in memory). */
export const MAX_UPLOAD_BYTES = 100 * 1024 * 1024;

/** Messages kinds that count as unread. */
const CONTENT_KINDS = new Set(["text", "media"]);
const PAGE = 50;
/** Re-post the same envelope while the node still accepts its timestamp (max_past_ms is 10 min). */
const RESEND_SAME_MS = 8 * 60_000;
/** Largest text this client sends (the node's envelope limit is 64 KiB). */
export const MAX_TEXT_BYTES = 60_000;
const ROOMS_POLL_MS = 5_000;

/** Display order: (lamport, timestamp_ms, id). */
export function sortKey(m: { lamport: number; timestamp_ms: number; id: string }): string {
  return `${String(m.lamport).padStart(20, "0")}:${String(m.timestamp_ms).padStart(16, "0")}:${m.id.toLowerCase()}`;
}

interface Timeline {
  /** The node refused a plain message here (`not_encrypted`): the room needs end-to-end encryption. */
  encryptionRequired: boolean;
  byId: Map<string, ChatMessage>;
  sorted: ChatMessage[];
  hasMoreBefore: boolean;
  loadingOlder: boolean;
  loadedNewest: boolean;
  loadError?: string;
  /** The node refused a read or a post with `gate_not_met`: a paid member's subscription lapsed. */
  gateLapsed: boolean;
  maxLamport: number;
  /** Envelopes of this client's messages that are not confirmed yet, by id. */
  outbox: Map<string, { envelope: Envelope; text: string; createdAt: number; media?: boolean; index?: { epochKey: Uint8Array }; refs?: MessageRefs }>;
  /** Why the last encrypted send could not start (no epoch key, refused rotation). */
  sendError?: string;
  upload?: UploadState;
}

/** The epoch keys this device holds, by epoch id; learnt from `GET /keys` or made here. */
type EpochKeys = Map<string, Uint8Array>;

export function isPrivate(room: Pick<Room, "kind">): boolean {
  return room.kind === "group" || room.kind === "direct";
}

const e2e = () => import("../crypto/e2e");
const mediaCrypto = () => import("../crypto/media");

function emptyTimeline(): Timeline {
  return {
    encryptionRequired: false,
    gateLapsed: false,
    byId: new Map(),
    sorted: [],
    hasMoreBefore: false,
    loadingOlder: false,
    loadedNewest: false,
    maxLamport: -1,
    outbox: new Map(),
  };
}

export class ChatStore {
  rooms: Room[] = [];
  roomsLoaded = false;
  roomsError: string | undefined;
  liveStatus: LiveStatus = "connecting";
  /** Bumped on every change; React re-renders on it. */
  version = 0;

  private timelines = new Map<string, Timeline>();
  private seen: Record<string, string>;
  private openRoom: string | undefined;
  private listeners = new Set<() => void>();
  private live: LiveConnection;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private readonly signer: Signer;
  private readonly self: string;
  /** Epoch keys by room, then epoch id. Kept in memory; the node serves the wrapped keys again. */
  private epochKeys = new Map<string, EpochKeys>();
  private keyFetches = new Map<string, Promise<void>>();
  /** Rooms whose sends wait on each other (a key rotation must land before the next message). */
  private sendChains = new Map<string, Promise<void>>();
  /** The other wallet of each direct room, once known. */
  private directPeers = new Map<string, string>();
  /** Members of rooms whose panel was opened. */
  private memberLists = new Map<string, MembersReply>();
  /** A notice for the room list (for example: removed from a room). */
  notice: string | undefined;
  /** The search indexer, when the node names one (`GET /v1/info`). */
  indexer: IndexerClient | undefined;
  /** The LinkedIn gateway, when the node names one. */
  gateway: GatewayClient | undefined;
  /** Linked profiles by lowercase address (null: none), for verified badges. */
  private profiles = new Map<string, LinkedProfile | null | "loading">();
  /** What the node says about itself and its services. */
  info: NodeInfo | undefined;
  infoLoaded = false;
  /** Anchored-message proofs and the wallet's view of the contracts. */
  readonly onchain: OnChain;
  /** Token uploads by message id: "pending", "indexed" or the error (for tests and the UI). */
  tokenUploads = new Map<string, string>();
  /** Decoded media by CID: an object URL, or the error. */
  private mediaUrls = new Map<string, { url?: string; error?: string; loading?: boolean }>();

  constructor(
    private readonly client: NodeClient,
    private readonly session: Session,
    private readonly onExpired: () => void,
    wallet?: Wallet,
  ) {
    this.self = session.address.toLowerCase();
    this.onchain = new OnChain(client, session.address as `0x${string}`, () => this.changed(), wallet);
    this.signer = { address: session.address, signPublic: session.keys.signPublic, signSecret: session.keys.signSecret };
    this.seen = loadSeen(this.self);
    this.live = new LiveConnection(client.wsUrl(), session.token, {
      onMessage: (m) => this.onLiveMessage(m),
      onSubscribed: (rooms) => {
        for (const r of rooms) if (!this.followedForOthers.has(r)) void this.refreshNewest(r);
      },
      onStatus: (s) => {
        this.liveStatus = s;
        if (s === "open") {
          void this.loadRooms();
          for (const fn of this.hooks.open) fn();
        }
        this.changed();
      },
      onUnsubscribed: (rooms) => this.onRemoved(rooms),
      onOther: (frame) => {
        for (const fn of this.hooks.frame) fn(frame);
      },
      onSessionExpired: () => this.onExpired(),
    });
  }

  get selfAddress(): string {
    return this.self;
  }

  /**
   * Listeners besides this store (the social layer, src/state/social.ts): live messages of the
   * wallet's rooms (typing included), other live frames, each (re)opened connection, and a room
   * being looked at (`seen`).
   */
  readonly hooks = {
    message: new Set<(m: Message) => void>(),
    frame: new Set<(f: { type: string } & Record<string, unknown>) => void>(),
    open: new Set<() => void>(),
    seen: new Set<(room: string) => void>(),
  };
  /** Ids followed on the WebSocket for those listeners (no timeline of their own). */
  private followedForOthers = new Set<string>();
  /** Unread counts from elsewhere (the node's, consistent across devices); undefined: count here. */
  unreadFrom: ((room: string) => number | undefined) | undefined;

  /** Follows an id on the WebSocket for the listeners (the wallet's social id). */
  follow(id: string): void {
    this.followedForOthers.add(id.toLowerCase());
    this.live.subscribe([id]);
  }

  /** The room open and in view, if any. */
  get viewing(): string | undefined {
    return this.openRoom && document.visibilityState === "visible" ? this.openRoom : undefined;
  }

  /** Re-renders the views (after a change held elsewhere, such as the social layer's). */
  notify(): void {
    this.changed();
  }

  /** Reads `GET /v1/info`: the indexer, gateway and contracts this node's operator configured. */
  async loadInfo(): Promise<void> {
    try {
      this.info = await this.client.info();
      if (this.info.gateway_url) this.gateway = new GatewayClient(this.info.gateway_url, () => this.session.token);
      if (this.info.indexer_url) {
        this.indexer = new IndexerClient(this.info.indexer_url, () => this.session.token, () => this.onExpired());
        // Token uploads a previous page left unfinished.
        for (const [id, tokens] of Object.entries(loadPendingTokens(this.self))) void this.uploadTokens(id, tokens);
      }
    } catch {
      // Without it the dApp still chats; search, tips and badges stay hidden.
    }
    this.infoLoaded = true;
    this.changed();
  }

  start(): void {
    void this.loadInfo();
    this.live.start();
    void this.loadRooms();
    this.pollTimer = setInterval(() => {
      if (document.visibilityState === "visible") void this.loadRooms();
    }, ROOMS_POLL_MS);
    document.addEventListener("visibilitychange", this.onVisible);
  }

  stop(): void {
    clearInterval(this.pollTimer);
    document.removeEventListener("visibilitychange", this.onVisible);
    this.live.stop();
  }

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getVersion = (): number => this.version;

  private changed(): void {
    this.version++;
    for (const fn of this.listeners) fn();
  }

  private onVisible = () => {
    if (document.visibilityState === "visible") {
      void this.loadRooms();
      if (this.openRoom) this.markSeen(this.openRoom);
    }
  };

  // --- rooms ------------------------------------------------------------------------------

  /** Reads the caller's rooms and follows any new one. Invitations show up this way. */
  async loadRooms(): Promise<void> {
    try {
      const rooms = await this.client.rooms();
      this.roomsError = undefined;
      const known = new Set(this.rooms.map((r) => r.id.toLowerCase()));
      const fresh = rooms.filter((r) => !known.has(r.id.toLowerCase()));
      const now = new Set(rooms.map((r) => r.id.toLowerCase()));
      const gone = this.roomsLoaded ? this.rooms.filter((r) => !now.has(r.id.toLowerCase()) && !this.leaving.has(r.id.toLowerCase())) : [];
      const changed = fresh.length > 0 || rooms.length !== this.rooms.length || !this.roomsLoaded;
      this.rooms = rooms;
      if (gone.length > 0) this.forget(gone.map((r) => r.id), gone);
      for (const r of fresh) if (r.kind === "direct") void this.loadMembers(r.id).catch(() => undefined);
      this.roomsLoaded = true;
      if (fresh.length > 0) this.live.subscribe(fresh.map((r) => r.id));
      if (changed) this.changed();
    } catch (err) {
      const p = describeError(err);
      if (p.kind === "expired") return; // the client reported it; the app signs out
      this.roomsError = p.detail;
      this.changed();
    }
  }

  private leaving = new Set<string>();

  /** The node no longer counts this wallet in `rooms` (removed): drop them, their messages and keys. */
  private onRemoved(rooms: string[]): void {
    const known = this.rooms.filter((r) => rooms.includes(r.id.toLowerCase()));
    if (known.length === 0) return;
    this.rooms = this.rooms.filter((r) => !rooms.includes(r.id.toLowerCase()));
    this.forget(rooms, known, true);
    this.changed();
  }

  private forget(ids: string[], rooms: Room[], removed = false): void {
    for (const id of ids.map((i) => i.toLowerCase())) {
      this.timelines.delete(id);
      this.epochKeys.delete(id);
      this.memberLists.delete(id);
    }
    this.live.forget(ids);
    const names = rooms.map((r) => this.displayName(r));
    if (names.length > 0 && !rooms.every((r) => this.leaving.has(r.id.toLowerCase()))) {
      this.notice = `You are no longer a member of ${names.join(", ")}${removed ? ": you were removed" : ""}.`;
    }
  }

  dismissNotice(): void {
    this.notice = undefined;
    this.changed();
  }

  /** The name to show: a direct room shows the other wallet. */
  displayName(r: Room): string {
    if (r.kind !== "direct") return r.name;
    const peer = this.directPeers.get(r.id.toLowerCase());
    return peer ? `${peer.slice(0, 6)}…${peer.slice(-4)}` : "Direct message";
  }

  directPeer(id: string): string | undefined {
    return this.directPeers.get(id.toLowerCase());
  }

  room(id: string): Room | undefined {
    const lower = id.toLowerCase();
    return this.rooms.find((r) => r.id.toLowerCase() === lower);
  }

  private addRoom(room: Room): void {
    if (!this.room(room.id)) this.rooms = [...this.rooms, room];
    else this.rooms = this.rooms.map((r) => (r.id.toLowerCase() === room.id.toLowerCase() ? room : r));
    this.live.subscribe([room.id]);
    this.changed();
  }

  /** Rooms ordered by latest activity, newest first. */
  roomsByActivity(): Room[] {
    const last = (r: Room) => {
      const t = this.timelines.get(r.id.toLowerCase());
      const m = t?.sorted[t.sorted.length - 1];
      return m ? m.timestamp_ms : r.created_at * 1000;
    };
    return [...this.rooms].sort((a, b) => last(b) - last(a));
  }

  async createRoom(args: { name: string; kind: "group" | "channel"; members: string[] }): Promise<Room> {
    const { envelope } = composeCreateRoom(this.signer, args);
    const room = await this.client.createRoom(envelope);
    this.addRoom(room);
    return room;
  }

  /** Opens the direct room with `peer`, creating it unless either side already did. */
  async startDirect(peer: string): Promise<Room> {
    if (peer.toLowerCase() === this.self) throw new Error("That is your own address.");
    const { envelope, roomId } = composeDirect(this.signer, peer);
    const existing = this.room(roomId);
    if (existing) return existing;
    const room = await this.client.createRoom(envelope);
    this.directPeers.set(room.id.toLowerCase(), peer);
    this.addRoom(room);
    return room;
  }

  /** The public channel directory (the node's default channel among them). */
  channels(): Promise<ChannelEntry[]> {
    return this.client.channels();
  }

  /** A room as the node shows it to this wallet (member or not). */
  roomInfo(id: string): Promise<Room> {
    return this.client.room(id);
  }

  /** Joins a channel by id; a room the caller is already in is just returned. */
  async joinChannel(id: string): Promise<Room> {
    const existing = this.room(id);
    if (existing) return existing;
    const info = await this.client.room(id);
    if (info.role) {
      this.addRoom(info);
      return info;
    }
    // The Join's lamport follows the newest message of the channel.
    let next = info.next_lamport;
    if (next === undefined) {
      const page = await this.client.messages(id, { limit: 1 });
      next = page.messages.reduce((n, m) => Math.max(n, m.lamport), -1) + 1;
    }
    const room = await this.client.join(id, composeJoin(this.signer, id, next));
    this.addRoom(room);
    return room;
  }

  // --- members and roles -----------------------------------------------------------------

  members(room: string): MembersReply | undefined {
    return this.memberLists.get(room.toLowerCase());
  }

  async loadMembers(room: string): Promise<MembersReply> {
    const reply = await this.client.members(room);
    const key = room.toLowerCase();
    this.memberLists.set(key, reply);
    if (reply.room.kind === "direct") {
      const peer = reply.members.find((m: Member) => m.address.toLowerCase() !== this.self);
      if (peer) this.directPeers.set(key, peer.address);
    }
    // The room view carries the caller's current role.
    if (reply.room.role) this.rooms = this.rooms.map((r) => (r.id.toLowerCase() === key ? { ...r, ...reply.room } : r));
    this.changed();
    return reply;
  }

  /** The lamport for a new envelope: past the node's newest and everything seen here. */
  private async nextLamport(room: string): Promise<number> {
    const info = await this.client.room(room);
    const t = this.timeline(room);
    return Math.max(info.next_lamport ?? 0, t.maxLamport + 1);
  }

  private async control(room: string, kind: number, payload: Uint8Array): Promise<void> {
    const env = composeControl(this.signer, room, await this.nextLamport(room), kind, payload);
    const reply = await this.client.control(room, kind, env);
    this.merge(room, [{ ...localMessage(env, this.session.address, room), kind: kindName(kind) }]);
    if (reply.room.role) this.addRoom(reply.room);
    await this.loadMembers(room).catch(() => undefined);
  }

  invite(room: string, addresses: string[]): Promise<void> {
    return this.control(room, Kind.Invite, encodeInvite({ members: addresses.map((a) => fromHex(a, 20)) }));
  }

  remove(room: string, address: string): Promise<void> {
    return this.control(room, Kind.Remove, encodeRemove({ member: fromHex(address, 20) }));
  }

  /** Sets a member's role; `Owner` hands ownership over (the caller becomes an admin). */
  setRole(room: string, address: string, role: Role): Promise<void> {
    return this.control(room, Kind.SetRole, encodeSetRole({ member: fromHex(address, 20), role }));
  }

  /** Sets who may join (admins and the owner); gated policies carry their gate. */
  setPolicy(room: string, policy: Policy, gate?: Gate): Promise<void> {
    return this.control(room, Kind.SetPolicy, encodeSetPolicy({ policy, gate }));
  }

  async leave(room: string): Promise<void> {
    const key = room.toLowerCase();
    const env = composeControl(this.signer, room, await this.nextLamport(room), Kind.Leave, new Uint8Array());
    this.leaving.add(key);
    try {
      await this.client.control(room, Kind.Leave, env);
    } catch (err) {
      this.leaving.delete(key);
      throw err;
    }
    this.rooms = this.rooms.filter((r) => r.id.toLowerCase() !== key);
    this.forget([key], []);
    this.changed();
  }

  // --- end-to-end encryption --------------------------------------------------------------

  private keysOf(room: string): EpochKeys {
    const key = room.toLowerCase();
    let k = this.epochKeys.get(key);
    if (!k) {
      k = new Map();
      this.epochKeys.set(key, k);
    }
    return k;
  }

  /** Fetches the epoch keys wrapped for this device and unwraps them (one fetch at a time per room). */
  private fetchKeys(room: string): Promise<void> {
    const key = room.toLowerCase();
    const running = this.keyFetches.get(key);
    if (running) return running;
    const p = (async () => {
      const { unwrapEpochKey } = await e2e();
      const wrapped = await this.client.keys(key, toHex(this.session.keys.boxPublic));
      const keys = this.keysOf(key);
      for (const w of wrapped) {
        const epoch = w.epoch.toLowerCase();
        if (keys.has(epoch)) continue;
        try {
          keys.set(
            epoch,
            await unwrapEpochKey({
              wrapped: { enc: fromHex(w.enc, 32), ciphertext: fromHex(w.ciphertext) },
              boxSecret: this.session.keys.boxSecret,
              room: fromHex(key, 32),
              sender: fromHex(w.sender, 20),
            }),
          );
        } catch {
          // A wrap that does not open is not ours to use; its messages show as unreadable.
        }
      }
    })().finally(() => this.keyFetches.delete(key));
    this.keyFetches.set(key, p);
    return p;
  }

  private async epochKey(room: string, epoch: string, fetch = true): Promise<Uint8Array | undefined> {
    const keys = this.keysOf(room);
    const id = epoch.toLowerCase();
    if (!keys.has(id) && fetch) await this.fetchKeys(room);
    return keys.get(id);
  }

  /**
   * The epoch to seal under, as the reference client does: the current one when this device holds
   * its key and the node says none is due; otherwise a new epoch key wrapped for every box key of
   * every member and this device's own, posted as a `RotateKey` whose envelope id is the epoch id.
   */
  private async ensureEpoch(room: string): Promise<{ id: string; key: Uint8Array }> {
    const members = await this.client.members(room);
    if (members.epoch && !members.rotate) {
      const key = await this.epochKey(room, members.epoch.id);
      if (key) return { id: members.epoch.id.toLowerCase(), key };
    }
    const { newEpochKey, wrapEpochKey } = await e2e();
    const devices = new Set<string>(members.members.flatMap((m) => m.box_keys.map((k) => k.toLowerCase())));
    devices.add(toHex(this.session.keys.boxPublic));
    const epochKey = newEpochKey();
    const roomBytes = fromHex(room, 32);
    const sender = fromHex(this.session.address, 20);
    const wraps = await Promise.all(
      [...devices].map(async (d) => {
        const recipient = fromHex(d, 32);
        const w = await wrapEpochKey({ epochKey, recipient, room: roomBytes, sender });
        return { boxKey: recipient, enc: w.enc, ciphertext: w.ciphertext };
      }),
    );
    const env = composeControl(this.signer, room, await this.nextLamport(room), Kind.RotateKey, encodeRotateKey({ wraps }));
    const reply = await this.client.control(room, Kind.RotateKey, env);
    const id = reply.id.toLowerCase();
    this.keysOf(room).set(id, epochKey);
    this.merge(room, [{ ...localMessage(env, this.session.address, room), kind: "rotate_key" }]);
    this.changed();
    return { id, key: epochKey };
  }

  /** Opens the sealed messages of a room that are not open yet. */
  private async openSealed(room: string, refetch = false): Promise<void> {
    const t = this.timeline(room);
    const pending = [...t.byId.values()].filter((m) => m.encrypted && (m.sealed === undefined || m.sealed === "opening" || (refetch && m.sealed === "no_key")));
    if (pending.length === 0) return;
    const { decodeSealed, openMessage } = await e2e();
    let fetched = false;
    for (const m of pending) {
      let state: SealedState;
      let plain: string | undefined;
      let media: MediaRef | undefined;
      try {
        const body = decodeBody(envelopeFromJson(m.envelope).body);
        const epoch = toHex(decodeSealed(body.payload).epoch);
        let key = await this.epochKey(room, epoch, false);
        if (!key && !fetched) {
          fetched = true;
          await this.fetchKeys(room).catch(() => undefined);
          key = await this.epochKey(room, epoch, false);
        }
        if (!key) {
          state = "no_key";
        } else {
          const opened = openMessage({ sealed: body.payload, keyFor: () => key, room: body.room, sender: body.sender, kind: body.kind });
          if (body.kind === Kind.Media) {
            media = decodeMediaRef(opened.plaintext);
            plain = media.name;
          } else {
            plain = new TextDecoder().decode(opened.plaintext);
          }
          state = "open";
        }
      } catch {
        state = "bad";
      }
      const cur = t.byId.get(m.id);
      if (cur) t.byId.set(m.id, { ...cur, sealed: state, plain: plain ?? cur.plain, media: media ?? cur.media });
    }
    t.sorted = [...t.byId.values()].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
    this.changed();
  }

  // --- timelines --------------------------------------------------------------------------

  private timeline(room: string): Timeline {
    const key = room.toLowerCase();
    let t = this.timelines.get(key);
    if (!t) {
      t = emptyTimeline();
      this.timelines.set(key, t);
    }
    return t;
  }

  /** A snapshot for rendering: messages in display order and paging state. */
  view(room: string): {
    messages: ChatMessage[];
    hasMoreBefore: boolean;
    loadingOlder: boolean;
    loadedNewest: boolean;
    loadError?: string;
    gateLapsed: boolean;
    encryptionRequired: boolean;
    sendError?: string;
    upload?: UploadState;
  } {
    const t = this.timeline(room);
    return {
      encryptionRequired: t.encryptionRequired,
      messages: t.sorted,
      hasMoreBefore: t.hasMoreBefore,
      loadingOlder: t.loadingOlder,
      loadedNewest: t.loadedNewest,
      loadError: t.loadError,
      gateLapsed: t.gateLapsed,
      sendError: t.sendError,
      upload: t.upload,
    };
  }

  private merge(room: string, msgs: Message[], status: SendStatus = "sent"): void {
    const t = this.timeline(room);
    let sealedNew = false;
    for (const m of msgs) {
      const id = m.id.toLowerCase();
      const prev = t.byId.get(id);
      // Each message is checked once; this client's own are known good.
      const verified = prev ? prev.verified : status === "pending" || verifyMessage(m);
      let media = (m as ChatMessage).media ?? prev?.media;
      if (!media && m.kind === "media" && !m.encrypted) {
        try {
          media = decodeMediaRef(decodeBody(envelopeFromJson(m.envelope).body).payload);
        } catch {
          // shown as a malformed media message
        }
      }
      t.byId.set(id, { ...(prev ?? {}), ...m, id: id as Hex, status: prev?.status === "sent" ? "sent" : status, error: undefined, verified, media });
      if (status === "sent") t.outbox.delete(id);
      t.maxLamport = Math.max(t.maxLamport, m.lamport);
      if (m.encrypted && prev?.sealed === undefined && (m as ChatMessage).sealed === undefined) sealedNew = true;
    }
    t.sorted = [...t.byId.values()].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
    if (sealedNew) void this.openSealed(room);
  }

  private onLiveMessage(m: Message): void {
    const key = m.room.toLowerCase();
    if (!this.room(key)) return;
    for (const fn of this.hooks.message) fn(m);
    if (m.kind === "typing" || m.kind === "presence") return; // shown by the social layer
    this.merge(key, [m]);
    // A new epoch: its key may open messages that were waiting for it.
    if (m.kind === "rotate_key") void this.openSealed(key, true);
    if (["invite", "remove", "leave", "set_role", "join"].includes(m.kind) && this.memberLists.has(key)) void this.loadMembers(key).catch(() => undefined);
    if (this.openRoom === key && document.visibilityState === "visible") this.markSeen(key);
    this.changed();
  }

  /** Reads the newest page (after every subscribe, so nothing falls between live and history). */
  async refreshNewest(room: string): Promise<void> {
    const t = this.timeline(room);
    try {
      const page = await this.client.messages(room, { limit: PAGE });
      const joins = page.messages.some((m) => t.byId.has(m.id.toLowerCase()));
      if (t.loadedNewest && !joins && t.byId.size > 0 && page.has_more) {
        // Too much arrived while away to connect with what is loaded: start again from here,
        // keeping unconfirmed sends.
        const keep = [...t.byId.values()].filter((m) => m.status !== "sent");
        t.byId = new Map(keep.map((m) => [m.id, m]));
        t.hasMoreBefore = true;
      } else if (!t.loadedNewest) {
        t.hasMoreBefore = page.has_more;
      }
      t.loadedNewest = true;
      t.loadError = undefined;
      t.gateLapsed = false;
      this.merge(room, page.messages);
      if (this.openRoom === room.toLowerCase()) this.markSeen(room);
    } catch (err) {
      const p = describeError(err);
      if (p.kind === "expired") return;
      t.loadError = p.detail;
      if (err instanceof ApiError && err.code === "gate_not_met") t.gateLapsed = true;
    }
    this.changed();
  }

  /** Pages back through history (infinite scroll). */
  async loadOlder(room: string): Promise<void> {
    const t = this.timeline(room);
    if (t.loadingOlder || !t.hasMoreBefore) return;
    const oldest = t.sorted.find((m) => m.status === "sent");
    if (!oldest) return;
    t.loadingOlder = true;
    this.changed();
    try {
      const page = await this.client.messages(room, { before: oldest.id, limit: PAGE });
      t.hasMoreBefore = page.has_more;
      t.loadError = undefined;
      this.merge(room, page.messages);
    } catch (err) {
      t.loadError = describeError(err).detail;
    } finally {
      t.loadingOlder = false;
      this.changed();
    }
  }

  // --- sending ----------------------------------------------------------------------------

  /** Shows the message at once and posts it; a failure leaves it marked for retry. */
  send(room: string, text: string, refs?: MessageRefs): void {
    const t = this.timeline(room);
    const info = this.room(room);
    if (!info || !isPrivate(info)) {
      const envelope = composeText(this.signer, room, t.maxLamport + 1, text, Date.now(), refs);
      this.sendEnvelope(room, envelope, text, { refs });
      return;
    }
    // Private rooms: seal under the current epoch, rotating first when due. Sends in one room run
    // one after another so a rotation is in place before the next message.
    const key = room.toLowerCase();
    const prev = this.sendChains.get(key) ?? Promise.resolve();
    const next = prev.then(() => this.sendSealed(room, text, refs));
    this.sendChains.set(key, next.catch(() => undefined));
  }

  private async sendSealed(room: string, text: string, refs?: MessageRefs): Promise<void> {
    const t = this.timeline(room);
    try {
      const epoch = await this.ensureEpoch(room);
      const { sealMessage } = await e2e();
      const lamport = Math.max(t.maxLamport + 1, this.room(room)?.next_lamport ?? 0);
      const payload = sealMessage({
        epochKey: epoch.key,
        epochId: fromHex(epoch.id, 32),
        room: fromHex(room, 32),
        sender: fromHex(this.session.address, 20),
        kind: Kind.Text,
        plaintext: new TextEncoder().encode(text),
      });
      t.sendError = undefined;
      this.sendEnvelope(room, composeSealed(this.signer, room, lamport, Kind.Text, payload, Date.now(), refs), text, { sealed: true, epochKey: epoch.key, refs });
    } catch (err) {
      const p = describeError(err);
      if (p.kind === "expired") return;
      t.sendError = `Not sent (“${text.length > 40 ? text.slice(0, 40) + "…" : text}”): ${p.kind === "unreachable" ? "node unreachable" : p.detail}`;
      this.changed();
    }
  }

  private sendEnvelope(room: string, envelope: Envelope, text: string, opts: { sealed?: boolean; epochKey?: Uint8Array; media?: MediaRef; refs?: MessageRefs } = {}): void {
    const t = this.timeline(room);
    const id = toHex(envelope.hash);
    const sealed = opts.sealed ?? false;
    t.outbox.set(id, { envelope, text, createdAt: Date.now(), media: !!opts.media, index: opts.epochKey && !opts.media ? { epochKey: opts.epochKey } : undefined, refs: opts.refs });
    // The local copy shows what was signed: same id, lamport and timestamp as the node will.
    const body = decodeBody(envelope.body);
    const local: Message = {
      id,
      room: room.toLowerCase() as Hex,
      sender: this.session.address,
      device_key: toHex(body.deviceKey),
      timestamp_ms: Number(body.timestampMs),
      lamport: Number(body.lamport),
      kind: opts.media ? "media" : "text",
      payload_len: body.payload.length,
      envelope: envelopeToJson(envelope),
      ...(sealed ? { encrypted: true, plain: text, sealed: "open" as const } : opts.media ? {} : { text }),
    };
    this.merge(room, [{ ...local, media: opts.media } as Message], "pending");
    this.changed();
    void this.post(room, id);
  }

  private async post(room: string, id: string): Promise<void> {
    const t = this.timeline(room);
    const entry = t.outbox.get(id);
    if (!entry) return;
    try {
      await this.client.post(room, entry.envelope);
      t.outbox.delete(id);
      if (entry.index) void this.indexTokens(room, id, entry.text, entry.index.epochKey);
      const m = t.byId.get(id);
      if (m) t.byId.set(id, { ...m, status: "sent", error: undefined });
    } catch (err) {
      const m = t.byId.get(id);
      const p = describeError(err);
      if (err instanceof ApiError && err.code === "not_encrypted") t.encryptionRequired = true;
      if (err instanceof ApiError && err.code === "gate_not_met") t.gateLapsed = true;
      if (m && m.status !== "sent") t.byId.set(id, { ...m, status: "failed", error: p.kind === "unreachable" ? "Not sent: node unreachable" : `Not sent: ${p.detail}` });
    }
    t.sorted = [...t.byId.values()].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
    this.changed();
  }

  /** Sends a failed message again: the same envelope while the node still takes it, else a new one. */
  retry(room: string, id: string): void {
    const t = this.timeline(room);
    const entry = t.outbox.get(id);
    const m = t.byId.get(id);
    if (!entry || !m) return;
    if (Date.now() - entry.createdAt < RESEND_SAME_MS || entry.media) {
      t.byId.set(id, { ...m, status: "pending", error: undefined });
      this.changed();
      void this.post(room, id);
      return;
    }
    t.outbox.delete(id);
    t.byId.delete(id);
    this.send(room, entry.text, entry.refs);
  }

  // --- media ------------------------------------------------------------------------------

  /**
   * Sends a file: in private rooms it is encrypted here under a fresh content key first, and the
   * `MediaRef` (with that key) is sealed like a text message; in channels both go in the clear.
   */
  async sendMedia(room: string, file: File): Promise<void> {
    const t = this.timeline(room);
    const info = this.room(room);
    const name = file.name.replace(/[\\/]/g, "_").slice(0, 200) || "file";
    if (file.size > MAX_UPLOAD_BYTES) {
      t.upload = { name, sent: 0, total: file.size, phase: "failed", error: `The file is larger than ${MAX_UPLOAD_BYTES / 1024 / 1024} MB.` };
      this.changed();
      return;
    }
    const progress = (u: Partial<UploadState>) => {
      t.upload = { ...(t.upload ?? { name, sent: 0, total: file.size, phase: "uploading" }), ...u };
      this.changed();
    };
    t.upload = { name, sent: 0, total: file.size, phase: "uploading" };
    this.changed();
    try {
      const mime = file.type || "application/octet-stream";
      const dims = mime.startsWith("image/") ? await imageSize(file) : { width: 0, height: 0 };
      const priv = !!info && isPrivate(info);
      // Channels: the file as is. Private rooms: encrypted as it is read, never held whole.
      let body: Blob = file;
      let key: Uint8Array = new Uint8Array();
      let noncePrefix: Uint8Array = new Uint8Array();
      if (priv) {
        progress({ phase: "encrypting" });
        const { newContentKey, encryptFile } = await mediaCrypto();
        ({ key, noncePrefix } = newContentKey());
        body = await encryptFile(key, noncePrefix, file, (done) => progress({ sent: done }));
      }
      progress({ phase: "uploading", sent: 0, total: body.size });
      const up = await this.client.uploadMedia(room, body, priv ? "application/octet-stream" : mime, (sent, total) => progress({ sent, total: total || body.size }));
      progress({ phase: "sending", sent: body.size });
      const ref: MediaRef = { cid: up.cid, size: file.size, mime, width: dims.width, height: dims.height, name, key, noncePrefix };
      // The sender already has the file: keep it for the preview instead of downloading it again.
      if (mime.startsWith("image/")) this.mediaUrls.set(up.cid, { url: URL.createObjectURL(file) });
      if (!priv) {
        const env = composeControl(this.signer, room, t.maxLamport + 1, Kind.Media, encodeMediaRef(ref));
        this.sendEnvelope(room, env, name, { media: ref });
      } else {
        const key = room.toLowerCase();
        const prev = this.sendChains.get(key) ?? Promise.resolve();
        const next = prev.then(async () => {
          const epoch = await this.ensureEpoch(room);
          const { sealMessage } = await e2e();
          const lamport = Math.max(t.maxLamport + 1, this.room(room)?.next_lamport ?? 0);
          const payload = sealMessage({
            epochKey: epoch.key,
            epochId: fromHex(epoch.id, 32),
            room: fromHex(room, 32),
            sender: fromHex(this.session.address, 20),
            kind: Kind.Media,
            plaintext: encodeMediaRef(ref),
          });
          this.sendEnvelope(room, composeSealed(this.signer, room, lamport, Kind.Media, payload), name, { sealed: true, media: ref });
        });
        this.sendChains.set(key, next.catch(() => undefined));
        await next;
      }
      t.upload = undefined;
      this.changed();
    } catch (err) {
      const p = describeError(err);
      if (p.kind === "expired") return;
      progress({ phase: "failed", error: p.kind === "unreachable" ? "Upload failed: node unreachable." : `Upload failed: ${p.detail}` });
    }
  }

  /** After a renewed subscription: read the room again (sends that failed can be retried). */
  async renewed(room: string): Promise<void> {
    this.timeline(room).gateLapsed = false;
    this.changed();
    await this.refreshNewest(room);
  }

  dismissUpload(room: string): void {
    this.timeline(room).upload = undefined;
    this.changed();
  }

  /** An object URL of a media file (downloaded, and decrypted in private rooms), loading it on first use. */
  mediaUrl(ref: MediaRef): { url?: string; error?: string; loading?: boolean } {
    const cur = this.mediaUrls.get(ref.cid);
    if (cur) return cur;
    this.mediaUrls.set(ref.cid, { loading: true });
    void (async () => {
      try {
        const { bytes } = await this.client.media(ref.cid);
        const plain = ref.key.length > 0 ? (await mediaCrypto()).decryptMedia(ref.key, ref.noncePrefix, bytes) : bytes;
        if (plain.length !== ref.size) throw new Error(`the file has ${plain.length} bytes, the message says ${ref.size}`);
        this.mediaUrls.set(ref.cid, { url: URL.createObjectURL(new Blob([new Uint8Array(plain)], { type: ref.mime || "application/octet-stream" })) });
      } catch (err) {
        const p = describeError(err);
        this.mediaUrls.set(ref.cid, { error: p.kind === "other" ? `Cannot open the file: ${p.detail}` : p.detail });
      }
      this.changed();
    })();
    return { loading: true };
  }

  // --- LinkedIn profiles ---------------------------------------------------------------------

  /** A wallet's linked profile (loaded on first use; undefined while loading or unknown). */
  profile(address: string): LinkedProfile | null | undefined {
    if (!this.gateway) return null;
    const key = address.toLowerCase();
    const cur = this.profiles.get(key);
    if (cur === "loading") return undefined;
    if (cur !== undefined) return cur;
    this.profiles.set(key, "loading");
    this.gateway.profile(address).then(
      (p) => {
        this.profiles.set(key, p && p.linked && p.profile ? p : null);
        this.changed();
      },
      () => {
        // The gateway did not answer: no badge (asked again after a reload).
        this.profiles.set(key, null);
        this.changed();
      },
    );
    return undefined;
  }

  /** Forgets a cached profile (after linking or unlinking). */
  refreshProfile(address: string): void {
    this.profiles.delete(address.toLowerCase());
    this.changed();
  }

  // --- search -----------------------------------------------------------------------------

  /**
   * Uploads the keyed search tokens of a sealed text message this device sent. The indexer takes
   * them once it has read the message (409 `message_not_indexed` before): retried for a while.
   */
  private async indexTokens(room: string, id: string, text: string, epochKey: Uint8Array): Promise<void> {
    if (!this.indexer) return;
    const tokens = messageTokens(searchKey(epochKey, fromHex(room, 32)), text);
    if (tokens.length === 0) return;
    // Kept until the indexer takes them, so a reload or a closed tab does not lose them.
    savePendingTokens(this.self, { ...loadPendingTokens(this.self), [id]: tokens });
    await this.uploadTokens(id, tokens);
  }

  private async uploadTokens(id: string, tokens: string[]): Promise<void> {
    const indexer = this.indexer;
    if (!indexer || this.tokenUploads.get(id) === "pending") return;
    this.tokenUploads.set(id, "pending");
    const done = (state: string) => {
      this.tokenUploads.set(id, state);
      const pending = loadPendingTokens(this.self);
      delete pending[id];
      savePendingTokens(this.self, pending);
    };
    for (let attempt = 0; attempt < 30; attempt++) {
      try {
        await indexer.uploadTokens(id, tokens);
        done("indexed");
        return;
      } catch (err) {
        const retry = (err instanceof ApiError && (err.code === "message_not_indexed" || err.code === "rate_limited")) || !(err instanceof ApiError);
        if (!retry) {
          done(describeError(err).detail);
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(500 * (attempt + 1), 5000)));
      }
    }
    // Still not taken: left for the next start.
    this.tokenUploads.set(id, "waiting");
  }

  /**
   * Searches one end-to-end encrypted room: each query word becomes its prefix token under every
   * epoch key this device holds (the indexer matches any of them). Hits carry no text: the text
   * is this device's own copy when it has the message loaded.
   */
  async searchEncrypted(room: string, query: string): Promise<(MessageHit & { plain?: string })[]> {
    if (!this.indexer) throw new Error("This node has no search service.");
    await this.fetchKeys(room).catch(() => undefined);
    const keys = [...this.keysOf(room).values()];
    if (keys.length === 0) throw new Error("This device holds no key of this room yet, so it cannot search it.");
    const roomBytes = fromHex(room, 32);
    const perKey = keys.map((k) => queryTokens(searchKey(k, roomBytes), query));
    const wordCount = perKey[0]?.length ?? 0;
    if (wordCount === 0) throw new Error("Type a word to search for.");
    const alternatives = Array.from({ length: wordCount }, (_, i) => perKey.map((ts) => ts[i]!));
    const r = await this.indexer.searchTokens(room, alternatives);
    const t = this.timeline(room);
    return r.results.map((h) => ({ ...h, plain: t.byId.get(h.id.toLowerCase())?.plain }));
  }

  // --- unread -----------------------------------------------------------------------------

  /** The room the user is looking at (its messages count as read). */
  setOpenRoom(room: string | undefined): void {
    this.openRoom = room?.toLowerCase();
    if (this.openRoom) this.markSeen(this.openRoom);
    this.changed();
  }

  private markSeen(room: string): void {
    for (const fn of this.hooks.seen) fn(room.toLowerCase());
    const t = this.timeline(room);
    const last = t.sorted[t.sorted.length - 1];
    if (!last) return;
    const key = sortKey(last);
    const prev = this.seen[room.toLowerCase()];
    if (prev && prev >= key) return;
    this.seen[room.toLowerCase()] = key;
    saveSeen(this.self, this.seen);
  }

  /** Messages from others since the user last looked at the room. */
  unread(room: string): number {
    const key = room.toLowerCase();
    if (key === this.openRoom && document.visibilityState === "visible") return 0;
    const counted = this.unreadFrom?.(key);
    if (counted !== undefined) return counted;
    const seen = this.seen[key] ?? "";
    let n = 0;
    for (const m of this.timeline(key).sorted) {
      if (CONTENT_KINDS.has(m.kind) && m.sender.toLowerCase() !== this.self && sortKey(m) > seen) n++;
    }
    return n;
  }
}

const KIND_NAMES: Record<number, string> = {
  [Kind.Invite]: "invite",
  [Kind.Leave]: "leave",
  [Kind.Remove]: "remove",
  [Kind.SetRole]: "set_role",
  [Kind.SetPolicy]: "set_policy",
  [Kind.RotateKey]: "rotate_key",
};

function kindName(kind: number): string {
  return KIND_NAMES[kind] ?? String(kind);
}

/** The message object of an envelope this client just signed. */
function localMessage(envelope: Envelope, sender: string, room: string): Message {
  const body = decodeBody(envelope.body);
  return {
    id: toHex(envelope.hash),
    room: room.toLowerCase() as Hex,
    sender,
    device_key: toHex(body.deviceKey),
    timestamp_ms: Number(body.timestampMs),
    lamport: Number(body.lamport),
    kind: kindName(body.kind),
    payload_len: body.payload.length,
    envelope: envelopeToJson(envelope),
  };
}

/** Pixel size of an image file (0 × 0 when the browser cannot read it). */
async function imageSize(file: Blob): Promise<{ width: number; height: number }> {
  try {
    const bmp = await createImageBitmap(file);
    const size = { width: bmp.width, height: bmp.height };
    bmp.close();
    return size;
  } catch {
    return { width: 0, height: 0 };
  }
}

/** Keyed search tokens not yet taken by the indexer, by message id (this wallet's own messages). */
function pendingTokensKey(address: string): string {
  return `dchat.search-tokens.v1.${address}`;
}

function loadPendingTokens(address: string): Record<string, string[]> {
  try {
    return JSON.parse(localStorage.getItem(pendingTokensKey(address)) ?? "{}") as Record<string, string[]>;
  } catch {
    return {};
  }
}

function savePendingTokens(address: string, pending: Record<string, string[]>): void {
  try {
    if (Object.keys(pending).length === 0) localStorage.removeItem(pendingTokensKey(address));
    else localStorage.setItem(pendingTokensKey(address), JSON.stringify(pending));
  } catch {
    // Storage full or blocked: the upload is still tried from memory.
  }
}

function seenKey(address: string): string {
  return `dchat.seen.v1.${address}`;
}

function loadSeen(address: string): Record<string, string> {
  try {
    return JSON.parse(localStorage.getItem(seenKey(address)) ?? "{}") as Record<string, string>;
  } catch {
    return {};
  }
}

function saveSeen(address: string, seen: Record<string, string>): void {
  try {
    localStorage.setItem(seenKey(address), JSON.stringify(seen));
  } catch {
    // ignore: unread counts then restart from the stored state
  }
}
