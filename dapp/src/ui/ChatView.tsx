// One room: live timeline, infinite scroll back through history, composer.

import { useEffect, useLayoutEffect, useRef, useState } from "react";
import type { ChatMessage, ChatStore, UploadState } from "../state/chat";
import { isPrivate, MAX_TEXT_BYTES } from "../state/chat";
import type { MediaRef } from "../protocol/media";
import { controlLine } from "./control-lines";
import { MembersPanel } from "./MembersPanel";
import type { Session } from "../state/session";
import { formatTime, shortAddress } from "./format";
import { href } from "./route";
import { useStore } from "./useStore";
import { AnchorBadge, TipButton } from "./OnChainParts";
import { VerifiedName } from "./ProfileView";
import { SubscribePanel } from "./PolicyPanel";

export function ChatView({ store, roomId, session }: { store: ChatStore; roomId: string; session: Session }) {
  useStore(store);
  const room = store.room(roomId);
  const view = store.view(roomId);
  const listRef = useRef<HTMLOListElement>(null);
  const stick = useRef(true);
  const anchor = useRef<{ firstId?: string; height: number } | undefined>(undefined);
  const [copied, setCopied] = useState(false);
  const [showMembers, setShowMembers] = useState(false);

  useEffect(() => {
    store.setOpenRoom(roomId);
    return () => store.setOpenRoom(undefined);
  }, [store, roomId]);

  useEffect(() => {
    if (room && !view.loadedNewest) void store.refreshNewest(roomId);
    // Only when the room first appears.
  }, [room?.id]);

  // Keep the view pinned to the bottom, or in place when older messages arrive on top.
  const firstId = view.messages[0]?.id;
  const count = view.messages.length;
  useLayoutEffect(() => {
    const el = listRef.current;
    if (!el) return;
    const a = anchor.current;
    if (a && a.firstId !== firstId) {
      el.scrollTop += el.scrollHeight - a.height;
      anchor.current = undefined;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [firstId, count]);

  function onScroll() {
    const el = listRef.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 120 && view.hasMoreBefore && !view.loadingOlder) {
      anchor.current = { firstId, height: el.scrollHeight };
      void store.loadOlder(roomId);
    }
  }

  // Anchored badges: ask the node about the newest messages (a few, one request at a time).
  useEffect(() => {
    store.onchain.checkProofs(view.messages.filter((m) => m.status === "sent" && (m.kind === "text" || m.kind === "media")).map((m) => m.id));
    const t = setInterval(
      () => store.onchain.checkProofs(store.view(roomId).messages.filter((m) => m.status === "sent" && (m.kind === "text" || m.kind === "media")).map((m) => m.id)),
      5_000,
    );
    return () => clearInterval(t);
  }, [store, roomId, count]);

  // Short histories do not scroll: load more until the list fills its box.
  useEffect(() => {
    const el = listRef.current;
    if (el && view.hasMoreBefore && !view.loadingOlder && el.scrollHeight <= el.clientHeight) {
      anchor.current = { firstId, height: el.scrollHeight };
      void store.loadOlder(roomId);
    }
  }, [view.hasMoreBefore, view.loadingOlder, firstId, store, roomId]);

  if (!room) {
    return (
      <section className="chat">
        <p className="muted">{store.roomsLoaded ? "You are not in this room." : "Loading…"}</p>
        <p>
          <a href={href({ name: "join", id: roomId })}>Join it as a channel</a> · <a href="#/">Back to rooms</a>
        </p>
      </section>
    );
  }

  async function copyId() {
    try {
      await navigator.clipboard.writeText(roomId);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      // Clipboard refused (no permission): the id stays visible to select by hand.
    }
  }

  return (
    <section className="chat" aria-labelledby="room-title">
      <header className="chat-header">
        <a className="back" href="#/" aria-label="Back to rooms">
          ←
        </a>
        <div className="chat-title">
          <h2 id="room-title">{store.displayName(room)}</h2>
          <span className="muted small">
            {room.kind === "channel" ? "Public channel" : room.kind === "direct" ? "Direct message · end-to-end encrypted" : "Private group · end-to-end encrypted"} ·{" "}
            <code className="room-id" data-testid="room-id" title={roomId}>
              {roomId}
            </code>
          </span>
        </div>
        <button type="button" className="secondary small" onClick={() => void copyId()}>
          {copied ? "Copied" : "Copy id"}
        </button>
        {store.indexer && (
          <a className="button secondary small" href={href({ name: "search", room: roomId })} aria-label={`Search in ${store.displayName(room)}`}>
            Search
          </a>
        )}
        <button type="button" className="secondary small" aria-expanded={showMembers} onClick={() => setShowMembers((v) => !v)}>
          Members
        </button>
      </header>
      {showMembers && <MembersPanel store={store} room={room} self={session.address} />}
      {view.gateLapsed && room.policy === "paid" && !!store.info?.contracts.length && (
        <div className="renew">
          <SubscribePanel store={store} roomId={roomId} renew onSubscribed={() => void store.renewed(roomId)} />
        </div>
      )}
      <ol className="messages" ref={listRef} onScroll={onScroll} role="log" aria-label={`Messages in ${room.name}`} aria-live="polite" tabIndex={0}>
        {view.loadingOlder && <li className="muted center">Loading older messages…</li>}
        {!view.hasMoreBefore && view.loadedNewest && <li className="muted center">Start of the room</li>}
        {view.loadError && (
          <li className="problem" role="alert">
            {view.loadError}{" "}
            <button type="button" className="small" onClick={() => void store.refreshNewest(roomId)}>
              Retry
            </button>
          </li>
        )}
        {view.messages.map((m) => (
          <MessageRow key={m.id} m={m} store={store} self={session.address} onRetry={view.encryptionRequired ? undefined : () => store.retry(roomId, m.id)} />
        ))}
      </ol>
      {view.sendError && (
        <p className="problem small" role="alert" data-testid="send-error">
          {view.sendError}
        </p>
      )}
      {view.encryptionRequired && !isPrivate(room) ? (
        <p className="e2e-notice" role="note" data-testid="e2e-required">
          The node asks for end-to-end encrypted messages in this room, which this room's kind does not allow.
        </p>
      ) : (
        <>
          {view.upload && <UploadBar upload={view.upload} onDismiss={() => store.dismissUpload(roomId)} />}
          <Composer
            onSend={(text) => store.send(roomId, text)}
            onFile={(f) => void store.sendMedia(roomId, f)}
            uploading={!!view.upload && view.upload.phase !== "failed"}
            roomName={store.displayName(room)}
            encrypted={isPrivate(room)}
          />
        </>
      )}
    </section>
  );
}

function MessageRow({ m, self, store, onRetry }: { m: ChatMessage; self: string; store: ChatStore; onRetry?: () => void }) {
  const mine = m.sender.toLowerCase() === self.toLowerCase();
  const who = mine ? "You" : shortAddress(m.sender);
  const line = controlLine(m, self);
  if (line !== undefined) {
    return (
      <li className="event" data-id={m.id} data-kind={m.kind}>
        {line} · <time>{formatTime(m.timestamp_ms)}</time>
      </li>
    );
  }
  const text = m.encrypted ? m.plain : m.text;
  let body: React.ReactNode;
  const content = m.kind === "text" || m.kind === "media";
  if (m.kind === "media" && m.media && (!m.encrypted || m.sealed === "open")) {
    body = <MediaBody media={m.media} store={store} />;
  } else if (m.kind === "media" && !m.encrypted) {
    body = <p className="text unverified-text">This file message is malformed.</p>;
  } else if (content && m.encrypted && m.sealed === "no_key") {
    body = (
      <p className="text muted sealed-no-key" data-sealed="no_key">
        Encrypted for a key this device does not hold.
      </p>
    );
  } else if (content && m.encrypted && m.sealed === "bad") {
    body = (
      <p className="text unverified-text" data-sealed="bad">
        This encrypted message does not open (tampered or malformed).
      </p>
    );
  } else if (content && m.encrypted && text === undefined) {
    body = <p className="text muted" data-sealed="opening">Decrypting…</p>;
  } else if (m.kind === "text" && text !== undefined && m.verified) body = <p className="text">{text}</p>;
  else if (m.kind === "text" && text !== undefined) body = <p className="text unverified-text">{text}</p>;
  else body = <p className="text muted">[{m.kind} message: not shown by this version]</p>;
  return (
    <li className={`msg ${mine ? "mine" : ""} ${m.status}`} data-id={m.id} data-status={m.status}>
      <div className="meta">
        <span className="sender" title={m.sender}>
          {who}
        </span>
        <VerifiedName store={store} address={m.sender} />{" "}
        <time dateTime={new Date(m.timestamp_ms).toISOString()}>{formatTime(m.timestamp_ms)}</time>
        {m.encrypted && m.sealed === "open" && (
          <span className="muted small" title="End-to-end encrypted: opened with this device's key" data-testid="e2e-badge">
            {" "}
            · encrypted
          </span>
        )}
        {m.status === "pending" && <span className="muted small"> · Sending…</span>}
        {!m.verified && (
          <span className="unverified" title="The signature or contents do not match the signed envelope">
            {" "}
            · not verified
          </span>
        )}
      </div>
      {body}
      <div className="msg-actions small">
        <AnchorBadge m={m} store={store} />
        {!mine && <TipButton m={m} store={store} />}
      </div>
      {m.status === "failed" && (
        <div className="failed" role="alert">
          <span>{m.error ?? "Not sent"}</span>{" "}
          {onRetry && (
            <button type="button" className="small" onClick={onRetry}>
              Retry
            </button>
          )}
        </div>
      )}
    </li>
  );
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A file in a message: an inline preview for images, a download link for anything else. */
function MediaBody({ media, store }: { media: MediaRef; store: ChatStore }) {
  const isImage = media.mime.startsWith("image/") && media.mime !== "image/svg+xml";
  const [wanted, setWanted] = useState(isImage);
  const state = wanted ? store.mediaUrl(media) : undefined;
  const label = `${media.name || "file"} (${formatBytes(media.size)})`;
  return (
    <div className="media" data-testid="media" data-cid={media.cid} data-mime={media.mime}>
      {isImage && state?.url && (
        <a href={state.url} download={media.name || "image"} title={`Download ${label}`}>
          <img
            src={state.url}
            alt={media.name || "image"}
            width={media.width || undefined}
            height={media.height || undefined}
            className="media-preview"
            data-testid="media-preview"
          />
        </a>
      )}
      {state?.loading && <p className="muted small">Loading {label}…</p>}
      {state?.error && (
        <p className="problem small" role="alert" data-testid="media-error">
          {state.error}
        </p>
      )}
      {!isImage && state?.url && (
        <a className="button secondary small" href={state.url} download={media.name || "file"} data-testid="media-download">
          Save {label}
        </a>
      )}
      {!isImage && !wanted && (
        <button type="button" className="secondary small" onClick={() => setWanted(true)} data-testid="media-open">
          Open {label}
        </button>
      )}
      {isImage && <span className="muted small media-name">{label}</span>}
    </div>
  );
}

function UploadBar({ upload, onDismiss }: { upload: UploadState; onDismiss(): void }) {
  const pct = upload.total > 0 ? Math.min(100, Math.round((upload.sent / upload.total) * 100)) : 0;
  if (upload.phase === "failed") {
    return (
      <div className="upload problem small" role="alert" data-testid="upload-error">
        <span>
          {upload.name}: {upload.error}
        </span>{" "}
        <button type="button" className="small secondary" onClick={onDismiss}>
          Dismiss
        </button>
      </div>
    );
  }
  const what = upload.phase === "encrypting" ? "Encrypting" : upload.phase === "sending" ? "Sending" : "Uploading";
  return (
    <div className="upload" role="status" data-testid="upload">
      <span className="small">
        {what} {upload.name}… {upload.phase === "sending" ? "" : `${pct}%`}
      </span>
      <progress max={100} value={upload.phase === "sending" ? 100 : pct} aria-label={`${what} ${upload.name}`} />
    </div>
  );
}

function Composer({
  onSend,
  onFile,
  uploading,
  roomName,
  encrypted,
}: {
  onSend(text: string): void;
  onFile(file: File): void;
  uploading: boolean;
  roomName: string;
  encrypted: boolean;
}) {
  const [text, setText] = useState("");
  const fileRef = useRef<HTMLInputElement>(null);
  const bytes = new TextEncoder().encode(text).length;
  const tooLong = bytes > MAX_TEXT_BYTES;

  function submit() {
    const t = text.trim();
    if (!t || tooLong) return;
    onSend(t);
    setText("");
  }

  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <label htmlFor="composer-text" className="visually-hidden">
        Message {roomName}
      </label>
      <textarea
        id="composer-text"
        rows={1}
        placeholder={`Message ${roomName}`}
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
            e.preventDefault();
            submit();
          }
        }}
        aria-invalid={tooLong}
        aria-describedby="composer-hint"
      />
      <input
        ref={fileRef}
        id="composer-file"
        type="file"
        className="visually-hidden"
        tabIndex={-1}
        aria-hidden
        onChange={(e) => {
          const f = e.target.files?.[0];
          if (f) onFile(f);
          e.target.value = "";
        }}
      />
      <button
        type="button"
        className="secondary attach"
        disabled={uploading}
        onClick={() => fileRef.current?.click()}
        aria-label={encrypted ? "Attach a file (encrypted before upload)" : "Attach a file"}
        title={encrypted ? "Attach a file (encrypted before upload)" : "Attach a file"}
      >
        <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
          <path d="M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6a1.8 1.8 0 0 1-2.6-2.6l7.9-7.9" />
        </svg>
      </button>
      <button type="submit" disabled={!text.trim() || tooLong}>
        Send
      </button>
      <span id="composer-hint" className="visually-hidden">
        Enter sends, Shift+Enter adds a line.
      </span>
      {tooLong && (
        <span className="problem small" role="alert">
          Too long to send.
        </span>
      )}
    </form>
  );
}
