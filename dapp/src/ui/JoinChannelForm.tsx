import { useState } from "react";
import { describeError, type Problem } from "../lib/errors";
import type { ChatStore } from "../state/chat";
import { ProblemBox } from "./ProblemBox";
import { navigate } from "./route";

export function JoinChannelForm({ store, initialId }: { store: ChatStore; initialId?: string }) {
  const [id, setId] = useState(initialId ?? "");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const valid = /^0x[0-9a-fA-F]{64}$/.test(id.trim());

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    if (!valid || busy) return;
    setBusy(true);
    setProblem(undefined);
    try {
      const room = await store.joinChannel(id.trim().toLowerCase());
      navigate({ name: "room", id: room.id.toLowerCase() });
    } catch (err) {
      setProblem(describeError(err));
      setBusy(false);
    }
  }

  return (
    <section className="form-page" aria-labelledby="join-title">
      <a className="back" href="#/" aria-label="Back to rooms">
        ←
      </a>
      <h2 id="join-title">Join a channel</h2>
      <p className="muted">Paste the id of a public channel (0x followed by 64 hex digits).</p>
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="join-id">Channel id</label>
        <input
          id="join-id"
          value={id}
          autoFocus
          spellCheck={false}
          autoComplete="off"
          onChange={(e) => setId(e.target.value)}
          aria-invalid={id.length > 0 && !valid}
          placeholder="0x…"
        />
        {problem && <ProblemBox problem={problem} />}
        <button type="submit" disabled={!valid || busy}>
          {busy ? "Joining…" : "Join"}
        </button>
      </form>
    </section>
  );
}
