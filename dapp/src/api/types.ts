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
  /** Join policy: `invite_only`, `open`, `token_gated` or `paid`. */
  policy?: string;
  /** Lamport clock for the next message (one past the newest stored). */
  next_lamport?: number;
}

/** A member in `GET /v1/rooms/{id}/members`. */
export interface Member {
  address: string;
  role: Role;
  /** X25519 keys of the member's live devices. */
  box_keys: Hex[];
}

export interface MembersReply {
  room: Room;
  members: Member[];
  /** Current key epoch (private rooms). */
  epoch: { id: Hex; lamport: number; box_keys: Hex[] } | null;
  /** Whether a sender should start a new epoch first. */
  rotate: boolean;
}

/** One epoch key wrapped for this device (`GET /v1/rooms/{id}/keys`). */
export interface WrappedKeyJson {
  epoch: Hex;
  /** Who rotated (the HPKE aad). */
  sender: string;
  lamport: number;
  enc: Hex;
  ciphertext: Hex;
}

/** A public channel in `GET /v1/channels`. */
export interface ChannelEntry extends Room {
  members: number;
  default: boolean;
}

export interface ControlReply {
  id: Hex;
  room: Room;
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
  | "join"
  | "invite"
  | "leave"
  | "remove"
  | "set_role"
  | "rotate_key"
  | "set_policy";

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
  /** A sealed (end-to-end encrypted) payload; `text` is then absent. */
  encrypted?: boolean;
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

/** `GET /v1/info`: the node and the services its operator configured for the dApp. */
export interface NodeInfo {
  domain: string;
  uri: string;
  chain_ids: number[];
  /** The search indexer, when there is one. */
  indexer_url: string | null;
  /** The LinkedIn gateway, when there is one. */
  gateway_url: string | null;
  /** Contracts per chain (tips, paid rooms, anchoring). */
  contracts: { chain_id: number; payments: string; message_anchor: string; node_registry: string }[];
}

/** `GET /v1/messages/{id}/proof`. */
export interface ProofReply {
  id: Hex;
  chain_id: number;
  contract: string;
  /** The account the root is anchored under (the node's anchor key). */
  anchorer: string;
  root: Hex;
  proof: Hex[];
  tx_hash: Hex | null;
  block: number | null;
}

/** `POST /v1/media` reply. */
export interface MediaUploadReply {
  cid: string;
  size: number;
  mime: string;
}
