// Top level: signed out (SignIn) or signed in (ChatApp); session expiry sends the user back.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { NodeClient } from "../api/client";
import { indexedDbKeyStore } from "../crypto/device";
import type { Problem } from "../lib/errors";
import { clearSession, restoreSession, saveSession, type Session } from "../state/session";
import type { Wallet } from "../wallet/wallet";
import { ChatApp } from "./ChatApp";
import { SignIn } from "./SignIn";

const EXPIRED: Problem = {
  kind: "expired",
  title: "Session expired",
  detail: "Your session has ended. Sign in again to continue.",
};

export function App() {
  const keyStore = useMemo(() => indexedDbKeyStore(), []);
  const [session, setSession] = useState<Session | undefined>();
  const [restoring, setRestoring] = useState(true);
  const [notice, setNotice] = useState<Problem | undefined>();
  const sessionRef = useRef<Session | undefined>(undefined);
  sessionRef.current = session;

  const expire = useCallback(() => {
    clearSession();
    setSession(undefined);
    setNotice(EXPIRED);
  }, []);

  const client = useMemo(
    () => new NodeClient({ token: () => sessionRef.current?.token, onSessionProblem: () => expire() }),
    [expire],
  );

  useEffect(() => {
    restoreSession(keyStore)
      .then((s) => s && setSession(s))
      .catch(() => undefined)
      .finally(() => setRestoring(false));
  }, [keyStore]);

  // The token ends at expires_at: leave before the node starts refusing requests.
  useEffect(() => {
    if (!session) return;
    const ms = session.expiresAt * 1000 - Date.now();
    const t = setTimeout(expire, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    return () => clearTimeout(t);
  }, [session, expire]);

  const [wallet, setWallet] = useState<Wallet>();
  // Another account in the wallet is another user: sign out.
  useEffect(() => {
    if (!wallet || !session) return;
    return wallet.watch({
      accounts: (a) => {
        if (a[0] && a[0].toLowerCase() !== session.address.toLowerCase()) {
          clearSession();
          setSession(undefined);
          setNotice({ kind: "wallet", title: "Account changed", detail: "Your wallet switched accounts. Sign in with the new account." });
        }
      },
    });
  }, [wallet, session]);

  if (restoring) return <p className="muted center">Loading…</p>;
  if (!session) {
    return (
      <SignIn
        key={notice?.title ?? "signin"}
        client={client}
        keyStore={keyStore}
        notice={notice}
        onSignedIn={(s, w) => {
          saveSession(s);
          setNotice(undefined);
          setWallet(w);
          setSession(s);
        }}
      />
    );
  }
  return (
    <ChatApp
      client={client}
      session={session}
      wallet={wallet}
      onExpired={expire}
      onSignOut={() => {
        clearSession();
        setNotice(undefined);
        setSession(undefined);
      }}
    />
  );
}
