// Pure state changes of the social layer: notifications, unread counts with read marks, and
// typing indicators. The store (social.ts) applies them to what the node answers and streams.

import type { Notification, UnreadRoom } from "../api/social";

// --- notifications ---------------------------------------------------------------------------

export interface NotificationsState {
  /** Newest first. */
  items: Notification[];
  /** Unread notifications in all (the node's count; the list may hold fewer). */
  unread: number;
  loaded: boolean;
  /** Where the next older page starts (the node's `next`), when there may be one. */
  next?: string;
}

/** Most notifications kept in memory. */
export const MAX_NOTIFICATIONS = 100;
/** Most kept once the user asks for older ones. */
export const MAX_NOTIFICATIONS_PAGED = 1000;

export const emptyNotifications: NotificationsState = { items: [], unread: 0, loaded: false };

/** The list as the node gave it (`GET /v1/notifications`). */
export function notificationsLoaded(_s: NotificationsState, items: Notification[], unread: number, next?: string): NotificationsState {
  const sorted = [...items].sort((a, b) => b.created_ms - a.created_ms);
  return { items: sorted.slice(0, MAX_NOTIFICATIONS), unread, loaded: true, next };
}

/** An older page (`before` = the previous `next`): added below, once each; `next` moves on. */
export function notificationsAppended(s: NotificationsState, items: Notification[], unread: number, next?: string): NotificationsState {
  const known = new Set(s.items.map((i) => i.id.toLowerCase()));
  const fresh = items.filter((i) => !known.has(i.id.toLowerCase()));
  const all = [...s.items, ...fresh].sort((a, b) => b.created_ms - a.created_ms);
  const kept = all.slice(0, MAX_NOTIFICATIONS_PAGED);
  // Those cut off are older than the last kept one: the next page starts after it.
  return { ...s, items: kept, unread, loaded: true, next: kept.length < all.length ? kept[kept.length - 1]?.id : next };
}

/** A live `notification` frame: added once (by id), newest first; `unread` is the node's count. */
export function notificationArrived(s: NotificationsState, n: Notification, unread?: number): NotificationsState {
  const exists = s.items.some((i) => i.id.toLowerCase() === n.id.toLowerCase());
  if (exists) return { ...s, unread: unread ?? s.unread };
  // Older pages the user loaded stay; whatever no longer fits is reachable again through `next`.
  const cap = Math.min(MAX_NOTIFICATIONS_PAGED, Math.max(MAX_NOTIFICATIONS, s.items.length + 1));
  const all = [n, ...s.items].sort((a, b) => b.created_ms - a.created_ms);
  const items = all.slice(0, cap);
  const next = items.length < all.length ? items[items.length - 1]?.id : s.next;
  const count = unread ?? (n.read ? s.unread : s.unread + 1);
  return { ...s, items, unread: count, next };
}

/**
 * Marks notifications read: those listed and those created up to `upToMs` (as the node folds a
 * `NotificationsRead`). `unread` is the node's new count when known; otherwise the count drops by
 * the items newly marked here.
 */
export function notificationsMarked(s: NotificationsState, mark: { ids?: string[]; upToMs?: number; unread?: number }): NotificationsState {
  const ids = new Set((mark.ids ?? []).map((i) => i.toLowerCase()));
  let newly = 0;
  const items = s.items.map((n) => {
    if (n.read) return n;
    if (ids.has(n.id.toLowerCase()) || (mark.upToMs !== undefined && mark.upToMs > 0 && n.created_ms <= mark.upToMs)) {
      newly++;
      return { ...n, read: true };
    }
    return n;
  });
  return { ...s, items, unread: mark.unread ?? Math.max(0, s.unread - newly) };
}

// --- unread counts -------------------------------------------------------------------------

export interface RoomUnread {
  /** Unread messages (the node's count, plus live ones counted since). */
  unread: number;
  /** This wallet's read mark (the highest of the node's and those sent from here). */
  readLamport: number;
  /** Messages counted here since the node's count, by id, with their lamport. */
  counted: Record<string, number>;
  muted: boolean;
  request: boolean;
}

/** Unread state per room id (lowercase). */
export type UnreadState = Record<string, RoomUnread>;

/**
 * The node's counts (`GET /v1/unread`). A room whose read mark sent from here is newer than the
 * node's answer keeps its local state: the answer was computed before the mark landed.
 */
export function unreadSnapshot(s: UnreadState, rooms: UnreadRoom[]): UnreadState {
  const out: UnreadState = {};
  for (const r of rooms) {
    const key = r.room.toLowerCase();
    const local = s[key];
    if (local && local.readLamport > r.read_lamport) {
      out[key] = { ...local, muted: r.muted, request: r.request };
      continue;
    }
    const counted: Record<string, number> = {};
    for (const [id, l] of Object.entries(local?.counted ?? {})) if (l > r.read_lamport) counted[id] = l;
    out[key] = { unread: r.unread, readLamport: r.read_lamport, counted, muted: r.muted, request: r.request };
  }
  return out;
}

/** Whether a message counts as unread: text or media from another wallet. */
export function countsAsUnread(m: { kind: string; sender: string }, self: string): boolean {
  return (m.kind === "text" || m.kind === "media") && m.sender.toLowerCase() !== self.toLowerCase();
}

/** A live message: counted once when it is content from someone else past the read mark. */
export function unreadMessage(s: UnreadState, m: { id: string; room: string; lamport: number; kind: string; sender: string }, self: string): UnreadState {
  const key = m.room.toLowerCase();
  const r = s[key];
  if (!r || !countsAsUnread(m, self) || m.lamport <= r.readLamport) return s;
  const id = m.id.toLowerCase();
  if (id in r.counted) return s;
  return { ...s, [key]: { ...r, unread: r.unread + 1, counted: { ...r.counted, [id]: m.lamport } } };
}

/**
 * A read mark at `lamport` (sent from here, or a `read` frame of another device). Messages
 * counted here above it stay unread; when the mark reaches `newestLamport` (the newest message
 * known in the room) nothing is left.
 */
export function unreadRead(s: UnreadState, room: string, lamport: number, newestLamport = Number.POSITIVE_INFINITY): UnreadState {
  const key = room.toLowerCase();
  const r = s[key];
  // A room the node has not counted yet is left to the caller, as in unreadMessage.
  if (!r || lamport <= r.readLamport) return s;
  const counted: Record<string, number> = {};
  for (const [id, l] of Object.entries(r.counted)) if (l > lamport) counted[id] = l;
  const left = lamport >= newestLamport ? 0 : Object.keys(counted).length;
  return { ...s, [key]: { ...r, readLamport: lamport, counted, unread: Math.min(r.unread, left) } };
}

// --- typing --------------------------------------------------------------------------------

/** Who is typing, per room (lowercase), with when each indicator ends (ms). */
export type TypingState = Record<string, Record<string, number>>;

/** How long an indicator holds without a refresh (the node's `social.typing_ttl_secs`). */
export const TYPING_TTL_MS = 6_000;

/** A typing ping (or its end) from `address` in `room`. */
export function typingPing(s: TypingState, room: string, address: string, stopped: boolean, nowMs: number, ttlMs = TYPING_TTL_MS): TypingState {
  const key = room.toLowerCase();
  const who = address.toLowerCase();
  const cur = { ...(s[key] ?? {}) };
  if (stopped) {
    if (!(who in cur)) return s;
    delete cur[who];
  } else {
    cur[who] = nowMs + ttlMs;
  }
  return { ...s, [key]: cur };
}

/** Drops indicators that ended; the same object when nothing did. */
export function typingPrune(s: TypingState, nowMs: number): TypingState {
  let changed = false;
  const out: TypingState = {};
  for (const [room, who] of Object.entries(s)) {
    const live: Record<string, number> = {};
    for (const [a, until] of Object.entries(who)) {
      if (until > nowMs) live[a] = until;
      else changed = true;
    }
    if (Object.keys(live).length > 0) out[room] = live;
    else if (Object.keys(who).length > 0) changed = true;
  }
  return changed ? out : s;
}

/** Addresses typing in `room` now, sorted. */
export function typingIn(s: TypingState, room: string, nowMs: number): string[] {
  return Object.entries(s[room.toLowerCase()] ?? {})
    .filter(([, until]) => until > nowMs)
    .map(([a]) => a)
    .sort();
}

/** "0x12…ab is typing", "0x12…ab and 0x34…cd are typing", "3 people are typing". */
export function typingText(addresses: string[], short: (a: string) => string): string {
  if (addresses.length === 0) return "";
  if (addresses.length === 1) return `${short(addresses[0]!)} is typing…`;
  if (addresses.length === 2) return `${short(addresses[0]!)} and ${short(addresses[1]!)} are typing…`;
  return `${addresses.length} people are typing…`;
}

/**
 * Client-side limit on typing pings: one every `intervalMs` while typing (the node allows
 * `typing_per_sec` = 1 with a burst of 5; this stays well below, and within the 6 s hold).
 */
export class TypingThrottle {
  private last = new Map<string, number>();
  constructor(private readonly intervalMs = 3_000) {}

  /** Whether to send a typing ping in `room` now. */
  ping(room: string, nowMs: number): boolean {
    const key = room.toLowerCase();
    const prev = this.last.get(key);
    if (prev !== undefined && nowMs - prev < this.intervalMs) return false;
    this.last.set(key, nowMs);
    return true;
  }

  /** Whether a "stopped" is due (a ping went out within the hold); resets the room. */
  stop(room: string, nowMs: number, ttlMs = TYPING_TTL_MS): boolean {
    const key = room.toLowerCase();
    const prev = this.last.get(key);
    this.last.delete(key);
    return prev !== undefined && nowMs - prev < ttlMs;
  }
}
