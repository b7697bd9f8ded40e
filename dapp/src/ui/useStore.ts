import { useSyncExternalStore } from "react";
import type { ChatStore } from "../state/chat";

/** Re-renders the component whenever the store changes. */
export function useStore(store: ChatStore): ChatStore {
  useSyncExternalStore(store.subscribe, store.getVersion);
  return store;
}
