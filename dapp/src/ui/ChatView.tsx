// One room: live timeline, infinite scroll back through history, composer.

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
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
import type { SocialStore } from "../state/social";
import { bodyRefs, parseMentions } from "../protocol/social";
import { AuthorCard, ContactButton, MuteButton, PresenceDot, RoomActivity } from "./social/parts";
import { applyMention, mentionMatches, mentionQuery, splitMentions } from "./social/mentions";

export function ChatView({ store, social, roomId, session }: { store: ChatStore; social?: SocialStore; roomId: string; session: Session }) {
  useStore(store);
  const room = store.room(roomId);
  const view = store.view(roomId);
  const listRef = useRef<HTMLOListElement>(null);
  const stick = useRef(true);
  const anchor = useRef<{ firstId?: string; height: number } | undefined>(undefined);
  const [copied, setCopied] = useState(false);
  const [showMembers, setShowMembers] = useState(false);
  const [replyTo, setReplyTo] = useState<ChatMessage>();
  const byId = useMemo(() => new Map(view.messages.map((m) => [m.id.toLowerCase(), m])), [view.messages]);
  const memberAddresses = store.members(roomId)?.members.map((m) => m.address) ?? [];

  useEffect(() => {
    store.setOpenRoom(roomId);
    return () => store.setOpenRoom(undefined);
  }, [store, roomId]);

  useEffect(() => {
    if (room && !view.loadedNewest) void store.refreshNewest(roomId);
    // Members, for @mentions in the composer.
    if (room && !store.members(roomId)) void store.loadMembers(roomId).catch(() => undefined);
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
          <h2 id="room-title">
            {social && room.kind === "direct" && store.directPeer(roomId) && <PresenceDot social={social} address={store.directPeer(roomId)!} />}{" "}
            {store.displayName(room)}
          </h2>
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
        {social && room.kind === "direct" && store.directPeer(roomId) && <ContactButton social={social} address={store.directPeer(roomId)!} />}
        {social && <MuteButton social={social} room={roomId} />}
      </header>
      {showMembers && <MembersPanel store={store} room={room} self={session.address} social={social} />}
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
        {view.messages.filter((m) => !social || !(m.kind === "text" || m.kind === "media") || !social.isBlocked(m.sender)).map((m) => (
          <MessageRow
            key={m.id}
            m={m}
            store={store}
            self={session.address}
            onRetry={view.encryptionRequired ? undefined : () => store.retry(roomId, m.id)}
            onReply={() => setReplyTo(m)}
            byId={byId}
            social={social}
          />
        ))}
      </ol>
      {social && <RoomActivity social={social} chat={store} room={roomId} self={session.address} />}
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
            onSend={(text) => {
              const mentions = parseMentions(text).filter((a) => a !== session.address.toLowerCase());
              store.send(roomId, text, { mentions, replyTo: replyTo?.id });
              setReplyTo(undefined);
              social?.typingStopped(roomId);
            }}
            onTyping={(text) => social?.typingInput(roomId, text.trim() === "")}
            members={memberAddresses}
            self={session.address}
            replyTo={replyTo && { who: replyTo.sender.toLowerCase() === session.address.toLowerCase() ? "yourself" : shortAddress(replyTo.sender), text: messageSnippet(replyTo) }}
            onCancelReply={() => setReplyTo(undefined)}
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

/** A text with its `@0x…` mentions shown short and marked (the full address in the title). */
function withMentions(text: string, self: string): React.ReactNode {
  const parts = splitMentions(text);
  if (parts.length === 1 && typeof parts[0] === "string") return text;
  return parts.map((p, i) =>
    typeof p === "string" ? (
      p
    ) : (
      <span key={i} className={`mention${p.address.toLowerCase() === self.toLowerCase() ? " mention-me" : ""}`} title={p.address}>
        @{shortAddress(p.address)}
      </span>
    ),
  );
}

/** A short text of a message, for reply previews. */
function messageSnippet(m: ChatMessage): string {
  const t = (m.encrypted ? m.plain : m.text) ?? (m.media ? m.media.name : undefined) ?? `[${m.kind}]`;
  return t.length > 80 ? `${t.slice(0, 80)}…` : t;
}

function MessageRow({
  m,
  self,
  store,
  onRetry,
  onReply,
  byId,
  social,
}: {
  m: ChatMessage;
  self: string;
  store: ChatStore;
  onRetry?: () => void;
  onReply?: () => void;
  byId?: Map<string, ChatMessage>;
  social?: SocialStore;
}) {
  const mine = m.sender.toLowerCase() === self.toLowerCase();
  const [showAuthor, setShowAuthor] = useState(false);
  const refs = useMemo(() => bodyRefs(m.envelope), [m.envelope]);
  const mentionsMe = refs.mentions.includes(self.toLowerCase() as `0x${string}`);
  const replied = refs.replyTo ? byId?.get(refs.replyTo) : undefined;
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
  } else if (m.kind === "text" && text !== undefined && m.verified) body = <p className="text">{withMentions(text, self)}</p>;
  else if (m.kind === "text" && text !== undefined) body = <p className="text unverified-text">{text}</p>;
  else body = <p className="text muted">[{m.kind} message: not shown by this version]</p>;
  return (
    <li className={`msg ${mine ? "mine" : ""} ${m.status}${mentionsMe ? " mentions-me" : ""}`} data-id={m.id} data-status={m.status} data-mentions-me={mentionsMe || undefined}>
      <div className="meta">
        {social && !mine ? (
          <button
            type="button"
            className="sender linkish"
            title={m.sender}
            aria-expanded={showAuthor}
            aria-label={`${who}: contact and presence`}
            onClick={() => setShowAuthor((v) => !v)}
          >
            {who}
          </button>
        ) : (
          <span className="sender" title={m.sender}>
            {who}
          </span>
        )}
        <VerifiedName store={store} address={m.sender} />{" "}
        <time dateTime={new Date(m.timestamp_ms).toISOString()}>{formatTime(m.timestamp_ms)}</time>
        {onReply && content && m.status === "sent" && (
          <button type="button" className="linkish small reply-button" onClick={onReply} aria-label={`Reply to ${who}`} title="Reply">
            <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
              <path d="M9 14 4 9l5-5" />
              <path d="M4 9h10.5a5.5 5.5 0 0 1 0 11H11" />
            </svg>
          </button>
        )}
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
      {showAuthor && social && <AuthorCard social={social} chat={store} address={m.sender} />}
      {refs.replyTo && (
        <span className="reply-context" data-testid="reply-context">
          ↪ {replied ? `${replied.sender.toLowerCase() === self.toLowerCase() ? "You" : shortAddress(replied.sender)}: ${messageSnippet(replied)}` : "in reply to an earlier message"}
        </span>
      )}
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
  onTyping,
  members = [],
  self = "",
  replyTo,
  onCancelReply,
}: {
  onSend(text: string): void;
  onFile(file: File): void;
  uploading: boolean;
  roomName: string;
  encrypted: boolean;
  onTyping?(text: string): void;
  /** Room members, offered when typing "@". */
  members?: string[];
  self?: string;
  replyTo?: { who: string; text: string };
  onCancelReply?(): void;
}) {
  const [text, setText] = useState("");
  const [caret, setCaret] = useState(0);
  const [pick, setPick] = useState(0);
  const [mentionClosed, setMentionClosed] = useState(false);
  const fileRef = useRef<HTMLInputElement>(null);
  const areaRef = useRef<HTMLTextAreaElement>(null);
  const bytes = new TextEncoder().encode(text).length;
  const tooLong = bytes > MAX_TEXT_BYTES;
  const query = mentionClosed ? undefined : mentionQuery(text, caret);
  const matches = query ? mentionMatches(members, query.prefix, self) : [];
  const suggesting = matches.length > 0;

  useEffect(() => {
    if (replyTo) areaRef.current?.focus();
  }, [replyTo]);

  function submit() {
    const t = text.trim();
    if (!t || tooLong) return;
    onSend(t);
    setText("");
  }

  function choose(address: string) {
    if (!query) return;
    const next = applyMention(text, query.start, caret, address);
    setText(next.text);
    setCaret(next.caret);
    setPick(0);
    requestAnimationFrame(() => {
      const el = areaRef.current;
      if (el) {
        el.focus();
        el.setSelectionRange(next.caret, next.caret);
      }
    });
  }

  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      {replyTo && (
        <div className="replying" data-testid="replying">
          <span>
            Replying to {replyTo.who}: {replyTo.text}
          </span>
          <button type="button" className="small secondary" onClick={onCancelReply} aria-label="Cancel the reply">
            ✕
          </button>
        </div>
      )}
      <label htmlFor="composer-text" className="visually-hidden">
        Message {roomName}
      </label>
      <div className="composer-field">
        {suggesting && (
          <ul className="mention-list" role="listbox" id="mention-list" aria-label="Mention a member">
            {matches.map((a, i) => (
              <li
                key={a}
                id={`mention-${i}`}
                role="option"
                aria-selected={i === pick % matches.length}
                onMouseDown={(e) => {
                  e.preventDefault();
                  choose(a);
                }}
              >
                @{a}
              </li>
            ))}
          </ul>
        )}
        <textarea
          id="composer-text"
          ref={areaRef}
          rows={1}
          placeholder={`Message ${roomName}`}
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            setCaret(e.target.selectionStart ?? e.target.value.length);
            setMentionClosed(false);
            onTyping?.(e.target.value);
          }}
          onSelect={(e) => setCaret((e.target as HTMLTextAreaElement).selectionStart ?? 0)}
          onKeyDown={(e) => {
            if (suggesting && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
              e.preventDefault();
              setPick((p) => (p + (e.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length);
              return;
            }
            if (suggesting && (e.key === "Tab" || (e.key === "Enter" && !e.shiftKey))) {
              e.preventDefault();
              choose(matches[pick % matches.length]!);
              return;
            }
            if (suggesting && e.key === "Escape") {
              e.preventDefault();
              setMentionClosed(true);
              return;
            }
            if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
              e.preventDefault();
              submit();
            }
          }}
          aria-controls={suggesting ? "mention-list" : undefined}
          aria-activedescendant={suggesting ? `mention-${pick % matches.length}` : undefined}
          aria-autocomplete={suggesting ? "list" : undefined}
          aria-invalid={tooLong}
          aria-describedby="composer-hint"
        />
      </div>
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
        Enter sends, Shift+Enter adds a line. Type @ to mention a member.
      </span>
      {tooLong && (
        <span className="problem small" role="alert">
          Too long to send.
        </span>
      )}
    </form>
  );
}
