// Small social pieces mounted in the existing screens: the bell, presence dots, the mute toggle,
// the contact button of a member, the typing and "seen by" line of a room, and the requests inbox
// of the room list. The larger screens (contacts, notifications) load on first use.

import { lazy, Suspense, useEffect, useRef, useState, useSyncExternalStore } from "react";
import { getAddress } from "viem";
import type { PresenceEntry, Relation } from "../../api/social";
import { describeError, type Problem } from "../../lib/errors";
import type { SocialStore } from "../../state/social";
import { typingText } from "../../state/social-reducers";
import type { ChatStore } from "../../state/chat";
import { formatTime, shortAddress } from "../format";
import { ProblemBox } from "../ProblemBox";
import { href } from "../route";
import "./social.css";
import { useAction } from "../useAction";

const NotificationsPanel = lazy(() => import("./NotificationsPanel"));

/** EIP-55 form of an address kept lowercase. */
function checksummed(a: string): string {
  try {
    return getAddress(a);
  } catch {
    return a;
  }
}

/** Re-renders the component whenever the social store changes. */
export function useSocial(social: SocialStore): SocialStore {
  useSyncExternalStore(social.subscribe, social.getVersion);
  return social;
}

/** "online", "away", "offline · last seen 12:04", or "presence unknown". */
export function presenceText(p: PresenceEntry | undefined): string {
  if (!p) return "presence unknown";
  if (p.status !== "offline") return p.status;
  return p.last_seen_ms ? `offline · last seen ${formatTime(p.last_seen_ms)}` : "offline";
}

export function PresenceDot({ social, address }: { social: SocialStore; address: string }) {
  useSocial(social);
  const p = social.presence(address);
  const status = p?.status ?? "unknown";
  const text = presenceText(p);
  return (
    <span className={`presence presence-${status}`} data-testid="presence" data-status={status} title={text} role="img" aria-label={text}>
      <span aria-hidden>●</span>
    </span>
  );
}

/** The bell in the top bar: unread notifications, and the list on click. */
export function Bell({ social }: { social: SocialStore }) {
  useSocial(social);
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const n = social.notifications.unread;
  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        setOpen(false);
        button.current?.focus();
      }
    };
    const onClick = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener("keydown", onKey);
    document.addEventListener("mousedown", onClick);
    return () => {
      document.removeEventListener("keydown", onKey);
      document.removeEventListener("mousedown", onClick);
    };
  }, [open]);
  return (
    <div className="bell-wrap" ref={ref}>
      <button
        type="button"
        className="secondary small bell"
        ref={button}
        aria-expanded={open}
        aria-haspopup="dialog"
        aria-label={n > 0 ? `Notifications, ${n} unread` : "Notifications"}
        data-testid="bell"
        onClick={() => {
          setOpen((v) => !v);
          if (!open) void social.loadNotifications();
        }}
      >
        <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
          <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9" />
          <path d="M13.7 21a2 2 0 0 1-3.4 0" />
        </svg>
        {n > 0 && (
          <span className="badge" data-testid="bell-count">
            {n > 99 ? "99+" : n}
          </span>
        )}
      </button>
      {open && (
        <Suspense fallback={<div className="notifications-panel muted small">Loading…</div>}>
          <NotificationsPanel
            social={social}
            onClose={() => {
              setOpen(false);
              button.current?.focus();
            }}
          />
        </Suspense>
      )}
    </div>
  );
}

/** The contacts link of the top bar, with waiting requests counted. */
export function ContactsLink({ social }: { social: SocialStore }) {
  useSocial(social);
  const n = social.incomingCount;
  return (
    <a className="button secondary small" href={href({ name: "contacts" })} data-testid="contacts-link" aria-label={n > 0 ? `Contacts, ${n} request${n === 1 ? "" : "s"} waiting` : "Contacts"}>
      Contacts
      {n > 0 && (
        <span className="badge" data-testid="contacts-count">
          {n}
        </span>
      )}
    </a>
  );
}

/** Mute or unmute a room's notifications. */
export function MuteButton({ social, room }: { social: SocialStore; room: string }) {
  useSocial(social);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const muted = social.isMuted(room);
  return (
    <>
      <button
        type="button"
        className="secondary small"
        aria-pressed={muted}
        disabled={busy}
        data-testid="mute"
        title={muted ? "Notifications from this room are muted" : "Mute this room's notifications"}
        onClick={async () => {
          setBusy(true);
          setProblem(undefined);
          try {
            await social.setMuted(room, !muted);
          } catch (err) {
            setProblem(describeError(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        {muted ? "Unmute" : "Mute"}
      </button>
      {problem && <ProblemBox problem={problem} />}
    </>
  );
}

const RELATION_TEXT: Record<Relation, string> = {
  none: "",
  incoming: "asked to be your contact",
  outgoing: "request sent",
  contact: "contact",
  blocked: "blocked",
};

/** The contact actions for another wallet: add, accept, or a tag saying where things stand. */
export function ContactButton({ social, address }: { social: SocialStore; address: string }) {
  useSocial(social);
  const { busy, problem, act: run } = useAction();
  const rel = social.relation(address);
  const act = (action: "request" | "accept") =>
    run(async () => {
      await social.contact(action, address);
    });
  return (
    <span className="contact-button">
      {rel === "none" && (
        <button type="button" className="small secondary" disabled={busy} onClick={() => void act("request")} aria-label={`Add ${address} as a contact`}>
          Add contact
        </button>
      )}
      {rel === "incoming" && (
        <button type="button" className="small" disabled={busy} onClick={() => void act("accept")} aria-label={`Accept ${address} as a contact`}>
          Accept contact
        </button>
      )}
      {rel !== "none" && rel !== "incoming" && (
        <span className={`tag relation-${rel}`} data-testid="relation">
          {RELATION_TEXT[rel]}
        </span>
      )}
      {problem && <ProblemBox problem={problem} />}
    </span>
  );
}

/** Under a message's author when their name is clicked: presence, contact, direct message. */
export function AuthorCard({ social, chat, address }: { social: SocialStore; chat: ChatStore; address: string }) {
  useSocial(social);
  const [problem, setProblem] = useState<Problem>();
  return (
    <div className="author-card small" data-testid="author-card">
      <PresenceDot social={social} address={address} /> <code title={address}>{shortAddress(address)}</code>{" "}
      <span className="muted">{presenceText(social.presence(address))}</span> <ContactButton social={social} address={address} />
      <button
        type="button"
        className="small secondary"
        onClick={async () => {
          try {
            const room = await chat.startDirect(address);
            window.location.hash = href({ name: "room", id: room.id.toLowerCase() });
          } catch (err) {
            setProblem(describeError(err));
          }
        }}
      >
        Message
      </button>
      {problem && <ProblemBox problem={problem} />}
    </div>
  );
}

/** Under the messages: who is typing, and who has seen this wallet's latest message. */
export function RoomActivity({ social, chat, room, self }: { social: SocialStore; chat: ChatStore; room: string; self: string }) {
  useSocial(social);
  useEffect(() => {
    void social.loadReceipts(room);
  }, [social, room]);
  const typing = social.typingIn(room);
  const msgs = chat.view(room).messages;
  let mine: { lamport: number } | undefined;
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i]!;
    if ((m.kind === "text" || m.kind === "media") && m.status === "sent") {
      if (m.sender.toLowerCase() === self.toLowerCase()) mine = m;
      break;
    }
  }
  const seenBy = mine ? social.receipts(room).filter((r) => r.address.toLowerCase() !== self.toLowerCase() && r.lamport >= mine.lamport) : [];
  const direct = chat.room(room)?.kind === "direct";
  return (
    <div className="room-activity small muted">
      <span className="typing" role="status" aria-live="polite" data-testid="typing">
        {typingText(typing, (a) => shortAddress(checksummed(a)))}
      </span>
      {seenBy.length > 0 && (
        <span className="seen-by" data-testid="seen-by">
          {direct ? "Seen" : `Seen by ${seenBy.length > 3 ? `${seenBy.length} members` : seenBy.map((r) => shortAddress(r.address)).join(", ")}`}
        </span>
      )}
    </div>
  );
}

/** The requests inbox at the top of the room list: direct rooms strangers opened. */
export function RequestsList({ social, current }: { social: SocialStore; current?: string }) {
  useSocial(social);
  const [busy, setBusy] = useState<string>();
  const [problem, setProblem] = useState<Problem>();
  const pending = social.pendingRequests;
  if (pending.length === 0) return null;
  async function act(room: string, from: string, action: "accept" | "block") {
    setBusy(from);
    setProblem(undefined);
    try {
      if (action === "accept") await social.acceptRequest(room, from);
      else await social.contact("block", from);
    } catch (err) {
      setProblem(describeError(err));
    } finally {
      setBusy(undefined);
    }
  }
  return (
    <section className="requests" aria-labelledby="requests-title" data-testid="requests">
      <h2 className="section-title" id="requests-title">
        Requests ({pending.length})
      </h2>
      <p className="muted small">Direct messages from wallets that are not your contacts. Replying or accepting moves them to your rooms.</p>
      <ul className="room-list">
        {pending.map((r) => {
          const id = r.room.id.toLowerCase();
          const active = current === id;
          return (
            <li key={id} className="request" data-room-id={id}>
              <a href={href({ name: "room", id })} className={`room-link ${active ? "active" : ""}`} aria-current={active ? "page" : undefined}>
                <span className="room-kind" aria-hidden>
                  @
                </span>
                <span className="room-name" title={r.from}>
                  {shortAddress(r.from)}
                </span>
                <span className="visually-hidden">(message request)</span>
                {(social.roomUnread(id) ?? r.unread) > 0 && (
                  <span className="badge" aria-label={`${social.roomUnread(id) ?? r.unread} unread`}>
                    {social.roomUnread(id) ?? r.unread}
                  </span>
                )}
              </a>
              <span className="row request-actions">
                <button type="button" className="small" disabled={busy === r.from} onClick={() => void act(id, r.from, "accept")} aria-label={`Accept the conversation with ${r.from}`}>
                  Accept
                </button>
                <button
                  type="button"
                  className="small danger"
                  disabled={busy === r.from}
                  aria-label={`Block ${r.from}`}
                  onClick={() => {
                    if (window.confirm(`Block ${r.from}? You will not see their messages or requests.`)) void act(id, r.from, "block");
                  }}
                >
                  Block
                </button>
              </span>
            </li>
          );
        })}
      </ul>
      {problem && <ProblemBox problem={problem} />}
    </section>
  );
}
