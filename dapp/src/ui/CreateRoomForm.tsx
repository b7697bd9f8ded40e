// New private group (name + members) or public channel (name).

import { useState } from "react";
import { getAddress, isAddress } from "viem";
import { describeError, type Problem } from "../lib/errors";
import type { ChatStore } from "../state/chat";
import { ProblemBox } from "./ProblemBox";
import { navigate } from "./route";

const MAX_MEMBERS = 256;

/** Parses the members field: addresses separated by commas, spaces or new lines. */
export function parseMembers(input: string, self: string): { members: string[]; invalid: string[] } {
  const seen = new Set<string>();
  const members: string[] = [];
  const invalid: string[] = [];
  for (const token of input.split(/[\s,;]+/).filter(Boolean)) {
    if (!isAddress(token, { strict: false })) {
      invalid.push(token);
      continue;
    }
    const a = getAddress(token);
    if (a.toLowerCase() === self.toLowerCase() || seen.has(a)) continue;
    seen.add(a);
    members.push(a);
  }
  return { members, invalid };
}

export function CreateRoomForm({ store, kind, self }: { store: ChatStore; kind: "group" | "channel"; self: string }) {
  const [name, setName] = useState("");
  const [membersText, setMembersText] = useState("");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const parsed = parseMembers(membersText, self);
  const nameOk = name.trim().length >= 1 && name.trim().length <= 100;
  const membersOk = kind === "channel" || (parsed.invalid.length === 0 && parsed.members.length <= MAX_MEMBERS);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    if (!nameOk || !membersOk || busy) return;
    setBusy(true);
    setProblem(undefined);
    try {
      const room = await store.createRoom({ name: name.trim(), kind, members: kind === "group" ? parsed.members : [] });
      navigate({ name: "room", id: room.id.toLowerCase() });
    } catch (err) {
      setProblem(describeError(err));
      setBusy(false);
    }
  }

  const title = kind === "group" ? "New private group" : "New public channel";
  return (
    <section className="form-page" aria-labelledby="create-title">
      <a className="back" href="#/" aria-label="Back to rooms">
        ←
      </a>
      <h2 id="create-title">{title}</h2>
      <p className="muted">
        {kind === "group"
          ? "Only the members you name can read and write. Members cannot be added later yet."
          : "Anyone can read a channel and join it with its id."}
      </p>
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="room-name">Name</label>
        <input id="room-name" value={name} maxLength={100} required autoFocus onChange={(e) => setName(e.target.value)} />
        {kind === "group" && (
          <>
            <label htmlFor="room-members">Members (wallet addresses, one per line or comma separated)</label>
            <textarea
              id="room-members"
              rows={4}
              value={membersText}
              onChange={(e) => setMembersText(e.target.value)}
              aria-invalid={!membersOk}
              aria-describedby="members-hint"
              placeholder="0x…"
            />
            <p id="members-hint" className={parsed.invalid.length ? "problem small" : "muted small"}>
              {parsed.invalid.length
                ? `Not an address: ${parsed.invalid.join(", ")}`
                : `${parsed.members.length} member${parsed.members.length === 1 ? "" : "s"} besides you`}
            </p>
          </>
        )}
        {problem && <ProblemBox problem={problem} />}
        <button type="submit" disabled={!nameOk || !membersOk || busy}>
          {busy ? "Creating…" : kind === "group" ? "Create group" : "Create channel"}
        </button>
      </form>
    </section>
  );
}
