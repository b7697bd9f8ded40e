// The signed-in app's state: rooms, their timelines, unread counts and the live connection.
// Lives outside React; components subscribe to changes (useSyncExternalStore).

import { ApiError, type NodeClient } from "../api/client";
import { LiveConnection, type LiveStatus } from "../api/live";
import type { Message, Room } from "../api/types";
import { describeError } from "../lib/errors";
import { toHex, type Hex } from "../lib/bytes";
import { decodeBody, envelopeToJson, verifyMessage, type Envelope } from "../protocol/envelope";
import { composeCreateRoom, composeJoin, composeText, type Signer } from "../protocol/compose";
import type { Session } from "./session";

export type SendStatus = "sent" | "pending" | "failed";

export interface ChatMessage extends Message {
  status: SendStatus;
  /** Why a send failed. */
  error?: string;
  /** False when the envelope does not prove what the node says (see verifyMessage). */
  verified: boolean;
}

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
  maxLamport: number;
  /** Envelopes of this client's messages that are not confirmed yet, by id. */
  outbox: Map<string, { envelope: Envelope; text: string; createdAt: number }>;
}

function emptyTimeline(): Timeline {
  return {
    encryptionRequired: false,
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

  constructor(
    private readonly client: NodeClient,
    private readonly session: Session,
    private readonly onExpired: () => void,
  ) {
    this.self = session.address.toLowerCase();
    this.signer = { address: session.address, signPublic: session.keys.signPublic, signSecret: session.keys.signSecret };
    this.seen = loadSeen(this.self);
    this.live = new LiveConnection(client.wsUrl(), session.token, {
      onMessage: (m) => this.onLiveMessage(m),
      onSubscribed: (rooms) => {
        for (const r of rooms) void this.refreshNewest(r);
      },
      onStatus: (s) => {
        this.liveStatus = s;
        if (s === "open") void this.loadRooms();
        this.changed();
      },
      onSessionExpired: () => this.onExpired(),
    });
  }

  start(): void {
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
      const changed = fresh.length > 0 || rooms.length !== this.rooms.length || !this.roomsLoaded;
      this.rooms = rooms;
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

  /** Joins a channel by id; a room the caller is already in is just returned. */
  async joinChannel(id: string): Promise<Room> {
    const existing = this.room(id);
    if (existing) return existing;
    const info = await this.client.room(id);
    if (info.role) {
      this.addRoom(info);
      return info;
    }
    // The Join's lamport follows the newest message of the channel (anyone may read a channel).
    const page = await this.client.messages(id, { limit: 1 });
    const newest = page.messages.reduce((n, m) => Math.max(n, m.lamport), -1);
    const room = await this.client.join(id, composeJoin(this.signer, id, newest + 1));
    this.addRoom(room);
    return room;
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
    encryptionRequired: boolean;
  } {
    const t = this.timeline(room);
    return {
      encryptionRequired: t.encryptionRequired,
      messages: t.sorted,
      hasMoreBefore: t.hasMoreBefore,
      loadingOlder: t.loadingOlder,
      loadedNewest: t.loadedNewest,
      loadError: t.loadError,
    };
  }

  private merge(room: string, msgs: Message[], status: SendStatus = "sent"): void {
    const t = this.timeline(room);
    for (const m of msgs) {
      const id = m.id.toLowerCase();
      const prev = t.byId.get(id);
      // Each message is checked once; this client's own are known good.
      const verified = prev ? prev.verified : status === "pending" || verifyMessage(m);
      t.byId.set(id, { ...(prev ?? {}), ...m, id: id as Hex, status: prev?.status === "sent" ? "sent" : status, error: undefined, verified });
      if (status === "sent") t.outbox.delete(id);
      t.maxLamport = Math.max(t.maxLamport, m.lamport);
    }
    t.sorted = [...t.byId.values()].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
  }

  private onLiveMessage(m: Message): void {
    const key = m.room.toLowerCase();
    if (!this.room(key)) return;
    if (m.kind === "typing" || m.kind === "presence") return; // not shown yet
    this.merge(key, [m]);
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
      this.merge(room, page.messages);
      if (this.openRoom === room.toLowerCase()) this.markSeen(room);
    } catch (err) {
      const p = describeError(err);
      if (p.kind === "expired") return;
      t.loadError = p.detail;
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
  send(room: string, text: string): void {
    const t = this.timeline(room);
    const envelope = composeText(this.signer, room, t.maxLamport + 1, text);
    this.sendEnvelope(room, envelope, text);
  }

  private sendEnvelope(room: string, envelope: Envelope, text: string): void {
    const t = this.timeline(room);
    const id = toHex(envelope.hash);
    t.outbox.set(id, { envelope, text, createdAt: Date.now() });
    // The local copy shows what was signed: same id, lamport and timestamp as the node will.
    const body = decodeBody(envelope.body);
    const local: Message = {
      id,
      room: room.toLowerCase() as Hex,
      sender: this.session.address,
      device_key: toHex(body.deviceKey),
      timestamp_ms: Number(body.timestampMs),
      lamport: Number(body.lamport),
      kind: "text",
      text,
      payload_len: body.payload.length,
      envelope: envelopeToJson(envelope),
    };
    this.merge(room, [local], "pending");
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
      const m = t.byId.get(id);
      if (m) t.byId.set(id, { ...m, status: "sent", error: undefined });
    } catch (err) {
      const m = t.byId.get(id);
      const p = describeError(err);
      if (err instanceof ApiError && err.code === "not_encrypted") t.encryptionRequired = true;
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
    if (Date.now() - entry.createdAt < RESEND_SAME_MS) {
      t.byId.set(id, { ...m, status: "pending", error: undefined });
      this.changed();
      void this.post(room, id);
      return;
    }
    t.outbox.delete(id);
    t.byId.delete(id);
    this.send(room, entry.text);
  }

  // --- unread -----------------------------------------------------------------------------

  /** The room the user is looking at (its messages count as read). */
  setOpenRoom(room: string | undefined): void {
    this.openRoom = room?.toLowerCase();
    if (this.openRoom) this.markSeen(this.openRoom);
    this.changed();
  }

  private markSeen(room: string): void {
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
    const seen = this.seen[key] ?? "";
    let n = 0;
    for (const m of this.timeline(key).sorted) {
      if (CONTENT_KINDS.has(m.kind) && m.sender.toLowerCase() !== this.self && sortKey(m) > seen) n++;
    }
    return n;
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
