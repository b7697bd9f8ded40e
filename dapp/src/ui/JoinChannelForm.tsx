import { useEffect, useState } from "react";
import type { ChannelEntry } from "../api/types";
import { describeError, type Problem } from "../lib/errors";
import type { ChatStore } from "../state/chat";
import { ProblemBox } from "./ProblemBox";
import { navigate } from "./route";
import { ApiError } from "../api/client";
import { SubscribePanel } from "./PolicyPanel";

export function JoinChannelForm({ store, initialId }: { store: ChatStore; initialId?: string }) {
  const [id, setId] = useState(initialId ?? "");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const valid = /^0x[0-9a-fA-F]{64}$/.test(id.trim());
  const [channels, setChannels] = useState<ChannelEntry[]>();
  const [dirProblem, setDirProblem] = useState<Problem>();
  /** A paid room refused the join: offer the subscription. */
  const [paidRoom, setPaidRoom] = useState<string>();

  useEffect(() => {
    let live = true;
    store.channels().then(
      // The node's default channel first, then as the node lists them (newest first).
      (c) => live && setChannels([...c].sort((a, b) => Number(b.default) - Number(a.default))),
      (err) => live && setDirProblem(describeError(err)),
    );
    return () => {
      live = false;
    };
  }, [store]);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    if (!valid || busy) return;
    await join(id.trim().toLowerCase());
  }

  async function join(target: string) {
    if (busy) return;
    setBusy(true);
    setProblem(undefined);
    try {
      const room = await store.joinChannel(target);
      navigate({ name: "room", id: room.id.toLowerCase() });
    } catch (err) {
      setProblem(describeError(err));
      setBusy(false);
      if (err instanceof ApiError && err.code === "gate_not_met" && store.info?.contracts.length) {
        const info = await store.roomInfo(target).catch(() => undefined);
        if (info?.policy === "paid") setPaidRoom(target);
      }
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
      {paidRoom && (
        <SubscribePanel
          store={store}
          roomId={paidRoom}
          onSubscribed={() => {
            setProblem(undefined);
            void join(paidRoom);
          }}
        />
      )}
      <h3 id="directory-title">Channel directory</h3>
      {dirProblem && <ProblemBox problem={dirProblem} />}
      {!channels && !dirProblem && <p className="muted">Loading channels…</p>}
      {channels && channels.length === 0 && <p className="muted">No public channels on this node yet.</p>}
      {channels && channels.length > 0 && (
        <ul className="directory" aria-labelledby="directory-title">
          {channels.map((c) => {
            const mine = !!store.room(c.id);
            return (
              <li key={c.id} data-channel-id={c.id.toLowerCase()}>
                <span className="room-name"># {c.name}</span>
                {c.default && <span className="tag">default</span>}
                <span className="muted small">
                  {" "}
                  · {c.members} {c.members === 1 ? "member" : "members"}
                </span>{" "}
                {mine ? (
                  <a className="button small secondary" href={`#/room/${c.id.toLowerCase()}`}>
                    Open {c.name}
                  </a>
                ) : (
                  <button type="button" className="small" disabled={busy} onClick={() => void join(c.id.toLowerCase())}>
                    Join {c.name}
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
