// The social layer of the signed-in wallet: contacts and blocks, the requests inbox, unread counts
// and read marks (the node's, the same on every device), notifications, mutes, settings, presence
// and typing. Lives beside the chat store, hears its live connection through `ChatStore.hooks`,
// and follows the wallet's social id on it for the social events.

import type { NodeClient } from "../api/client";
import {
  SocialApi,
  type ContactsReply,
  type Notification,
  type PresenceEntry,
  type Relation,
  type RequestEntry,
} from "../api/social";
import type { Message } from "../api/types";
import { describeError } from "../lib/errors";
import type { Hex } from "../lib/bytes";
import { decodeBody, encodeEnvelope, envelopeFromJson } from "../protocol/envelope";
import type { Signer } from "../protocol/compose";
import {
  composeContact,
  composeMute,
  composeNotificationsRead,
  composePresence,
  composeReadMark,
  composeSettings,
  composeTyping,
  decodeTyping,
  socialRoomId,
  type ContactAction,
  type PresenceStatusName,
} from "../protocol/social";
import type { ChatStore } from "./chat";
import {
  emptyNotifications,
  notificationArrived,
  notificationsAppended,
  notificationsLoaded,
  notificationsMarked,
  typingIn,
  typingPing,
  typingPrune,
  TypingThrottle,
  TYPING_TTL_MS,
  unreadMessage,
  unreadRead,
  unreadSnapshot,
  type NotificationsState,
  type TypingState,
  type UnreadState,
} from "./social-reducers";
import type { Session } from "./session";

const POLL_MS = 10_000;
const PRESENCE_EVERY_MS = 60_000;
const PRESENCE_POLL_MS = 30_000;
/** A read mark waits this long for more messages before it is sent. */
const READ_DELAY_MS = 300;
/** A typing ping waits this long after the keystroke (a quick message sends none). */
const TYPING_DELAY_MS = 500;

export class SocialStore {
  version = 0;
  readonly socialId: Hex;
  contacts: ContactsReply | undefined;
  contactsError: string | undefined;
  requests: RequestEntry[] = [];
  unread: UnreadState = {};
  unreadLoaded = false;
  notifications: NotificationsState = emptyNotifications;
  notificationsError: string | undefined;
  mutes = new Set<string>();
  hidePresence = false;
  private presenceOf = new Map<string, PresenceEntry>();
  typing: TypingState = {};
  private receiptsOf = new Map<string, { address: string; lamport: number }[]>();

  private readonly api: SocialApi;
  private readonly signer: Signer;
  private readonly self: string;
  private listeners = new Set<() => void>();
  private timers: ReturnType<typeof setInterval>[] = [];
  private readTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private throttle = new TypingThrottle();
  private typingTimer: ReturnType<typeof setInterval> | undefined;
  private refetchTimer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  /** Social writes wait on each other: each takes the social clock after the previous one. */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    client: NodeClient,
    private readonly session: Session,
    private readonly chat: ChatStore,
  ) {
    this.api = new SocialApi(client);
    this.self = session.address.toLowerCase();
    this.signer = { address: session.address, signPublic: session.keys.signPublic, signSecret: session.keys.signSecret };
    this.socialId = socialRoomId(session.address);
    this.accepted = new Set(loadAccepted(this.self));
  }

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getVersion = (): number => this.version;

  /** The page's own title, before counts were added to it. */
  private baseTitle = typeof document === "undefined" ? "dchat" : document.title;

  /** Unread messages in rooms that are neither muted nor requests (the node's `total`). */
  get unreadTotal(): number {
    let n = 0;
    for (const [room, r] of Object.entries(this.unread)) {
      if (r.muted || r.request || this.isRequest(room) || this.chat.viewing === room) continue;
      n += r.unread;
    }
    return n;
  }

  private changed(): void {
    this.version++;
    const total = this.unreadTotal + this.notifications.unread;
    const title = total > 0 ? `(${total > 99 ? "99+" : total}) ${this.baseTitle}` : this.baseTitle;
    if (!this.stopped && typeof document !== "undefined" && document.title !== title) document.title = title;
    for (const fn of this.listeners) fn();
    // Room list badges and names read from here too.
    this.chat.notify();
  }

  start(): void {
    this.stopped = false;
    this.chat.hooks.message.add(this.onMessage);
    this.chat.hooks.frame.add(this.onFrame);
    this.chat.hooks.open.add(this.onOpen);
    this.chat.hooks.seen.add(this.onSeen);
    this.chat.unreadFrom = (room) => this.roomUnread(room);
    this.chat.follow(this.socialId);
    this.unwatchRooms = this.chat.subscribe(this.onRooms);
    void this.refreshAll();
    this.timers.push(
      setInterval(() => {
        if (document.visibilityState === "visible") void this.refreshCounts();
      }, POLL_MS),
      setInterval(() => void this.announce(document.visibilityState === "visible" ? "online" : "away"), PRESENCE_EVERY_MS),
      setInterval(() => void this.loadPresence(), PRESENCE_POLL_MS),
    );
    document.addEventListener("visibilitychange", this.onVisibility);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    clearInterval(this.typingTimer);
    clearTimeout(this.refetchTimer);
    for (const t of this.typingPending.values()) clearTimeout(t);
    this.typingPending.clear();
    for (const t of this.readTimers.values()) clearTimeout(t);
    document.removeEventListener("visibilitychange", this.onVisibility);
    this.chat.hooks.message.delete(this.onMessage);
    this.chat.hooks.frame.delete(this.onFrame);
    this.chat.hooks.open.delete(this.onOpen);
    this.chat.hooks.seen.delete(this.onSeen);
    this.chat.unreadFrom = undefined;
    this.unwatchRooms?.();
    document.title = this.baseTitle;
    if (!this.hidePresence) this.offlineNow();
  }

  /**
   * Says offline as the session ends (sign out): sent with this session's token, which the app
   * has already dropped, and kept alive past the page.
   */
  private offlineNow(): void {
    try {
      const env = composePresence(this.signer, this.contacts?.next_lamport ?? 0, "offline");
      void fetch("/v1/presence", {
        method: "POST",
        headers: { "Content-Type": "application/x-protobuf", Authorization: `Bearer ${this.session.token}` },
        body: new Uint8Array(encodeEnvelope(env)),
        keepalive: true,
        credentials: "omit",
      }).catch(() => undefined);
    } catch {
      // The presence lapses on its own (the node's TTL).
    }
  }

  private unwatchRooms: (() => void) | undefined;
  private directRooms = 0;

  /** A new direct room may be a stranger's request, and its peer's presence is wanted. */
  private onRooms = () => {
    const n = this.chat.rooms.reduce((k, r) => k + (r.kind === "direct" ? 1 : 0), 0);
    if (n === this.directRooms) return;
    this.directRooms = n;
    this.refetchSoon();
    setTimeout(() => void this.loadPresence(), 1_000);
  };

  private onVisibility = () => {
    void this.announce(document.visibilityState === "visible" ? "online" : "away");
    if (document.visibilityState === "visible") void this.refreshCounts();
  };

  private onOpen = () => {
    // A reconnect may have missed events: read everything again.
    if (this.contacts) void this.refreshAll();
  };

  async refreshAll(): Promise<void> {
    await Promise.all([this.loadContacts(), this.refreshCounts(), this.loadNotifications(), this.loadMutes(), this.loadSettings()]);
    void this.loadPresence();
  }

  /** Unread counts and the requests inbox (polled, and after read marks of other devices). */
  async refreshCounts(): Promise<void> {
    try {
      const [u, requests] = await Promise.all([this.api.unread(), this.api.requests()]);
      this.unread = unreadSnapshot(this.unread, u.rooms);
      this.unreadLoaded = true;
      this.requests = requests;
      if (u.notifications !== this.notifications.unread) {
        this.notifications = { ...this.notifications, unread: u.notifications };
      }
      this.changed();
    } catch {
      // Counts stay as they were; the next poll tries again.
    }
  }

  private refetchSoon(what: "counts" | "all" = "counts"): void {
    clearTimeout(this.refetchTimer);
    this.refetchTimer = setTimeout(() => void (what === "all" ? this.refreshAll() : this.refreshCounts()), 250);
  }

  // --- contacts ------------------------------------------------------------------------------

  async loadContacts(): Promise<void> {
    try {
      this.contacts = await this.api.contacts();
      this.contactsError = undefined;
    } catch (err) {
      this.contactsError = describeError(err).detail;
    }
    this.changed();
  }

  /** The relation with `address` as the node last told. */
  relation(address: string): Relation {
    const c = this.contacts;
    const a = address.toLowerCase();
    if (!c) return "none";
    if (c.blocked.some((b) => b.toLowerCase() === a)) return "blocked";
    if (c.contacts.some((x) => x.address.toLowerCase() === a)) return "contact";
    if (c.incoming.some((x) => x.address.toLowerCase() === a)) return "incoming";
    if (c.outgoing.some((x) => x.address.toLowerCase() === a)) return "outgoing";
    return "none";
  }

  /** Whether this wallet blocks `address` (its messages are hidden, as the node does). */
  isBlocked(address: string): boolean {
    const a = address.toLowerCase();
    return this.contacts?.blocked.some((b) => b.toLowerCase() === a) ?? false;
  }

  /** Incoming contact requests waiting for an answer. */
  get incomingCount(): number {
    return this.contacts?.incoming.length ?? 0;
  }

  /** Runs one social write after the previous, with the social clock read just before. */
  private write<T>(f: (lamport: number) => Promise<T>): Promise<T> {
    const run = this.writes.then(async () => {
      const c = await this.api.contacts();
      this.contacts = c;
      return f(c.next_lamport);
    });
    this.writes = run.catch(() => undefined);
    return run;
  }

  /** Sends a contact envelope; the lists are read again after. */
  async contact(action: ContactAction, peer: string): Promise<Relation | undefined> {
    if (peer.toLowerCase() === this.self) throw new Error("That is your own address.");
    const reply = await this.write((lamport) => this.api.contact(composeContact(this.signer, lamport, action, peer)));
    await this.loadContacts();
    void this.refreshCounts();
    void this.loadPresence();
    return reply.state;
  }

  // --- requests inbox --------------------------------------------------------------------------

  /** Request rooms accepted on this device (the node moves them once the two are contacts or this wallet writes). */
  private accepted = new Set<string>();

  /** Direct rooms of strangers, waiting for an answer. */
  get pendingRequests(): RequestEntry[] {
    return this.requests.filter((r) => !this.accepted.has(r.room.id.toLowerCase()));
  }

  /** Whether `room` sits in the requests inbox (a stranger's direct room). */
  isRequest(room: string): boolean {
    const key = room.toLowerCase();
    return this.pendingRequests.some((r) => r.room.id.toLowerCase() === key);
  }

  /**
   * Accepts a stranger's direct room: asks them to be a contact (or accepts their request) and
   * moves the room to the list here at once.
   */
  async acceptRequest(room: string, from: string): Promise<void> {
    const rel = this.relation(from);
    if (rel === "none") await this.contact("request", from);
    else if (rel === "incoming") await this.contact("accept", from);
    this.accepted.add(room.toLowerCase());
    saveAccepted(this.self, this.accepted);
    this.changed();
  }

  // --- unread and read marks -----------------------------------------------------------------

  /** The node's unread count of a room, kept live; undefined before the node answered for it. */
  roomUnread(room: string): number | undefined {
    return this.unread[room.toLowerCase()]?.unread;
  }

  /** The highest read mark sent from here, by room. */
  private marked = new Map<string, number>();
  /** The newest stored message of `room` seen so far, waiting to be marked read. */
  private seenUpTo = new Map<string, { lamport: number; id: string }>();

  private onSeen = (room: string) => {
    if (this.chat.viewing !== room) return;
    // What is in view now; a message arriving after the user leaves stays unread.
    const newest = this.newestStored(room);
    if (!newest) return;
    const prev = this.seenUpTo.get(room);
    if (!prev || newest.lamport >= prev.lamport) this.seenUpTo.set(room, newest);
    clearTimeout(this.readTimers.get(room));
    this.readTimers.set(
      room,
      setTimeout(() => {
        this.readTimers.delete(room);
        const upTo = this.seenUpTo.get(room);
        this.seenUpTo.delete(room);
        if (upTo) void this.markRead(room, upTo);
      }, READ_DELAY_MS),
    );
  };

  private newestStored(room: string): { lamport: number; id: string } | undefined {
    const msgs = this.chat.view(room).messages;
    for (let i = msgs.length - 1; i >= 0; i--) {
      const m = msgs[i]!;
      if (m.status === "sent") return { lamport: m.lamport, id: m.id };
    }
    return undefined;
  }

  /** Sends a read mark up to `upTo` (default: the newest stored message of `room`), unless the node has it. */
  async markRead(room: string, upTo = this.newestStored(room)): Promise<void> {
    if (!upTo || !this.chat.room(room)) return;
    const cur = this.unread[room];
    if (cur && cur.readLamport >= upTo.lamport && cur.unread === 0) return;
    if ((this.marked.get(room) ?? -1) >= upTo.lamport && (!cur || cur.unread === 0)) return;
    this.marked.set(room, upTo.lamport);
    const maxLamport = this.chat.view(room).messages.reduce((n, m) => Math.max(n, m.lamport), 0);
    this.unread = unreadRead(this.unread, room, upTo.lamport, maxLamport);
    this.changed();
    try {
      await this.api.read(room, composeReadMark(this.signer, room, upTo.lamport, upTo.id));
    } catch {
      // Not taken: the node's next count stands (it no longer waits on this mark).
      this.marked.delete(room);
      const entry = this.unread[room];
      if (entry) this.unread = { ...this.unread, [room]: { ...entry, readLamport: -1 } };
      this.refetchSoon();
    }
  }

  // --- receipts ------------------------------------------------------------------------------

  receipts(room: string): { address: string; lamport: number }[] {
    return this.receiptsOf.get(room.toLowerCase()) ?? [];
  }

  async loadReceipts(room: string): Promise<void> {
    try {
      this.receiptsOf.set(room.toLowerCase(), await this.api.receipts(room));
      this.changed();
    } catch {
      // Receipts are a courtesy: none shown.
    }
  }

  // --- notifications -------------------------------------------------------------------------

  async loadNotifications(): Promise<void> {
    try {
      const r = await this.api.notifications({ limit: 50 });
      this.notifications = notificationsLoaded(this.notifications, r.notifications, r.unread, r.next);
      this.notificationsError = undefined;
    } catch (err) {
      this.notificationsError = describeError(err).detail;
    }
    this.changed();
  }

  /** The next older page of notifications, below those shown. */
  async loadOlderNotifications(): Promise<void> {
    const before = this.notifications.next;
    if (!before) return;
    const r = await this.api.notifications({ limit: 50, before });
    this.notifications = notificationsAppended(this.notifications, r.notifications, r.unread, r.next);
    this.changed();
  }

  /** Marks one notification read. */
  async markNotification(id: string): Promise<void> {
    this.notifications = notificationsMarked(this.notifications, { ids: [id] });
    this.changed();
    const reply = await this.write((lamport) => this.api.markNotifications(composeNotificationsRead(this.signer, lamport, 0, [id])));
    if (reply.unread !== undefined) this.notifications = { ...this.notifications, unread: reply.unread };
    this.changed();
  }

  /** Marks every notification read (all created up to the newest known, or now). */
  async markAllNotifications(): Promise<void> {
    const newest = this.notifications.items.reduce((n, i) => Math.max(n, i.created_ms), 0);
    const upTo = Math.max(Date.now(), newest);
    this.notifications = notificationsMarked(this.notifications, { upToMs: upTo, unread: 0 });
    this.changed();
    const reply = await this.write((lamport) => this.api.markNotifications(composeNotificationsRead(this.signer, lamport, upTo)));
    if (reply.unread !== undefined) this.notifications = { ...this.notifications, unread: reply.unread };
    this.changed();
  }

  /** The name a room shows with, if this wallet has it. */
  roomName(id: string): string | undefined {
    const r = this.chat.room(id);
    return r ? this.chat.displayName(r) : undefined;
  }

  // --- mutes and settings --------------------------------------------------------------------

  async loadMutes(): Promise<void> {
    try {
      this.mutes = new Set((await this.api.mutes()).map((r) => r.toLowerCase()));
      this.changed();
    } catch {
      // Shown as not muted until the next read.
    }
  }

  isMuted(room: string): boolean {
    return this.mutes.has(room.toLowerCase());
  }

  async setMuted(room: string, muted: boolean): Promise<void> {
    const rooms = await this.write((lamport) => this.api.mute(composeMute(this.signer, lamport, room, muted)));
    this.mutes = new Set(rooms.map((r) => r.toLowerCase()));
    this.changed();
    void this.loadNotifications();
  }

  async loadSettings(): Promise<void> {
    try {
      this.hidePresence = (await this.api.settings()).hide_presence;
      this.changed();
      if (!this.hidePresence) void this.announce("online");
    } catch {
      // Defaults until the next read.
    }
  }

  async setHidePresence(hide: boolean): Promise<void> {
    if (hide) await this.announce("offline").catch(() => undefined);
    const s = await this.write((lamport) => this.api.setSettings(composeSettings(this.signer, lamport, { hidePresence: hide })));
    this.hidePresence = s.hide_presence;
    this.changed();
    if (!hide) void this.announce("online");
  }

  // --- presence ------------------------------------------------------------------------------

  /** Publishes this wallet's presence (nothing while it hides it). */
  private async announce(status: PresenceStatusName): Promise<void> {
    if (this.hidePresence || (this.stopped && status !== "offline")) return;
    try {
      const lamport = this.contacts?.next_lamport ?? 0;
      await this.api.setPresence(composePresence(this.signer, lamport, status));
    } catch {
      // presence_hidden, rate_limited, presence_full: others see the last one until it lapses.
    }
  }

  /** Wallets whose presence is shown: contacts and the other members of direct rooms. */
  private watched(): string[] {
    const out = new Set<string>();
    for (const c of this.contacts?.contacts ?? []) out.add(c.address.toLowerCase());
    for (const r of this.chat.rooms) {
      if (r.kind !== "direct") continue;
      const peer = this.chat.directPeer(r.id);
      if (peer) out.add(peer.toLowerCase());
    }
    return [...out];
  }

  async loadPresence(): Promise<void> {
    const addresses = this.watched();
    if (addresses.length === 0) return;
    try {
      for (const p of await this.api.presence(addresses)) this.presenceOf.set(p.address.toLowerCase(), p);
      this.changed();
    } catch {
      // Shown as unknown until the next read.
    }
  }

  presence(address: string): PresenceEntry | undefined {
    return this.presenceOf.get(address.toLowerCase());
  }

  // --- typing --------------------------------------------------------------------------------

  /** Pings waiting to go (the first a moment after typing starts), by room. */
  private typingPending = new Map<string, ReturnType<typeof setTimeout>>();
  /** When the last ping went out, by room. */
  private typingSent = new Map<string, number>();

  /**
   * The composer changed: a typing ping, at most one every few seconds, each sent a moment
   * after the keystroke that allowed it, so a message typed and sent at once sends none.
   */
  typingInput(room: string, empty: boolean): void {
    const key = room.toLowerCase();
    if (empty) {
      this.typingStopped(key);
      return;
    }
    if (this.typingPending.has(key) || !this.throttle.ping(key, Date.now())) return;
    this.typingPending.set(
      key,
      setTimeout(() => {
        this.typingPending.delete(key);
        this.typingSent.set(key, Date.now());
        void this.sendTyping(key, false);
      }, TYPING_DELAY_MS),
    );
  }

  /** The message was sent or the text cleared: end the indicator if one is showing. */
  typingStopped(room: string): void {
    const key = room.toLowerCase();
    clearTimeout(this.typingPending.get(key));
    this.typingPending.delete(key);
    this.throttle.stop(key, Date.now());
    const sent = this.typingSent.get(key);
    this.typingSent.delete(key);
    if (sent !== undefined && Date.now() - sent < TYPING_TTL_MS) void this.sendTyping(key, true);
  }

  private async sendTyping(room: string, stopped: boolean): Promise<void> {
    const info = this.chat.room(room);
    if (!info) return;
    const newest = this.chat.view(room).messages.reduce((n, m) => Math.max(n, m.lamport), info.next_lamport ? info.next_lamport - 1 : 0);
    try {
      await this.api.sendTyping(room, composeTyping(this.signer, room, newest, stopped));
    } catch {
      // rate_limited or typing_full: the indicator is a courtesy.
    }
  }

  /** Who is typing in `room` now (not this wallet). */
  typingIn(room: string): string[] {
    return typingIn(this.typing, room, Date.now());
  }

  private setTyping(next: TypingState): void {
    if (next === this.typing) return;
    this.typing = next;
    const any = Object.keys(next).length > 0;
    if (any && this.typingTimer === undefined) {
      this.typingTimer = setInterval(() => {
        const pruned = typingPrune(this.typing, Date.now());
        if (pruned !== this.typing) {
          this.typing = pruned;
          this.changed();
        }
        if (Object.keys(this.typing).length === 0) {
          clearInterval(this.typingTimer);
          this.typingTimer = undefined;
        }
      }, 500);
    }
    this.changed();
  }

  // --- live ----------------------------------------------------------------------------------

  private onMessage = (m: Message) => {
    const room = m.room.toLowerCase();
    const sender = m.sender.toLowerCase();
    if (m.kind === "typing") {
      if (sender === this.self) return;
      let stopped = false;
      try {
        stopped = decodeTyping(decodeBody(envelopeFromJson(m.envelope).body).payload).stopped;
      } catch {
        return;
      }
      this.setTyping(typingPing(this.typing, room, sender, stopped, Date.now()));
      return;
    }
    // Writing in a request room answers it: the node moves it to the ordinary list.
    if (sender === this.self && this.isRequest(room)) this.refetchSoon();
    // A message ends its author's indicator.
    if (this.typing[room]?.[sender]) this.setTyping(typingPing(this.typing, room, sender, true, Date.now()));
    if (this.chat.viewing === room) return; // read as it arrives (onSeen sends the mark)
    const next = unreadMessage(this.unread, m, this.self);
    if (next !== this.unread) {
      this.unread = next;
      this.changed();
    }
    // A direct room of a stranger lands in the requests inbox.
    if (this.chat.room(room)?.kind === "direct" && !this.isRequest(room) && this.relation(sender) !== "contact") this.refetchSoon();
  };

  private onFrame = (f: { type: string } & Record<string, unknown>) => {
    switch (f.type) {
      case "notification": {
        const n = f.notification as Notification | undefined;
        if (!n || typeof n.id !== "string") return;
        this.notifications = notificationArrived(this.notifications, n, typeof f.unread === "number" ? f.unread : undefined);
        this.changed();
        // An invite brings a new room.
        if (n.kind === "invite") void this.chat.loadRooms();
        break;
      }
      case "notifications_read":
        this.notifications = { ...this.notifications, unread: typeof f.unread === "number" ? f.unread : this.notifications.unread };
        this.changed();
        void this.loadNotifications();
        break;
      case "contact":
        void this.loadContacts().then(() => this.loadPresence());
        this.refetchSoon();
        break;
      case "presence": {
        const address = typeof f.address === "string" ? f.address : undefined;
        const status = f.status === "online" || f.status === "away" || f.status === "offline" ? f.status : undefined;
        if (!address || !status) return;
        this.presenceOf.set(address.toLowerCase(), { address, status, last_seen_ms: typeof f.last_seen_ms === "number" ? f.last_seen_ms : null });
        this.changed();
        break;
      }
      case "read": {
        const room = typeof f.room === "string" ? f.room.toLowerCase() : undefined;
        const address = typeof f.address === "string" ? f.address : undefined;
        const lamport = typeof f.lamport === "number" ? f.lamport : undefined;
        if (!room || !address || lamport === undefined) return;
        // Receipts of the room.
        const list = this.receiptsOf.get(room);
        if (list) {
          const rest = list.filter((r) => r.address.toLowerCase() !== address.toLowerCase());
          this.receiptsOf.set(room, [...rest, { address, lamport: Math.max(lamport, list.find((r) => r.address.toLowerCase() === address.toLowerCase())?.lamport ?? 0) }]);
        }
        // Another device of this wallet read it.
        if (address.toLowerCase() === this.self) {
          this.unread = unreadRead(this.unread, room, lamport, this.chat.view(room).messages.reduce((n, m) => Math.max(n, m.lamport), 0));
          this.refetchSoon();
        }
        this.changed();
        break;
      }
      default:
        // Kinds of a newer node: a typing event carrying its room and author.
        if (f.type.startsWith("typing") && typeof f.room === "string" && typeof f.address === "string" && f.address.toLowerCase() !== this.self) {
          const stopped = f.type !== "typing" || f.stopped === true;
          this.setTyping(typingPing(this.typing, f.room, f.address, stopped, Date.now()));
        }
        break;
    }
  };
}

function acceptedKey(address: string): string {
  return `dchat.accepted-requests.v1.${address}`;
}

function loadAccepted(address: string): string[] {
  try {
    return JSON.parse(localStorage.getItem(acceptedKey(address)) ?? "[]") as string[];
  } catch {
    return [];
  }
}

function saveAccepted(address: string, rooms: Set<string>): void {
  try {
    localStorage.setItem(acceptedKey(address), JSON.stringify([...rooms]));
  } catch {
    // Kept for this page only.
  }
}
