// Contacts: requests to answer, requests sent, contacts with their presence, blocked wallets, a
// request by address, and whether this wallet shows its own presence.

import { useState } from "react";
import { getAddress, isAddress } from "viem";
import type { ContactAction } from "../../protocol/social";
import { describeError } from "../../lib/errors";
import type { ChatStore } from "../../state/chat";
import type { SocialStore } from "../../state/social";
import { formatTime, shortAddress } from "../format";
import { ProblemBox } from "../ProblemBox";
import { navigate } from "../route";
import { PresenceDot, presenceText, useSocial } from "./parts";
import { useAction } from "../useAction";

const CONFIRM: Partial<Record<ContactAction, (a: string) => string>> = {
  block: (a) => `Block ${a}? Their messages, requests and notifications will no longer reach you, and they cannot open a direct conversation with you.`,
  remove: (a) => `Remove ${a} from your contacts?`,
  unblock: (a) => `Unblock ${a}? Their messages, requests and notifications reach you again.`,
};

function Row({ address, children, since }: { address: string; children: React.ReactNode; since?: number }) {
  return (
    <li data-address={address.toLowerCase()}>
      <span className="sender" title={address}>
        {shortAddress(address)}
      </span>
      {since !== undefined && <span className="muted small"> · since {formatTime(since)}</span>}
      <span className="member-actions">{children}</span>
    </li>
  );
}

export default function ContactsView({ social, chat, self }: { social: SocialStore; chat: ChatStore; self: string }) {
  useSocial(social);
  const [peer, setPeer] = useState("");
  const { busy, problem, setProblem, act: run } = useAction();
  const [status, setStatus] = useState<string>();
  /** The presence setting being saved (shown at once). */
  const [hiding, setHiding] = useState<boolean>();
  const trimmed = peer.trim();
  const valid = isAddress(trimmed, { strict: false });
  const own = valid && trimmed.toLowerCase() === self.toLowerCase();
  const c = social.contacts;

  async function act(action: ContactAction, address: string, done?: string) {
    const confirm = CONFIRM[action];
    if (confirm && !window.confirm(confirm(address))) return;
    setStatus(undefined);
    await run(async () => {
      await social.contact(action, address);
      if (done) setStatus(done);
    });
  }

  async function message(address: string) {
    setProblem(undefined);
    try {
      const room = await chat.startDirect(address);
      navigate({ name: "room", id: room.id.toLowerCase() });
    } catch (err) {
      setProblem(describeError(err));
    }
  }

  return (
    <section className="form-page contacts-page" aria-labelledby="contacts-title" data-testid="contacts-page">
      <a className="back" href="#/" aria-label="Back to rooms">
        ←
      </a>
      <h2 id="contacts-title">Contacts</h2>
      <form
        className="contact-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!valid || own || busy) return;
          const a = getAddress(trimmed);
          void act("request", a, `Contact request sent to ${shortAddress(a)}.`).then(() => setPeer(""));
        }}
      >
        <label htmlFor="contact-address">Add a contact by address</label>
        <input
          id="contact-address"
          value={peer}
          spellCheck={false}
          autoComplete="off"
          placeholder="0x…"
          onChange={(e) => setPeer(e.target.value)}
          aria-invalid={peer.length > 0 && (!valid || own)}
          aria-describedby="contact-hint"
        />
        <div className="row">
          <button type="submit" className="small" disabled={!valid || own || busy}>
            Send request
          </button>
          <span id="contact-hint" className="muted small">
            {own ? "That is your own address." : peer.length > 0 && !valid ? "Not an address (0x and 40 hex digits)." : "They see your request and can accept it."}
          </span>
        </div>
      </form>
      {status && (
        <p className="notice small" role="status">
          {status}
        </p>
      )}
      {problem && <ProblemBox problem={problem} />}
      {social.contactsError && <p className="problem small">{social.contactsError}</p>}
      {!c && !social.contactsError && <p className="muted">Loading contacts…</p>}
      {c && (
        <>
          <h3 className="section-title" id="incoming-title">
            Requests for you ({c.incoming.length})
          </h3>
          {c.incoming.length === 0 ? (
            <p className="muted small">None.</p>
          ) : (
            <ul className="member-list" aria-labelledby="incoming-title" data-testid="incoming">
              {c.incoming.map((x) => (
                <Row key={x.address} address={x.address} since={x.since_ms}>
                  <button type="button" className="small" disabled={busy} onClick={() => void act("accept", x.address)} aria-label={`Accept ${x.address}`}>
                    Accept
                  </button>
                  <button type="button" className="small secondary" disabled={busy} onClick={() => void act("decline", x.address)} aria-label={`Decline ${x.address}`}>
                    Decline
                  </button>
                  <button type="button" className="small danger" disabled={busy} onClick={() => void act("block", x.address)} aria-label={`Block ${x.address}`}>
                    Block
                  </button>
                </Row>
              ))}
            </ul>
          )}
          <h3 className="section-title" id="contacts-list-title">
            Contacts ({c.contacts.length})
          </h3>
          {c.contacts.length === 0 ? (
            <p className="muted small">No contacts yet.</p>
          ) : (
            <ul className="member-list" aria-labelledby="contacts-list-title" data-testid="contacts">
              {c.contacts.map((x) => (
                <Row key={x.address} address={x.address}>
                  <PresenceDot social={social} address={x.address} />
                  <span className="muted small">{presenceText(social.presence(x.address))}</span>
                  <button type="button" className="small" onClick={() => void message(x.address)} aria-label={`Message ${x.address}`}>
                    Message
                  </button>
                  <button type="button" className="small secondary" disabled={busy} onClick={() => void act("remove", x.address)} aria-label={`Remove ${x.address}`}>
                    Remove
                  </button>
                  <button type="button" className="small danger" disabled={busy} onClick={() => void act("block", x.address)} aria-label={`Block ${x.address}`}>
                    Block
                  </button>
                </Row>
              ))}
            </ul>
          )}
          {c.outgoing.length > 0 && (
            <>
              <h3 className="section-title" id="outgoing-title">
                Requests you sent ({c.outgoing.length})
              </h3>
              <ul className="member-list" aria-labelledby="outgoing-title" data-testid="outgoing">
                {c.outgoing.map((x) => (
                  <Row key={x.address} address={x.address} since={x.since_ms}>
                    <button type="button" className="small secondary" disabled={busy} onClick={() => void act("decline", x.address)} aria-label={`Withdraw the request to ${x.address}`}>
                      Withdraw
                    </button>
                  </Row>
                ))}
              </ul>
            </>
          )}
          <h3 className="section-title" id="blocked-title">
            Blocked ({c.blocked.length})
          </h3>
          {c.blocked.length === 0 ? (
            <p className="muted small">Nobody.</p>
          ) : (
            <ul className="member-list" aria-labelledby="blocked-title" data-testid="blocked">
              {c.blocked.map((a) => (
                <Row key={a} address={a}>
                  <button type="button" className="small secondary" disabled={busy} onClick={() => void act("unblock", a)} aria-label={`Unblock ${a}`}>
                    Unblock
                  </button>
                </Row>
              ))}
            </ul>
          )}
        </>
      )}
      <h3 className="section-title">Presence</h3>
      <label className="checkbox">
        <input
          type="checkbox"
          checked={hiding ?? social.hidePresence}
          disabled={hiding !== undefined}
          onChange={(e) => {
            const hide = e.target.checked;
            setHiding(hide);
            setProblem(undefined);
            social
              .setHidePresence(hide)
              .catch((err) => setProblem(describeError(err)))
              .finally(() => setHiding(undefined));
          }}
        />{" "}
        Hide my presence (others see me offline, with no last-seen time)
      </label>
    </section>
  );
}
