// Turning failures into what the user reads.

import { ApiError, NodeUnreachableError } from "../api/client";
import { WalletError } from "../wallet/wallet";

export type ErrorKind = "rejected" | "wrong_network" | "unreachable" | "expired" | "wallet" | "api" | "other";

export interface Problem {
  kind: ErrorKind;
  title: string;
  detail: string;
}

const API_TEXT: Record<string, string> = {
  rate_limited: "Too many requests. Wait a moment and try again.",
  device_key_taken:
    "This browser's device key is already registered to another wallet on this node. Use another browser profile for this wallet.",
  invite_required: "This room is invite-only: ask an admin to invite you.",
  role_forbidden: "Your role in this room does not allow this.",
  owner_stays: "The owner cannot leave or be removed: hand ownership to another member first.",
  target_not_member: "That address is not a member of this room.",
  already_member: "Already a member of this room.",
  direct_room_fixed: "A direct conversation keeps its two members and has no roles.",
  room_not_encrypted: "Public channels are not encrypted.",
  invalid_direct_room: "That is not a valid direct conversation (it needs another wallet's address).",
  invalid_box_key: "This device's encryption key is malformed. Sign out and in again.",
  room_exists: "A room with this id already exists.",
  room_not_found: "There is no room with this id on this node.",
  not_a_member: "You are not a member of this room.",
  invalid_room_id: "That is not a room id (0x followed by 64 hex digits).",
  envelope_clock_skew: "Your device's clock is ahead of the node's. Correct the clock and try again.",
  envelope_too_old: "The message is too old to send (or your clock is behind). Try again.",
  delegation_expired: "This device's delegation has expired. Sign in again.",
  device_not_delegated: "This device is not delegated by your wallet on this node. Sign in again.",
  siwe_chain_not_allowed: "The node does not accept sign-ins from this network.",
  siwe_nonce_expired: "The sign-in took too long. Try again.",
  siwe_nonce_used: "That sign-in was already used. Try again.",
  siwe_signature_invalid: "The wallet's signature does not match the account.",
  invalid_name: "The name must have 1 to 100 characters and no control characters.",
  too_many_members: "A group can start with at most 256 members.",
  not_encrypted: "This room is end-to-end encrypted: the node takes only sealed messages here.",
  payload_too_large: "The message is too large.",
  envelope_too_large: "The message is too large.",
  media_too_large: "The file is larger than this room accepts.",
  quota_exceeded: "Your or the room's storage quota is used up: delete older files first.",
  media_type_not_allowed: "The node does not accept files of this type.",
  media_not_found: "The file is not on this node, or you may not read it.",
  media_corrupt: "The node's copy of this file is damaged.",
  ipfs_unavailable: "The node's file store is not answering. Try again later.",
  query_too_short: "Type at least 2 characters.",
  query_too_long: "The search is too long.",
  query_missing: "Type something to search for.",
  invalid_query: "The search could not be read.",
  message_not_indexed: "The search index has not caught up with this message yet.",
  not_sender: "Only the sender of a message can index it.",
  node_unavailable: "The search service cannot reach the node right now.",
  gate_not_met: "This room is gated: you need the token, or a subscription, to join it.",
  chain_unavailable: "The node cannot check this room's gate on chain right now.",
  not_anchored_yet: "This message is not anchored on chain yet.",
  anchoring_disabled: "This node does not anchor messages on chain.",
};

export function describeError(err: unknown): Problem {
  if (err instanceof NodeUnreachableError) {
    return {
      kind: "unreachable",
      title: "Node unreachable",
      detail: "Cannot reach the dchat node. Check your connection; the node may be down. Try again in a moment.",
    };
  }
  if (err instanceof WalletError) {
    if (err.kind === "rejected") {
      return { kind: "rejected", title: "Request rejected", detail: "You rejected the request in your wallet." };
    }
    return { kind: "wallet", title: "Wallet error", detail: err.message };
  }
  if (err instanceof ApiError) {
    if (err.isSessionProblem) {
      return { kind: "expired", title: "Session expired", detail: "Your session has ended. Sign in again to continue." };
    }
    if (err.code === "siwe_chain_not_allowed") {
      return { kind: "wrong_network", title: "Wrong network", detail: API_TEXT[err.code]! };
    }
    let detail = API_TEXT[err.code] ?? err.message;
    if (err.code === "rate_limited" && err.retryAfterSecs) detail = `Too many requests. Try again in ${err.retryAfterSecs} s.`;
    return { kind: "api", title: "The node refused the request", detail: `${detail} (${err.code})` };
  }
  return { kind: "other", title: "Something went wrong", detail: (err as Error)?.message ?? String(err) };
}
