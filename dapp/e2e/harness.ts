// Test harness for the browser tests: a real dchat-node serving dist/, real Chromium, and an
// injected EIP-1193 / EIP-6963 wallet whose keys live in the test process (a viem local account).

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";

export const DAPP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_DIR = resolve(DAPP_DIR, "..");
export const RESULTS_DIR = join(DAPP_DIR, "test-results");

/** Chromium: CHROMIUM_PATH, else Debian's. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** The node binary: DCHAT_NODE_BIN (relative to the repository), else the workspace's debug build. */
export function nodeBinary(): string {
  if (process.env.DCHAT_NODE_BIN) return resolve(REPO_DIR, process.env.DCHAT_NODE_BIN);
  const target = process.env.CARGO_TARGET_DIR ? resolve(REPO_DIR, process.env.CARGO_TARGET_DIR) : join(REPO_DIR, "target");
  return join(target, "debug", "dchat-node");
}

export interface RunningNode {
  /** The origin the browser opens: http://<SIWE domain>, so sign-ins name the node's domain. */
  url: string;
  /** Where the node listens (127.0.0.1). */
  listenUrl: string;
  domain: string;
  pid: number;
  stop(): Promise<void>;
  /** Everything the node wrote to stderr (its logs), for failure reports. */
  logs(): string;
}

/** Starts `dchat-node` on a free port with a fresh data directory, serving the built dApp. */
export async function startNode(opts: { config?: string } = {}): Promise<RunningNode> {
  const bin = nodeBinary();
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build it with cargo build -p dchat-node --bin dchat-node`);
  const dist = join(DAPP_DIR, "dist");
  if (!existsSync(join(dist, "index.html"))) throw new Error("dapp/dist is missing: run npm run build in dapp/");
  const dataDir = mkdtempSync(join(tmpdir(), "dchat-dapp-e2e-"));
  const args = ["--http", "127.0.0.1:0", "--data-dir", dataDir, "--no-p2p", "--dapp-dir", dist];
  if (opts.config) {
    const file = join(dataDir, "config.toml");
    writeFileSync(file, opts.config);
    args.push("--config", file);
  }
  const child: ChildProcess = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" } });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const exited = new Promise<void>((res) => child.once("exit", () => res()));

  const listening = await new Promise<{ listenUrl: string; domain: string }>((res, rej) => {
    let out = "";
    const timer = setTimeout(() => rej(new Error(`dchat-node did not start within 30 s\n${stderr}`)), 30_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /dchat-node listening on (\S+) \(SIWE domain (\S+)\)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res({ listenUrl: m[1]!, domain: m[2]! });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`dchat-node exited (${code}) before listening\n${stderr}`));
    });
  });

  let stopped = false;
  return {
    url: `http://${listening.domain}`,
    listenUrl: listening.listenUrl,
    domain: listening.domain,
    pid: child.pid!,
    logs: () => stderr,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, "SIGTERM");
        const killTimer = setTimeout(() => {
          if (child.exitCode === null) process.kill(child.pid!, "SIGKILL");
        }, 10_000);
        await exited;
        clearTimeout(killTimer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The launch flags for Chromium on these machines (headless, no sandbox, no background traffic). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}. Install it (Debian): TMPDIR=<dir outside /tmp> apt-get install -y --no-install-recommends chromium fonts-liberation, or set CHROMIUM_PATH.`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** Fixed test keys (anvil's first accounts: public, never for real funds). */
export const KEYS = {
  alice: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  bob: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  carol: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  dave: "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
} as const;

export interface TestWallet {
  account: PrivateKeyAccount;
  chainId: number;
  /** Refuse the next signature request with code 4001, as a user clicking "Reject" would. */
  rejectNextSignature: boolean;
  /** Requests the page made, in order. */
  calls: string[];
  /** Texts signed with personal_sign. */
  signed: string[];
}

/**
 * Injects a wallet into every page of `context`: `window.ethereum` (EIP-1193) and/or an EIP-6963
 * announcement. Its `request()` goes to the test process, where a viem local account answers.
 */
export async function installWallet(
  context: BrowserContext,
  opts: { privateKey: `0x${string}`; chainId?: number; name?: string; eip6963?: boolean; legacy?: boolean },
): Promise<TestWallet> {
  const wallet: TestWallet = {
    account: privateKeyToAccount(opts.privateKey),
    chainId: opts.chainId ?? 31337,
    rejectNextSignature: false,
    calls: [],
    signed: [],
  };
  const rpcError = (code: number, message: string) => ({ error: { code, message } });
  await context.exposeFunction("__dchatTestWallet", async (method: string, params: unknown[]) => {
    wallet.calls.push(method);
    switch (method) {
      case "eth_requestAccounts":
      case "eth_accounts":
        return { result: [wallet.account.address] };
      case "eth_chainId":
        return { result: `0x${wallet.chainId.toString(16)}` };
      case "wallet_switchEthereumChain": {
        const id = Number((params[0] as { chainId: string }).chainId);
        if (![1, 31337].includes(id)) return rpcError(4902, "Unrecognized chain ID");
        wallet.chainId = id;
        return { result: null, events: [["chainChanged", `0x${id.toString(16)}`]] };
      }
      case "personal_sign": {
        if (wallet.rejectNextSignature) {
          wallet.rejectNextSignature = false;
          return rpcError(4001, "User rejected the request.");
        }
        const [data, address] = params as [`0x${string}`, string];
        if (address.toLowerCase() !== wallet.account.address.toLowerCase()) return rpcError(4100, "Unknown account");
        wallet.signed.push(Buffer.from(data.slice(2), "hex").toString("utf8"));
        return { result: await wallet.account.signMessage({ message: { raw: data } }) };
      }
      default:
        return rpcError(4200, `Unsupported method ${method}`);
    }
  });
  await context.addInitScript(
    ({ name, eip6963, legacy }) => {
      type Listener = (...args: unknown[]) => void;
      const listeners = new Map<string, Set<Listener>>();
      const call = (window as unknown as { __dchatTestWallet(m: string, p: unknown[]): Promise<{ result?: unknown; error?: { code: number; message: string }; events?: [string, unknown][] }> }).__dchatTestWallet;
      const provider = {
        isDchatTestWallet: true,
        async request({ method, params }: { method: string; params?: unknown[] }) {
          const r = await call(method, params ?? []);
          if (r.error) throw Object.assign(new Error(r.error.message), { code: r.error.code });
          for (const [ev, arg] of r.events ?? []) setTimeout(() => listeners.get(ev)?.forEach((fn) => fn(arg)), 0);
          return r.result;
        },
        on(ev: string, fn: Listener) {
          if (!listeners.has(ev)) listeners.set(ev, new Set());
          listeners.get(ev)!.add(fn);
          return provider;
        },
        removeListener(ev: string, fn: Listener) {
          listeners.get(ev)?.delete(fn);
          return provider;
        },
      };
      if (legacy) (window as unknown as { ethereum: unknown }).ethereum = provider;
      if (eip6963) {
        const icon =
          "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24'%3E%3Ccircle cx='12' cy='12' r='10' fill='%23f59e0b'/%3E%3C/svg%3E";
        const detail = Object.freeze({ info: Object.freeze({ uuid: "7d8e3f5a-0c1b-4e2f-9a6d-3b5c7e9f1a2b", name, icon, rdns: "org.dchat.testwallet" }), provider });
        const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail }));
        window.addEventListener("eip6963:requestProvider", announce);
        announce();
      }
    },
    { name: opts.name ?? "Test Wallet", eip6963: opts.eip6963 ?? true, legacy: opts.legacy ?? false },
  );
  return wallet;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(RESULTS_DIR, { recursive: true });
  await page.screenshot({ path: join(RESULTS_DIR, `${name}.png`), timeout: 10_000 });
}
