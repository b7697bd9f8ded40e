// Signing in: nonce from the node, SIWE message delegating this device's keys, wallet signature,
// access token. The session (token and address) is kept in localStorage until it expires; the
// device keys stay in IndexedDB.

import type { NodeClient } from "../api/client";
import { loadOrCreateDeviceKeys, type DeviceKeys, type DeviceKeyStore } from "../crypto/device";
import { buildSignInMessage, type NonceReply } from "../protocol/siwe";
import type { Wallet } from "../wallet/wallet";

export interface Session {
  address: `0x${string}`;
  token: string;
  /** Token expiry, Unix seconds. */
  expiresAt: number;
  chainId: number;
  keys: DeviceKeys;
}

/** Signs in with a connected wallet on an accepted chain. */
export async function signIn(args: {
  client: NodeClient;
  wallet: Wallet;
  keyStore: DeviceKeyStore;
  address: `0x${string}`;
  chainId: number;
  nonce: NonceReply;
}): Promise<Session> {
  const keys = await loadOrCreateDeviceKeys(args.keyStore, args.address);
  const message = buildSignInMessage({
    nonce: args.nonce,
    address: args.address,
    chainId: args.chainId,
    signKey: keys.signPublic,
    boxKey: keys.boxPublic,
    now: new Date(),
  });
  const signature = await args.wallet.signMessage(args.address, message);
  const reply = await args.client.signIn(message, signature);
  return { address: args.address, token: reply.token, expiresAt: reply.expires_at, chainId: args.chainId, keys };
}

const STORAGE_KEY = "dchat.session.v1";

interface StoredSession {
  address: `0x${string}`;
  token: string;
  expiresAt: number;
  chainId: number;
}

export function saveSession(s: Session): void {
  const stored: StoredSession = { address: s.address, token: s.token, expiresAt: s.expiresAt, chainId: s.chainId };
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(stored));
  } catch {
    // Storage full or disabled: the session lasts as long as the page.
  }
}

export function clearSession(): void {
  try {
    localStorage.removeItem(STORAGE_KEY);
  } catch {
    // ignore
  }
}

/** The stored session, if it has at least a minute left and its device keys are here. */
export async function restoreSession(keyStore: DeviceKeyStore): Promise<Session | undefined> {
  let stored: StoredSession;
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    if (!raw) return undefined;
    stored = JSON.parse(raw) as StoredSession;
  } catch {
    return undefined;
  }
  if (!stored.token || stored.expiresAt * 1000 < Date.now() + 60_000) {
    clearSession();
    return undefined;
  }
  const keys = await keyStore.get(stored.address);
  if (!keys) return undefined;
  return { ...stored, keys };
}
