// The node's social routes (docs/api.md#social): contacts, requests, unread counts and read
// marks, notifications, mutes, settings, presence and typing.

import type { Hex } from "../lib/bytes";
import type { Envelope } from "../protocol/envelope";
import type { NodeClient } from "./client";
import type { Room } from "./types";

/** The relation with another wallet as the caller sees it. */
export type Relation = "none" | "incoming" | "outgoing" | "contact" | "blocked";

export interface ContactEntry {
  address: string;
  since_ms: number;
}

export interface ContactsReply {
  contacts: ContactEntry[];
  incoming: ContactEntry[];
  outgoing: ContactEntry[];
  blocked: string[];
  /** The caller's social clock: the lamport of its next social envelope. */
  next_lamport: number;
}

export interface SocialWriteReply {
  id: Hex;
  fresh: boolean;
  state?: Relation;
  unread?: number;
}

export interface RequestEntry {
  room: Room;
  from: string;
  unread: number;
}

export interface UnreadRoom {
  room: Hex;
  unread: number;
  read_lamport: number;
  muted: boolean;
  request: boolean;
}

export interface UnreadReply {
  rooms: UnreadRoom[];
  total: number;
  notifications: number;
}

/** A notification; `kind` may be one this version does not know (shown generically). */
export interface Notification {
  id: Hex;
  kind: string;
  room: Hex | null;
  actor: string;
  created_ms: number;
  read: boolean;
  /** Fields a newer node may add (for example a tip's amount). */
  [extra: string]: unknown;
}

export interface NotificationsReply {
  notifications: Notification[];
  unread: number;
  /** On a full page: the id to pass as `before` for the next (older) page. */
  next?: Hex;
}

export interface PresenceEntry {
  address: string;
  status: "online" | "away" | "offline";
  last_seen_ms: number | null;
}

export class SocialApi {
  constructor(private readonly client: NodeClient) {}

  contacts(): Promise<ContactsReply> {
    return this.client.call("GET", "/v1/contacts");
  }

  /** One contact envelope (request, accept, decline, remove, block, unblock). */
  contact(env: Envelope): Promise<SocialWriteReply> {
    return this.client.call("POST", "/v1/contacts", env);
  }

  async requests(): Promise<RequestEntry[]> {
    return (await this.client.call<{ requests: RequestEntry[] }>("GET", "/v1/requests")).requests;
  }

  unread(): Promise<UnreadReply> {
    return this.client.call("GET", "/v1/unread");
  }

  read(room: string, env: Envelope): Promise<SocialWriteReply> {
    return this.client.call("POST", `/v1/rooms/${room}/read`, env);
  }

  async receipts(room: string): Promise<{ address: string; lamport: number }[]> {
    return (await this.client.call<{ receipts: { address: string; lamport: number }[] }>("GET", `/v1/rooms/${room}/receipts`)).receipts;
  }

  async typing(room: string): Promise<{ address: string; expires_ms: number }[]> {
    return (await this.client.call<{ typing: { address: string; expires_ms: number }[] }>("GET", `/v1/rooms/${room}/typing`)).typing;
  }

  notifications(opts: { unread?: boolean; limit?: number; before?: string } = {}): Promise<NotificationsReply> {
    const q = new URLSearchParams();
    if (opts.unread) q.set("unread", "true");
    q.set("limit", String(opts.limit ?? 50));
    if (opts.before) q.set("before", opts.before);
    return this.client.call("GET", `/v1/notifications?${q.toString()}`);
  }

  markNotifications(env: Envelope): Promise<SocialWriteReply> {
    return this.client.call("POST", "/v1/notifications/read", env);
  }

  async mutes(): Promise<Hex[]> {
    return (await this.client.call<{ rooms: Hex[] }>("GET", "/v1/mutes")).rooms;
  }

  async mute(env: Envelope): Promise<Hex[]> {
    return (await this.client.call<{ rooms: Hex[] }>("POST", "/v1/mutes", env)).rooms;
  }

  settings(): Promise<{ hide_presence: boolean }> {
    return this.client.call("GET", "/v1/settings");
  }

  setSettings(env: Envelope): Promise<{ hide_presence: boolean }> {
    return this.client.call("POST", "/v1/settings", env);
  }

  setPresence(env: Envelope): Promise<SocialWriteReply> {
    return this.client.call("POST", "/v1/presence", env);
  }

  async presence(addresses: string[]): Promise<PresenceEntry[]> {
    if (addresses.length === 0) return [];
    return (await this.client.call<{ presence: PresenceEntry[] }>("GET", `/v1/presence?addresses=${addresses.slice(0, 100).join(",")}`)).presence;
  }

  /** A typing ping goes where messages go (`202`, never stored). */
  sendTyping(room: string, env: Envelope): Promise<unknown> {
    return this.client.post(room, env);
  }
}
