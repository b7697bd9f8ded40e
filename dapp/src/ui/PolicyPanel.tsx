// Who may join a group or channel: the owner and admins set the policy (open, invite only, paid
// through the Payments contract, or token gated), and anyone subscribes to a paid room through
// the wallet before joining it.

import { useEffect, useState } from "react";
import { getAddress, isAddress } from "viem";
import type { Room } from "../api/types";
import { formatEth, parseEth, TxRevertedError } from "../chain/util";
import type { RoomTerms } from "../chain/contracts";
import { describeError } from "../lib/errors";
import { fromHex, type Hex } from "../lib/bytes";
import { GateKind, Policy } from "../protocol/control";
import type { ChatStore } from "../state/chat";
import { shortAddress } from "./format";

const POLICY_LABEL: Record<string, string> = { open: "Open: anyone may join", invite_only: "Invite only", paid: "Paid subscription", token_gated: "Token holders" };
const DAY = 86_400;

function errorText(err: unknown): string {
  if (err instanceof TxRevertedError) return err.message;
  return describeError(err).detail;
}

/** The owner's and admins' control of a room's join policy (in the members panel). */
export function PolicyPanel({ store, room }: { store: ChatStore; room: Room }) {
  const [choice, setChoice] = useState(room.policy ?? "open");
  const [price, setPrice] = useState("0.01");
  const [days, setDays] = useState("30");
  const [token, setToken] = useState("");
  const [minBalance, setMinBalance] = useState("1");
  const [tokenKind, setTokenKind] = useState(String(GateKind.Erc20));
  const [status, setStatus] = useState<{ text: string; kind: "busy" | "ok" | "error" }>();
  const canPay = !!store.info?.contracts.length;
  const busy = status?.kind === "busy";

  useEffect(() => setChoice(room.policy ?? "open"), [room.policy]);

  async function apply() {
    try {
      if (choice === "open" || choice === "invite_only") {
        setStatus({ text: "Saving…", kind: "busy" });
        await store.setPolicy(room.id, choice === "open" ? Policy.Open : Policy.InviteOnly);
      } else if (choice === "paid") {
        const wei = parseEth(price);
        const d = Number(days);
        if (!Number.isInteger(d) || d < 1 || d > 3650) throw new Error("The period is a whole number of days, 1 to 3650.");
        setStatus({ text: "Confirm in your wallet: the room's price on the Payments contract…", kind: "busy" });
        const { chain, contracts } = await store.onchain.connect(store.info);
        const terms = await chain.roomTerms(contracts.payments, room.id as Hex);
        if (terms.owner === "0x0000000000000000000000000000000000000000") {
          await chain.registerRoom(contracts.payments, room.id as Hex);
        } else if (terms.owner.toLowerCase() !== store.selfAddress) {
          throw new Error(`This room id is registered on the Payments contract by ${shortAddress(terms.owner)}, not by you: the node would refuse its subscriptions.`);
        }
        await chain.setRoomPrice(contracts.payments, room.id as Hex, wei, BigInt(d * DAY));
        setStatus({ text: "Saving the policy…", kind: "busy" });
        await store.setPolicy(room.id, Policy.Paid, { kind: GateKind.Subscription, chainId: BigInt(contracts.chain_id), contract: fromHex(contracts.payments, 20), tokenId: new Uint8Array(), minBalance: new Uint8Array() });
      } else {
        if (!isAddress(token.trim(), { strict: false })) throw new Error("Enter the token contract's address (0x followed by 40 hex digits).");
        if (!/^\d+$/.test(minBalance.trim()) || BigInt(minBalance.trim()) === 0n) throw new Error("The minimum balance is a whole number above 0 (in the token's smallest unit).");
        const chainId = store.info?.contracts[0]?.chain_id ?? store.info?.chain_ids[0];
        if (!chainId) throw new Error("The node names no chain to check tokens on.");
        setStatus({ text: "Saving…", kind: "busy" });
        await store.setPolicy(room.id, Policy.TokenGated, {
          kind: Number(tokenKind),
          chainId: BigInt(chainId),
          contract: fromHex(getAddress(token.trim()), 20),
          tokenId: new Uint8Array(),
          minBalance: uint256(BigInt(minBalance.trim())),
        });
      }
      setStatus({ text: "Policy saved.", kind: "ok" });
    } catch (err) {
      setStatus({ text: errorText(err), kind: "error" });
    }
  }

  return (
    <form
      className="policy-form"
      data-testid="policy-panel"
      onSubmit={(e) => {
        e.preventDefault();
        void apply();
      }}
    >
      <h3 id="policy-title">Who may join</h3>
      <p className="muted small" data-testid="policy-current">
        Now: {POLICY_LABEL[room.policy ?? ""] ?? room.policy}
      </p>
      <label htmlFor="policy-choice">Policy</label>
      <select id="policy-choice" value={choice} onChange={(e) => setChoice(e.target.value)}>
        <option value="open">{POLICY_LABEL.open}</option>
        <option value="invite_only">{POLICY_LABEL.invite_only}</option>
        <option value="paid" disabled={!canPay}>
          {POLICY_LABEL.paid}
          {canPay ? "" : " (the node names no payment contract)"}
        </option>
        <option value="token_gated">{POLICY_LABEL.token_gated}</option>
      </select>
      {choice === "paid" && (
        <div className="policy-fields">
          <label>
            Price per period (ETH) <input inputMode="decimal" value={price} onChange={(e) => setPrice(e.target.value)} size={10} />
          </label>
          <label>
            Period (days) <input inputMode="numeric" value={days} onChange={(e) => setDays(e.target.value)} size={5} />
          </label>
        </div>
      )}
      {choice === "token_gated" && (
        <div className="policy-fields">
          <label>
            Token kind{" "}
            <select value={tokenKind} onChange={(e) => setTokenKind(e.target.value)}>
              <option value={GateKind.Erc20}>ERC-20</option>
              <option value={GateKind.Erc721}>ERC-721</option>
            </select>
          </label>
          <label>
            Token contract <input value={token} onChange={(e) => setToken(e.target.value)} placeholder="0x…" spellCheck={false} />
          </label>
          <label>
            Minimum balance <input inputMode="numeric" value={minBalance} onChange={(e) => setMinBalance(e.target.value)} size={8} />
          </label>
        </div>
      )}
      <button type="submit" className="small" disabled={busy}>
        Save policy
      </button>
      {status && (
        <p className={`small ${status.kind === "error" ? "problem" : status.kind === "ok" ? "ok" : "muted"}`} role={status.kind === "error" ? "alert" : "status"} data-testid="policy-status">
          {status.text}
        </p>
      )}
    </form>
  );
}

/** A paid room's terms, and subscribing through the wallet. `onSubscribed` then joins. */
export function SubscribePanel({
  store,
  roomId,
  onSubscribed,
  renew = false,
}: {
  store: ChatStore;
  roomId: string;
  onSubscribed(): void;
  /** A member whose subscription lapsed (rather than a wallet joining). */
  renew?: boolean;
}) {
  const [terms, setTerms] = useState<RoomTerms>();
  const [periods, setPeriods] = useState("1");
  const [status, setStatus] = useState<{ text: string; kind: "busy" | "ok" | "error" }>();

  useEffect(() => {
    let live = true;
    store.onchain
      .connect(store.info)
      .then(({ chain, contracts }) => chain.roomTerms(contracts.payments, roomId as Hex))
      .then(
        (t) => live && setTerms(t),
        (err) => live && setStatus({ text: errorText(err), kind: "error" }),
      );
    return () => {
      live = false;
    };
  }, [store, roomId]);

  async function subscribe() {
    if (!terms) return;
    const n = Number(periods);
    if (!Number.isInteger(n) || n < 1 || n > 120) {
      setStatus({ text: "Subscribe for 1 to 120 periods.", kind: "error" });
      return;
    }
    setStatus({ text: "Confirm the payment in your wallet…", kind: "busy" });
    try {
      const { chain, contracts } = await store.onchain.connect(store.info);
      const r = await chain.subscribe(contracts.payments, roomId as Hex, n, terms.pricePerPeriod * BigInt(n));
      setStatus({ text: `Subscribed (transaction ${r.hash}). ${renew ? "" : "Joining…"}`, kind: "ok" });
      onSubscribed();
    } catch (err) {
      setStatus({ text: errorText(err), kind: "error" });
    }
  }

  const forSale = terms && terms.pricePerPeriod > 0n && terms.token === "0x0000000000000000000000000000000000000000";
  return (
    <div className="subscribe" data-testid="subscribe-panel" role="region" aria-label="Subscribe to this room">
      <h3>{renew ? "Your subscription to this room has ended" : "This room is paid"}</h3>
      {!terms && !status && <p className="muted">Reading the room's price…</p>}
      {terms && !forSale && <p className="problem small">This room is not on sale in ETH right now.</p>}
      {terms && forSale && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void subscribe();
          }}
        >
          <p data-testid="subscribe-price">
            {formatEth(terms.pricePerPeriod)} ETH per {Number(terms.periodSeconds) % DAY === 0 ? `${Number(terms.periodSeconds) / DAY} days` : `${terms.periodSeconds} seconds`}, paid to{" "}
            {shortAddress(terms.owner)} through the Payments contract.
          </p>
          <label>
            Periods <input inputMode="numeric" value={periods} onChange={(e) => setPeriods(e.target.value)} size={4} />
          </label>{" "}
          <button type="submit" className="small" disabled={status?.kind === "busy"}>
            {renew ? "Renew" : "Subscribe and join"}
          </button>
        </form>
      )}
      {status && (
        <p className={`small ${status.kind === "error" ? "problem" : status.kind === "ok" ? "ok" : "muted"}`} role={status.kind === "error" ? "alert" : "status"} data-testid="subscribe-status">
          {status.text}
        </p>
      )}
    </div>
  );
}

/** 32 big-endian bytes of an unsigned integer. */
function uint256(n: bigint): Uint8Array {
  return fromHex(n.toString(16).padStart(64, "0"), 32);
}
