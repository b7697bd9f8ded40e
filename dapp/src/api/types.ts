// JSON shapes of the dchat-node API (docs/api.md).

import type { Hex } from "../lib/bytes";
import type { EnvelopeJson } from "../protocol/envelope";

export type RoomKindName = "group" | "channel" | "direct";
export type Role = "owner" | "admin" | "member";

/** The room object. */
export interface Room {
  id: Hex;
  name: string;
  kind: RoomKindName;
  owner: string;
  created_at: number;
  /** The caller's role, or null for a non-member reading a channel. */
  role: Role | null;
}

export type MessageKindName =
  | "text"
  | "media"
  | "reaction"
  | "edit"
  | "delete"
  | "receipt"
  | "typing"
  | "presence"
  | "create_room"
  | "join";

/** The message object of history pages and live frames. */
export interface Message {
  id: Hex;
  room: Hex;
  sender: string;
  device_key: Hex;
  timestamp_ms: number;
  lamport: number;
  kind: MessageKindName | string;
  text?: string;
  payload_len: number;
  envelope: EnvelopeJson;
}

export interface MessagePage {
  messages: Message[];
  has_more: boolean;
}

export interface SignInReply {
  token: string;
  address: string;
  expires_at: number;
  device_key: Hex | null;
}

export interface PostReply {
  id: Hex;
  duplicate: boolean;
  stored: boolean;
}

/** The error body every HTTP error carries. */
export interface ErrorBody {
  error: string;
  message: string;
}
