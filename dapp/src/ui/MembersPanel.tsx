// Members and roles of a room: who is in it, and what the caller's role lets them change
// (owner: everything, and the only one who sets roles; admin: invite, remove members; member:
// leave). Direct rooms keep their two members.

import { useEffect, useState } from "react";
import { getAddress, isAddress } from "viem";
import type { Member, Room } from "../api/types";
import { describeError } from "../lib/errors";
import { Role } from "../protocol/control";
import type { ChatStore } from "../state/chat";
import { shortAddress } from "./format";
import { ProblemBox } from "./ProblemBox";
import { navigate } from "./route";
import { useStore } from "./useStore";
import { PolicyPanel } from "./PolicyPanel";
import { VerifiedName } from "./ProfileView";
import type { SocialStore } from "../state/social";
import { ContactButton } from "./social/parts";
import { useAction } from "./useAction";

const RANK: Record<string, number> = { member: 1, admin: 2, owner: 3 };

export function MembersPanel({ store, room, self, social }: { store: ChatStore; room: Room; self: string; social?: SocialStore }) {
  useStore(store);
  const { busy, problem, setProblem, act } = useAction();
  const [invitee, setInvitee] = useState("");
  const reply = store.members(room.id);
  const myRole = room.role ?? "member";
  const direct = room.kind === "direct";

  useEffect(() => {
    store.loadMembers(room.id).catch((err) => setProblem(describeError(err)));
  }, [store, room.id]);

  const inviteValid = isAddress(invitee.trim(), { strict: false });
  const canInvite = !direct && RANK[myRole]! >= 2;
  const canRemove = (m: Member) => !direct && m.role !== "owner" && (myRole === "owner" || (myRole === "admin" && m.role === "member"));
  const canSetRoles = !direct && myRole === "owner";

  return (
    <section className="members-panel" aria-labelledby="members-title" data-testid="members-panel">
      <h3 id="members-title">Members{reply ? ` (${reply.members.length})` : ""}</h3>
      {!reply && !problem && <p className="muted">Loading members…</p>}
      {reply && (
        <ul className="member-list">
          {reply.members.map((m) => {
            const me = m.address.toLowerCase() === self.toLowerCase();
            return (
              <li key={m.address} data-member={m.address.toLowerCase()}>
                <span className="sender" title={m.address}>
                  {me ? "You" : shortAddress(m.address)}
                </span>
                <VerifiedName store={store} address={m.address} />{" "}
                <span className={`tag role-${m.role}`} data-testid="role">
                  {m.role}
                </span>
                {m.box_keys.length === 0 && !direct && room.kind !== "channel" && (
                  <span className="muted small" title="This member has not signed in with a device yet; messages are encrypted for their devices once they do.">
                    {" "}
                    · no device yet
                  </span>
                )}
                {/* A direct room's other member has the contact button in the room header. */}
                {!me && social && !direct && <ContactButton social={social} address={m.address} />}
                {!me && (
                  <span className="member-actions">
                    {canSetRoles && m.role === "member" && (
                      <button type="button" className="small secondary" disabled={busy} onClick={() => void act(() => store.setRole(room.id, m.address, Role.Admin))}>
                        Make admin
                      </button>
                    )}
                    {canSetRoles && m.role === "admin" && (
                      <button type="button" className="small secondary" disabled={busy} onClick={() => void act(() => store.setRole(room.id, m.address, Role.Member))}>
                        Make member
                      </button>
                    )}
                    {canSetRoles && (
                      <button
                        type="button"
                        className="small secondary"
                        disabled={busy}
                        onClick={() => {
                          if (window.confirm(`Hand ownership of this room to ${m.address}? You become an admin.`)) {
                            void act(() => store.setRole(room.id, m.address, Role.Owner));
                          }
                        }}
                      >
                        Make owner
                      </button>
                    )}
                    {canRemove(m) && (
                      <button type="button" className="small danger" disabled={busy} onClick={() => void act(() => store.remove(room.id, m.address))}>
                        Remove {shortAddress(m.address)}
                      </button>
                    )}
                  </span>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {canInvite && (
        <form
          className="invite-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (!inviteValid) return;
            const a = getAddress(invitee.trim());
            void act(async () => {
              await store.invite(room.id, [a]);
              setInvitee("");
            });
          }}
        >
          <label htmlFor="invite-address">Invite by address</label>
          <input id="invite-address" value={invitee} spellCheck={false} autoComplete="off" placeholder="0x…" onChange={(e) => setInvitee(e.target.value)} aria-invalid={invitee.length > 0 && !inviteValid} />
          <button type="submit" className="small" disabled={!inviteValid || busy}>
            Invite
          </button>
        </form>
      )}
      {problem && <ProblemBox problem={problem} />}
      {!direct && RANK[myRole]! >= 2 && <PolicyPanel store={store} room={room} />}
      {!direct &&
        (myRole === "owner" ? (
          <p className="muted small">As the owner you cannot leave; hand ownership to another member first.</p>
        ) : (
          <button
            type="button"
            className="small danger"
            disabled={busy}
            onClick={() =>
              void act(async () => {
                await store.leave(room.id);
                navigate({ name: "home" });
              })
            }
          >
            Leave {room.kind === "channel" ? "channel" : "group"}
          </button>
        ))}
      {direct && <p className="muted small">A direct conversation keeps its two members.</p>}
    </section>
  );
}
