// Wallet discovery: EIP-6963 (every injected wallet announces itself), with the legacy EIP-1193
// `window.ethereum` as a fallback for wallets that do not announce.

import type { EIP1193Provider } from "viem";

export interface WalletInfo {
  uuid: string;
  name: string;
  /** Data URI of the wallet's icon. */
  icon: string;
  /** Reverse-DNS id, e.g. `io.metamask`. */
  rdns: string;
}

export interface DiscoveredWallet {
  info: WalletInfo;
  provider: EIP1193Provider;
}

interface AnnounceEvent extends Event {
  detail: DiscoveredWallet;
}

declare global {
  interface Window {
    ethereum?: EIP1193Provider;
  }
  interface WindowEventMap {
    "eip6963:announceProvider": AnnounceEvent;
  }
}

/** How long to wait for announcements before offering `window.ethereum` alone. */
const FALLBACK_DELAY_MS = 250;

export const LEGACY_WALLET_ID = "window.ethereum";

/**
 * Calls `onChange` with the wallets found so far, whenever the list changes. Returns a function
 * that stops listening.
 */
export function discoverWallets(onChange: (wallets: DiscoveredWallet[]) => void): () => void {
  const announced = new Map<string, DiscoveredWallet>();
  let legacy: DiscoveredWallet | undefined;

  const emit = () => {
    const list = [...announced.values()];
    // Offer window.ethereum only when no announced wallet is that same provider.
    if (legacy && !list.some((w) => w.provider === legacy!.provider)) list.push(legacy);
    onChange(list);
  };

  const onAnnounce = (ev: AnnounceEvent) => {
    const d = ev.detail;
    if (!d?.info?.uuid || typeof d.provider?.request !== "function") return;
    announced.set(d.info.uuid, { info: { ...d.info }, provider: d.provider });
    emit();
  };
  window.addEventListener("eip6963:announceProvider", onAnnounce);
  window.dispatchEvent(new Event("eip6963:requestProvider"));

  const timer = setTimeout(() => {
    if (window.ethereum && typeof window.ethereum.request === "function") {
      legacy = {
        info: { uuid: LEGACY_WALLET_ID, name: "Browser wallet", icon: "", rdns: LEGACY_WALLET_ID },
        provider: window.ethereum,
      };
    }
    emit();
  }, FALLBACK_DELAY_MS);

  return () => {
    clearTimeout(timer);
    window.removeEventListener("eip6963:announceProvider", onAnnounce);
  };
}
