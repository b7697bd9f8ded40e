// Sign-in: pick a wallet, get onto a network the node accepts, sign the SIWE message.

import { useEffect, useRef, useState } from "react";
import type { NodeClient } from "../api/client";
import type { DeviceKeyStore } from "../crypto/device";
import { describeError, type Problem } from "../lib/errors";
import type { NonceReply } from "../protocol/siwe";
import { signIn, type Session } from "../state/session";
import { discoverWallets, type DiscoveredWallet } from "../wallet/discovery";
import { chainName, Wallet } from "../wallet/wallet";
import { ProblemBox } from "./ProblemBox";

type Phase =
  | { name: "idle" }
  | { name: "connecting"; wallet: string }
  | { name: "wrong-network"; wallet: Wallet; address: `0x${string}`; current: number; allowed: number[] }
  | { name: "switching"; wallet: Wallet; address: `0x${string}`; current: number; allowed: number[] }
  | { name: "signing" };

export function SignIn(props: {
  client: NodeClient;
  keyStore: DeviceKeyStore;
  notice?: Problem;
  onSignedIn(session: Session, wallet: Wallet): void;
}) {
  const [wallets, setWallets] = useState<DiscoveredWallet[] | undefined>();
  const [phase, setPhase] = useState<Phase>({ name: "idle" });
  const [problem, setProblem] = useState<Problem | undefined>(props.notice);
  const busy = phase.name === "connecting" || phase.name === "signing" || phase.name === "switching";
  const phaseRef = useRef(phase);
  phaseRef.current = phase;

  useEffect(() => discoverWallets(setWallets), []);

  async function finish(wallet: Wallet, address: `0x${string}`, chainId: number, nonce?: NonceReply) {
    setPhase({ name: "signing" });
    const n = nonce ?? (await props.client.nonce());
    const session = await signIn({ client: props.client, wallet, keyStore: props.keyStore, address, chainId, nonce: n });
    props.onSignedIn(session, wallet);
  }

  async function connect(w: DiscoveredWallet) {
    setProblem(undefined);
    setPhase({ name: "connecting", wallet: w.info.name });
    try {
      const wallet = new Wallet(w.provider);
      const address = await wallet.connect();
      const nonce = await props.client.nonce();
      const chainId = await wallet.chainId();
      if (!nonce.chain_ids.includes(chainId)) {
        setPhase({ name: "wrong-network", wallet, address, current: chainId, allowed: nonce.chain_ids });
        return;
      }
      await finish(wallet, address, chainId, nonce);
    } catch (err) {
      setProblem(describeError(err));
      setPhase({ name: "idle" });
    }
  }

  async function switchTo(id: number) {
    const p = phaseRef.current;
    if (p.name !== "wrong-network") return;
    setProblem(undefined);
    setPhase({ ...p, name: "switching" });
    try {
      await p.wallet.switchChain(id);
      const now = await p.wallet.chainId();
      if (!p.allowed.includes(now)) {
        setPhase({ ...p, name: "wrong-network", current: now });
        return;
      }
      await finish(p.wallet, p.address, now);
    } catch (err) {
      setProblem(describeError(err));
      setPhase({ ...p, name: "wrong-network" });
    }
  }

  // A network change made in the wallet itself also gets the user through.
  useEffect(() => {
    if (phase.name !== "wrong-network") return;
    const p = phase;
    return p.wallet.watch({
      chain: (id) => {
        if (phaseRef.current.name !== "wrong-network") return;
        if (p.allowed.includes(id)) {
          finish(p.wallet, p.address, id).catch((err) => {
            setProblem(describeError(err));
            setPhase({ name: "idle" });
          });
        } else setPhase({ ...p, current: id });
      },
    });
  }, [phase]);

  return (
    <main className="signin" aria-labelledby="signin-title">
      <div className="card">
        <h1 id="signin-title">dchat</h1>
        <p className="lead">Chat with your Ethereum wallet. Signing in costs nothing: your wallet signs a message, no transaction.</p>

        {problem && <ProblemBox problem={problem} />}

        {phase.name === "wrong-network" || phase.name === "switching" ? (
          <section className="wrong-network" role="alert" data-problem="wrong_network" aria-labelledby="wn-title">
            <h2 id="wn-title">Wrong network</h2>
            <p>
              Your wallet is on <strong>{chainName(phase.current)}</strong>. This node accepts sign-ins on{" "}
              {phase.allowed.map(chainName).join(", ")}.
            </p>
            <div className="row">
              {phase.allowed.map((id) => (
                <button key={id} type="button" disabled={busy} onClick={() => void switchTo(id)}>
                  Switch to {chainName(id)}
                </button>
              ))}
              <button type="button" className="secondary" disabled={busy} onClick={() => setPhase({ name: "idle" })}>
                Cancel
              </button>
            </div>
          </section>
        ) : (
          <section aria-labelledby="wallets-title">
            <h2 id="wallets-title">Connect a wallet</h2>
            {wallets === undefined ? (
              <p className="muted">Looking for wallets…</p>
            ) : wallets.length === 0 ? (
              <div className="problem problem-wallet" role="alert" data-problem="no_wallet">
                <strong>No wallet found</strong>
                <p>Install a browser wallet (an EIP-6963 or EIP-1193 extension) and reload this page.</p>
              </div>
            ) : (
              <ul className="wallets">
                {wallets.map((w) => (
                  <li key={w.info.uuid}>
                    <button type="button" className="wallet" disabled={busy} onClick={() => void connect(w)}>
                      {w.info.icon ? <img src={w.info.icon} alt="" width={24} height={24} /> : <span className="wallet-icon" aria-hidden>◆</span>}
                      <span>Sign in with {w.info.name}</span>
                    </button>
                  </li>
                ))}
              </ul>
            )}
          </section>
        )}

        <p className="status" role="status" aria-live="polite">
          {phase.name === "connecting" && `Connecting to ${phase.wallet}…`}
          {phase.name === "switching" && "Confirm the network switch in your wallet…"}
          {phase.name === "signing" && "Confirm the sign-in message in your wallet…"}
        </p>
      </div>
    </main>
  );
}
