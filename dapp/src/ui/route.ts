// Hash routes: the node serves one index.html, and hash routes need nothing more from it.

import { useEffect, useState } from "react";

export type Route =
  | { name: "home" }
  | { name: "room"; id: string }
  | { name: "new-group" }
  | { name: "new-channel" }
  | { name: "new-direct" }
  | { name: "join"; id?: string }
  | { name: "search"; room?: string }
  | { name: "profile" }
  | { name: "contacts" };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (parts[0] === "room" && parts[1] && /^0x[0-9a-fA-F]{64}$/.test(parts[1])) return { name: "room", id: parts[1].toLowerCase() };
  if (parts[0] === "new" && parts[1] === "group") return { name: "new-group" };
  if (parts[0] === "new" && parts[1] === "channel") return { name: "new-channel" };
  if (parts[0] === "new" && parts[1] === "direct") return { name: "new-direct" };
  if (parts[0] === "join") return { name: "join", id: parts[1] };
  if (parts[0] === "profile") return { name: "profile" };
  if (parts[0] === "contacts") return { name: "contacts" };
  if (parts[0] === "search") return parts[1] && /^0x[0-9a-fA-F]{64}$/.test(parts[1]) ? { name: "search", room: parts[1].toLowerCase() } : { name: "search" };
  return { name: "home" };
}

export function href(route: Route): string {
  switch (route.name) {
    case "home":
      return "#/";
    case "room":
      return `#/room/${route.id}`;
    case "new-group":
      return "#/new/group";
    case "new-channel":
      return "#/new/channel";
    case "new-direct":
      return "#/new/direct";
    case "join":
      return route.id ? `#/join/${route.id}` : "#/join";
    case "profile":
      return "#/profile";
    case "contacts":
      return "#/contacts";
    case "search":
      return route.room ? `#/search/${route.room}` : "#/search";
  }
}

export function navigate(route: Route): void {
  window.location.hash = href(route);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}
