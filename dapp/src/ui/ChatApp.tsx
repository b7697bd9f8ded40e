// The signed-in app: room list beside the open room (one or the other on a phone).

import { lazy, Suspense, useEffect, useMemo } from "react";
import type { NodeClient } from "../api/client";
import { ChatStore } from "../state/chat";
import { SocialStore } from "../state/social";
import { Bell, ContactsLink } from "./social/parts";
import type { Session } from "../state/session";
import type { Wallet } from "../wallet/wallet";
import { ChatView } from "./ChatView";
import { CreateRoomForm } from "./CreateRoomForm";
import { DirectForm } from "./DirectForm";
import { shortAddress } from "./format";
import { JoinChannelForm } from "./JoinChannelForm";
import { RoomList } from "./RoomList";
import { SearchView } from "./SearchView";
import { linkOutcome, ProfileView } from "./ProfileView";
import { useRoute } from "./route";
import { useStore } from "./useStore";

const ContactsView = lazy(() => import("./social/ContactsView"));

const LIVE_TEXT = { connecting: "Connecting…", open: "Live", reconnecting: "Reconnecting…", closed: "Offline" } as const;

export function ChatApp(props: { client: NodeClient; session: Session; wallet?: Wallet; onSignOut(): void; onExpired(): void }) {
  const store = useMemo(
    () => new ChatStore(props.client, props.session, props.onExpired, props.wallet),
    // One store per session.
    [props.session],
  );
  const social = useMemo(() => new SocialStore(props.client, props.session, store), [store]);
  useEffect(() => {
    store.start();
    social.start();
    return () => {
      social.stop();
      store.stop();
    };
  }, [store, social]);
  useStore(store);
  const route = useRoute();
  // Back from the LinkedIn gateway (`?linkedin=…`): show the outcome on the profile screen.
  useEffect(() => {
    if (linkOutcome(window.location.search) && route.name === "home") window.location.hash = "#/profile";
  }, []);
  const showMain = route.name !== "home";

  return (
    <div className={`app ${showMain ? "show-main" : "show-list"}`}>
      <header className="topbar">
        <a className="brand" href="#/">
          dchat
        </a>
        <span className={`live live-${store.liveStatus}`} role="status" aria-live="polite" data-live={store.liveStatus}>
          {LIVE_TEXT[store.liveStatus]}
        </span>
        <a className="button secondary small" href="#/search">
          Search
        </a>
        <ContactsLink social={social} />
        <Bell social={social} />
        <a className="me" href="#/profile" title={props.session.address} aria-label={`Your profile (${props.session.address})`} data-testid="me">
          {shortAddress(props.session.address)}
        </a>
        <button type="button" className="secondary small" onClick={props.onSignOut}>
          Sign out
        </button>
      </header>
      <nav className="sidebar" aria-label="Rooms">
        <RoomList store={store} social={social} current={route.name === "room" ? route.id : undefined} />
      </nav>
      <main className="main">
        {route.name === "room" && <ChatView key={route.id} store={store} social={social} roomId={route.id} session={props.session} />}
        {route.name === "new-group" && <CreateRoomForm key="group" store={store} kind="group" self={props.session.address} />}
        {route.name === "new-channel" && <CreateRoomForm key="channel" store={store} kind="channel" self={props.session.address} />}
        {route.name === "new-direct" && <DirectForm store={store} self={props.session.address} />}
        {route.name === "join" && <JoinChannelForm store={store} initialId={route.id} />}
        {route.name === "profile" && <ProfileView store={store} />}
        {route.name === "contacts" && (
          <Suspense fallback={<p className="muted center">Loading…</p>}>
            <ContactsView social={social} chat={store} self={props.session.address} />
          </Suspense>
        )}
        {route.name === "search" && <SearchView key={route.room ?? "all"} store={store} room={route.room} />}
        {route.name === "home" && (
          <div className="empty">
            <p>Pick a room, or start a new group, channel or direct message.</p>
          </div>
        )}
      </main>
    </div>
  );
}
