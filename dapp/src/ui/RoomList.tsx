import type { ChatStore } from "../state/chat";
import type { SocialStore } from "../state/social";
import { href } from "./route";
import { PresenceDot, RequestsList } from "./social/parts";

export function RoomList({ store, social, current }: { store: ChatStore; social?: SocialStore; current?: string }) {
  // Direct rooms of strangers wait under Requests until answered.
  const rooms = store.roomsByActivity().filter((r) => !social?.isRequest(r.id));
  return (
    <div className="rooms">
      <div className="room-actions">
        <a className="button" href={href({ name: "new-group" })}>
          New group
        </a>
        <a className="button" href={href({ name: "new-channel" })}>
          New channel
        </a>
        <a className="button" href={href({ name: "new-direct" })}>
          New direct message
        </a>
        <a className="button secondary" href={href({ name: "join" })}>
          Join channel
        </a>
      </div>
      {social && <RequestsList social={social} current={current} />}
      <h2 className="section-title" id="rooms-title">
        Rooms
      </h2>
      {store.notice && (
        <p className="notice" role="status" data-testid="notice">
          {store.notice}{" "}
          <button type="button" className="small secondary" onClick={() => store.dismissNotice()}>
            Dismiss
          </button>
        </p>
      )}
      {store.roomsError && (
        <p className="problem problem-unreachable" role="alert" data-problem="rooms">
          {store.roomsError}
        </p>
      )}
      {!store.roomsLoaded && !store.roomsError && <p className="muted">Loading rooms…</p>}
      {store.roomsLoaded && rooms.length === 0 && <p className="muted">No rooms yet.</p>}
      <ul aria-labelledby="rooms-title" className="room-list">
        {rooms.map((r) => {
          const unread = store.unread(r.id);
          const active = current === r.id.toLowerCase();
          return (
            <li key={r.id}>
              <a
                href={href({ name: "room", id: r.id.toLowerCase() })}
                className={`room-link ${active ? "active" : ""}`}
                aria-current={active ? "page" : undefined}
                data-room-id={r.id.toLowerCase()}
              >
                <span className="room-kind" aria-hidden>
                  {r.kind === "channel" ? "#" : r.kind === "direct" ? "@" : "●"}
                </span>
                {social && r.kind === "direct" && store.directPeer(r.id) && <PresenceDot social={social} address={store.directPeer(r.id)!} />}
                <span className="room-name">{store.displayName(r)}</span>
                <span className="visually-hidden">{r.kind === "channel" ? "(channel)" : r.kind === "direct" ? "(direct message)" : "(group)"}</span>
                {social?.isMuted(r.id) && (
                  <span className="muted small" title="Notifications muted" aria-label="muted">
                    🔕
                  </span>
                )}
                {unread > 0 && (
                  <span className={`badge${social?.isMuted(r.id) ? " badge-muted" : ""}`} data-testid="unread" aria-label={`${unread} unread`}>
                    {unread > 99 ? "99+" : unread}
                  </span>
                )}
              </a>
            </li>
          );
        })}
      </ul>
    </div>
  );
}
