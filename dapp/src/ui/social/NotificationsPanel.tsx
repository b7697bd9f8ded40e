// The notifications list under the bell: mentions, replies, invites, contact requests and
// acceptances, tips; any kind this version does not know is shown generically. Mark one or all
// read (a signed NotificationsRead).

import { useEffect, useRef } from "react";
import type { Notification } from "../../api/social";
import type { SocialStore } from "../../state/social";
import { formatTime, shortAddress } from "../format";
import { ProblemBox } from "../ProblemBox";
import { href } from "../route";
import { useSocial } from "./parts";
import { useAction } from "../useAction";

/** Wei as ETH, trimmed ("0.01"); undefined when not a whole number of wei. */
export function formatWei(v: unknown): string | undefined {
  if (typeof v !== "string" && typeof v !== "number") return undefined;
  let wei: bigint;
  try {
    wei = BigInt(v);
  } catch {
    return undefined;
  }
  const whole = wei / 10n ** 18n;
  const frac = (wei % 10n ** 18n).toString().padStart(18, "0").replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : `${whole}`;
}

/** The sentence of a notification, from its kind; unknown kinds say what the node named them. */
export function notificationText(n: Notification, roomName?: string): string {
  const who = shortAddress(n.actor);
  const inRoom = roomName ? ` in ${roomName}` : "";
  switch (n.kind) {
    case "mention":
      return `${who} mentioned you${inRoom}`;
    case "reply":
      return `${who} replied to your message${inRoom}`;
    case "invite":
      return `${who} added you to ${roomName ?? "a room"}`;
    case "contact_request":
      return `${who} asked to be your contact`;
    case "contact_accepted":
      return `${who} accepted your contact request`;
    case "tip": {
      // A tip's detail (newer nodes): `tip: { token, amount, … }`; ETH is the zero address.
      const tip = (typeof n.tip === "object" && n.tip ? n.tip : n) as { token?: unknown; amount?: unknown };
      const eth = tip.token === undefined || (typeof tip.token === "string" && /^0x0{40}$/.test(tip.token));
      const amount = eth ? formatWei(tip.amount) : typeof tip.amount === "string" ? tip.amount : undefined;
      if (!amount) return `${who} tipped you`;
      return eth ? `${who} tipped you ${amount} ETH` : `${who} tipped you ${amount} of token ${shortAddress(String(tip.token))}`;
    }
    default:
      return `${who}: ${n.kind.replace(/_/g, " ")}${inRoom}`;
  }
}

export default function NotificationsPanel({ social, onClose }: { social: SocialStore; onClose(): void }) {
  useSocial(social);
  const { busy, problem, act } = useAction();
  const ref = useRef<HTMLDivElement>(null);
  const { items, unread, loaded } = social.notifications;

  useEffect(() => {
    ref.current?.focus();
  }, []);

  /** Following a notification reads it. */
  function open(n: Notification) {
    if (!n.read) void social.markNotification(n.id).catch(() => undefined);
    onClose();
  }

  return (
    <div className="notifications-panel" role="dialog" aria-label="Notifications" tabIndex={-1} ref={ref} data-testid="notifications">
      <div className="notifications-head">
        <h2 className="section-title">Notifications{unread > 0 ? ` (${unread} unread)` : ""}</h2>
        <button type="button" className="small secondary" disabled={busy || unread === 0} onClick={() => void act(() => social.markAllNotifications())}>
          Mark all read
        </button>
        <button type="button" className="small secondary" aria-label="Close notifications" onClick={onClose}>
          ✕
        </button>
      </div>
      {!loaded && !social.notificationsError && <p className="muted small">Loading…</p>}
      {social.notificationsError && <p className="problem small">{social.notificationsError}</p>}
      {loaded && items.length === 0 && <p className="muted small">Nothing yet.</p>}
      <ul className="notification-list">
        {items.map((n) => (
          <li key={n.id} className={`notification ${n.read ? "read" : "unread"} kind-${n.kind}`} data-kind={n.kind} data-read={n.read}>
            <span className="notification-text">
              {!n.read && <span className="visually-hidden">Unread: </span>}
              {n.room ? (
                <a href={href({ name: "room", id: n.room.toLowerCase() })} onClick={() => open(n)}>
                  {notificationText(n, n.room ? social.roomName(n.room) : undefined)}
                </a>
              ) : n.kind.startsWith("contact") ? (
                <a href={href({ name: "contacts" })} onClick={() => open(n)}>
                  {notificationText(n, n.room ? social.roomName(n.room) : undefined)}
                </a>
              ) : (
                notificationText(n)
              )}
              <time className="muted small" dateTime={new Date(n.created_ms).toISOString()}>
                {" "}
                · {formatTime(n.created_ms)}
              </time>
            </span>
            {!n.read && (
              <button type="button" className="small secondary" disabled={busy} onClick={() => void act(() => social.markNotification(n.id))} aria-label={`Mark read: ${notificationText(n, n.room ? social.roomName(n.room) : undefined)}`}>
                Mark read
              </button>
            )}
          </li>
        ))}
      </ul>
      {social.notifications.next && (
        <button type="button" className="small secondary" disabled={busy} onClick={() => void act(() => social.loadOlderNotifications())}>
          Older notifications
        </button>
      )}
      {problem && <ProblemBox problem={problem} />}
    </div>
  );
}
