// Control messages (room created, joined, invited, left, removed, role and policy changes, new
// key epochs) as one short line of text.

import { envelopeFromJson, decodeBody } from "../protocol/envelope";
import { decodeInvite, decodeRemove, decodeSetPolicy, decodeSetRole, POLICY_NAMES, ROLE_NAMES } from "../protocol/control";
import { toHex } from "../lib/bytes";
import type { Message } from "../api/types";
import { getAddress } from "viem";
import { shortAddress } from "./format";

const CONTROL_KINDS = new Set(["create_room", "join", "invite", "leave", "remove", "set_role", "set_policy", "rotate_key"]);

/** The line for a control message, or undefined for any other kind. */
export function controlLine(m: Pick<Message, "kind" | "sender" | "envelope">, self: string): string | undefined {
  if (!CONTROL_KINDS.has(m.kind)) return undefined;
  const name = (a: string) => (a.toLowerCase() === self.toLowerCase() ? "you" : shortAddress(getAddress(a)));
  const who = m.sender.toLowerCase() === self.toLowerCase() ? "You" : shortAddress(m.sender);
  let payload: Uint8Array;
  try {
    payload = decodeBody(envelopeFromJson(m.envelope).body).payload;
  } catch {
    payload = new Uint8Array();
  }
  try {
    switch (m.kind) {
      case "create_room":
        return `${who} created the room`;
      case "join":
        return `${who} joined`;
      case "leave":
        return `${who} left`;
      case "rotate_key":
        return `${who} started a new key epoch`;
      case "invite": {
        const members = decodeInvite(payload).members.map((a) => name(toHex(a)));
        return `${who} invited ${members.join(", ")}`;
      }
      case "remove":
        return `${who} removed ${name(toHex(decodeRemove(payload).member))}`;
      case "set_role": {
        const r = decodeSetRole(payload);
        const role = ROLE_NAMES[r.role] ?? "an unknown role";
        return r.role === 3 ? `${who} handed ownership to ${name(toHex(r.member))}` : `${who} made ${name(toHex(r.member))} ${role}`;
      }
      case "set_policy":
        return `${who} set the room to ${POLICY_NAMES[decodeSetPolicy(payload).policy] ?? "an unknown policy"}`;
    }
  } catch {
    return `${who}: ${m.kind.replace("_", " ")} (malformed)`;
  }
  return undefined;
}
