// New direct message: the other wallet's address. The room id derives from both addresses, so
// when the other side started it first, this opens the same room.

import { useState } from "react";
import { getAddress, isAddress } from "viem";
import { describeError, type Problem } from "../lib/errors";
import type { ChatStore } from "../state/chat";
import { ProblemBox } from "./ProblemBox";
import { navigate } from "./route";

export function DirectForm({ store, self }: { store: ChatStore; self: string }) {
  const [peer, setPeer] = useState("");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const trimmed = peer.trim();
  const valid = isAddress(trimmed, { strict: false });
  const own = valid && trimmed.toLowerCase() === self.toLowerCase();

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    if (!valid || own || busy) return;
    setBusy(true);
    setProblem(undefined);
    try {
      const room = await store.startDirect(getAddress(trimmed));
      navigate({ name: "room", id: room.id.toLowerCase() });
    } catch (err) {
      setProblem(describeError(err));
      setBusy(false);
    }
  }

  return (
    <section className="form-page" aria-labelledby="direct-title">
      <a className="back" href="#/" aria-label="Back to rooms">
        ←
      </a>
      <h2 id="direct-title">New direct message</h2>
      <p className="muted">End-to-end encrypted, between you and one other wallet.</p>
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="direct-peer">Wallet address</label>
        <input
          id="direct-peer"
          value={peer}
          autoFocus
          spellCheck={false}
          autoComplete="off"
          onChange={(e) => setPeer(e.target.value)}
          aria-invalid={peer.length > 0 && (!valid || own)}
          placeholder="0x…"
        />
        {own && <p className="problem small">That is your own address.</p>}
        {problem && <ProblemBox problem={problem} />}
        <button type="submit" disabled={!valid || own || busy}>
          {busy ? "Opening…" : "Start"}
        </button>
      </form>
    </section>
  );
}
