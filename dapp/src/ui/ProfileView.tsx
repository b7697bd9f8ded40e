// The signed-in wallet's profile: link a LinkedIn account through the gateway (which attests
// the verified name), see the link, or unlink it.

import { useState } from "react";
import { describeError } from "../lib/errors";
import type { ChatStore } from "../state/chat";
import { useStore } from "./useStore";

/** What the gateway's redirect back to the dApp says (`?linkedin=linked` or `?linkedin_error=<code>`). */
export function linkOutcome(search: string): { ok: boolean; code?: string } | undefined {
  const q = new URLSearchParams(search);
  if (q.get("linkedin") === "linked") return { ok: true };
  const code = q.get("linkedin_error");
  return code ? { ok: false, code } : undefined;
}

const LINK_ERRORS: Record<string, string> = {
  provider_denied: "LinkedIn did not grant the link (you cancelled, or it refused).",
  browser_mismatch: "The link was finished in another browser than the one that started it. Start again here.",
  link_expired: "The link took too long. Start again.",
  link_not_found: "This link was already used or is unknown. Start again.",
  session_expired: "Your session ended during the link. Sign in and start again.",
};

export function ProfileView({ store }: { store: ChatStore }) {
  useStore(store);
  const [status, setStatus] = useState<{ text: string; kind: "busy" | "ok" | "error" } | undefined>(() => {
    const o = linkOutcome(window.location.search);
    if (!o) return undefined;
    return o.ok ? { text: "Your LinkedIn account is linked.", kind: "ok" } : { text: LINK_ERRORS[o.code!] ?? `The link failed (${o.code}).`, kind: "error" };
  });
  const self = store.selfAddress;
  const profile = store.profile(self);

  async function link() {
    if (!store.gateway) return;
    setStatus({ text: "Opening LinkedIn…", kind: "busy" });
    try {
      const r = await store.gateway.start();
      window.location.assign(r.authorization_url);
    } catch (err) {
      setStatus({ text: describeError(err).detail, kind: "error" });
    }
  }

  async function unlink() {
    if (!store.gateway) return;
    setStatus({ text: "Unlinking…", kind: "busy" });
    try {
      await store.gateway.unlink();
      store.refreshProfile(self);
      setStatus({ text: "Unlinked: your name is no longer attested.", kind: "ok" });
    } catch (err) {
      setStatus({ text: describeError(err).detail, kind: "error" });
    }
  }

  return (
    <section className="form-page" aria-labelledby="profile-title">
      <a className="back" href="#/" aria-label="Back to rooms">
        ←
      </a>
      <h2 id="profile-title">Your profile</h2>
      <p>
        <code>{store.selfAddress}</code>
      </p>
      {!store.gateway && <p className="muted">{store.infoLoaded ? "This node has no LinkedIn gateway configured." : "Loading…"}</p>}
      {store.gateway && profile === undefined && <p className="muted">Loading your LinkedIn link…</p>}
      {store.gateway && profile && (
        <div data-testid="linkedin-linked">
          <p>
            <strong>{profile.profile!.name}</strong>{" "}
            <span className="verified" data-testid="verified-badge" title="Name verified through LinkedIn, attested by the gateway">
              ✓ LinkedIn verified
            </span>
          </p>
          {profile.profile!.email_domain && <p className="muted small">Verified email domain: {profile.profile!.email_domain}</p>}
          <button type="button" className="secondary small" disabled={status?.kind === "busy"} onClick={() => void unlink()}>
            Unlink LinkedIn
          </button>
        </div>
      )}
      {store.gateway && profile === null && (
        <div>
          <p className="muted">Link your LinkedIn account to show a verified name next to your address. The gateway keeps your name, picture and verified email domain, never your email address.</p>
          <button type="button" disabled={status?.kind === "busy"} onClick={() => void link()}>
            Link LinkedIn
          </button>
        </div>
      )}
      {status && (
        <p className={`small ${status.kind === "error" ? "problem" : status.kind === "ok" ? "ok" : "muted"}`} role={status.kind === "error" ? "alert" : "status"} data-testid="linkedin-status">
          {status.text}
        </p>
      )}
    </section>
  );
}

/** A wallet's LinkedIn-verified name, when it has one. */
export function VerifiedName({ store, address }: { store: ChatStore; address: string }) {
  const p = store.profile(address);
  if (!p?.profile) return null;
  return (
    <span className="verified small" data-testid="verified-name" title={`LinkedIn verified: ${p.profile.name}`}>
      {" "}
      ✓ {p.profile.name}
    </span>
  );
}
