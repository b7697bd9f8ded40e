// Search: messages (public channels by full text; one encrypted room by keyed tokens computed on
// this device) and people, against the indexer the node names in GET /v1/info.

import { useState } from "react";
import { highlightParts, markedText, SearchUnavailableError, type MessageHit, type UserHit } from "../api/indexer";
import { describeError } from "../lib/errors";
import type { ChatStore } from "../state/chat";
import { isPrivate } from "../state/chat";
import { formatTime, shortAddress } from "./format";
import { href, navigate } from "./route";
import { useStore } from "./useStore";

type Hit = MessageHit & { plain?: string };

function problemText(err: unknown): string {
  if (err instanceof SearchUnavailableError) return "The search service is not answering. Try again in a moment.";
  return describeError(err).detail;
}

export function SearchView({ store, room: roomId }: { store: ChatStore; room?: string }) {
  useStore(store);
  const room = roomId ? store.room(roomId) : undefined;
  const [mode, setMode] = useState<"messages" | "people">("messages");
  const [q, setQ] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [hits, setHits] = useState<Hit[]>();
  const [users, setUsers] = useState<UserHit[]>();
  const [next, setNext] = useState<string>();
  const [searched, setSearched] = useState("");

  if (!store.indexer) {
    return (
      <section className="form-page search" aria-labelledby="search-title">
        <h2 id="search-title">Search</h2>
        <p className="problem" role="alert" data-problem="no_search">
          {store.infoLoaded ? "This node has no search service configured." : "Loading…"}
        </p>
        <p>
          <a href="#/">Back to rooms</a>
        </p>
      </section>
    );
  }
  const indexer = store.indexer;
  const encrypted = !!room && isPrivate(room);

  async function run(cursor?: string) {
    const query = q.trim();
    setError(undefined);
    if (query.length < 2) {
      setError("Type at least 2 characters.");
      return;
    }
    setBusy(true);
    try {
      if (mode === "people") {
        setUsers(await indexer.searchUsers(query));
        setHits(undefined);
      } else if (encrypted) {
        setHits(await store.searchEncrypted(roomId!, query));
        setNext(undefined);
        setUsers(undefined);
      } else {
        const r = await indexer.searchMessages(query, { room: roomId, cursor });
        setHits((prev) => (cursor && prev ? [...prev, ...r.results] : r.results));
        setNext(r.next_cursor);
        setUsers(undefined);
      }
      setSearched(query);
    } catch (err) {
      setError(problemText(err));
    } finally {
      setBusy(false);
    }
  }

  async function message(address: string) {
    try {
      const r = await store.startDirect(address);
      navigate({ name: "room", id: r.id.toLowerCase() });
    } catch (err) {
      setError(problemText(err));
    }
  }

  const scope = room ? store.displayName(room) : "all public channels";
  return (
    <section className="form-page search" aria-labelledby="search-title">
      <header className="search-header">
        <a className="back" href={room ? href({ name: "room", id: roomId! }) : "#/"} aria-label={room ? "Back to the room" : "Back to rooms"}>
          ←
        </a>
        <h2 id="search-title">Search</h2>
      </header>
      <div className="tabs" role="radiogroup" aria-label="Search for">
        <label>
          <input type="radio" name="search-mode" checked={mode === "messages"} onChange={() => setMode("messages")} /> Messages
        </label>
        <label>
          <input type="radio" name="search-mode" checked={mode === "people"} onChange={() => setMode("people")} /> People
        </label>
      </div>
      <form
        className="search-form"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
      >
        <label htmlFor="search-q" className="visually-hidden">
          {mode === "people" ? "Search people by name or address" : `Search messages in ${scope}`}
        </label>
        <input
          id="search-q"
          type="search"
          value={q}
          autoFocus
          maxLength={128}
          placeholder={mode === "people" ? "Name or address" : `Search ${scope}`}
          onChange={(e) => setQ(e.target.value)}
          aria-invalid={!!error}
          aria-describedby="search-hint"
        />
        <button type="submit" disabled={busy}>
          {busy ? "Searching…" : "Search"}
        </button>
      </form>
      <p id="search-hint" className="muted small">
        {mode === "people"
          ? "Wallets in public channels, people you share a room with, and linked profiles."
          : encrypted
            ? "This room is end-to-end encrypted: your device turns the words into keyed tokens, so the search service never sees them. Words match by their beginning."
            : room
              ? "Full text in this channel. Use quotes for a phrase and - to exclude a word."
              : "Full text in public channels. Use quotes for a phrase and - to exclude a word. To search a private group, open it and use its Search button."}
      </p>
      {error && (
        <p className="problem small" role="alert" data-problem="search">
          {error}
        </p>
      )}
      {hits && (
        <div aria-live="polite">
          <p className="muted small" data-testid="search-count">
            {hits.length === 0 ? `No messages match “${searched}”.` : `${hits.length}${next ? "+" : ""} message${hits.length === 1 ? "" : "s"} found`}
          </p>
          <ol className="search-results" aria-label="Messages found">
            {hits.map((h) => (
              <li key={h.id} data-hit={h.id}>
                <a href={href({ name: "room", id: h.room.toLowerCase() })} className="hit-link">
                  <span className="meta">
                    <span className="room-name">{h.room_name || "room"}</span> · <span title={h.sender}>{shortAddress(h.sender)}</span> ·{" "}
                    <time dateTime={new Date(h.timestamp_ms).toISOString()}>{formatTime(h.timestamp_ms)}</time>
                  </span>
                  <span className="hit-text">
                    {h.text !== undefined || h.highlight
                      ? (h.text !== undefined ? markedText(h.text, h.highlight) : highlightParts(h.highlight!)).map((p, i) =>
                          p.match ? <mark key={i}>{p.text}</mark> : <span key={i}>{p.text}</span>,
                        )
                      : (h.plain ?? <em className="muted">Encrypted message (open the room to read it)</em>)}
                  </span>
                </a>
              </li>
            ))}
          </ol>
          {next && (
            <button type="button" className="secondary small" disabled={busy} onClick={() => void run(next)}>
              More results
            </button>
          )}
        </div>
      )}
      {users && (
        <div aria-live="polite">
          <p className="muted small" data-testid="search-count">
            {users.length === 0 ? `Nobody matches “${searched}”.` : `${users.length} ${users.length === 1 ? "person" : "people"} found`}
          </p>
          <ul className="search-results" aria-label="People found">
            {users.map((u) => (
              <li key={u.address} data-user={u.address.toLowerCase()} className="user-hit">
                <span>
                  {u.name ? <strong>{u.name}</strong> : null}
                  {u.verified && (
                    <span className="verified" title="Name verified through a linked LinkedIn profile" data-testid="verified-badge">
                      {" "}
                      ✓ verified
                    </span>
                  )}{" "}
                  <code title={u.address}>{shortAddress(u.address)}</code>
                </span>
                {u.address.toLowerCase() !== store.selfAddress && (
                  <button type="button" className="small" onClick={() => void message(u.address)}>
                    Message {u.name ?? shortAddress(u.address)}
                  </button>
                )}
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
