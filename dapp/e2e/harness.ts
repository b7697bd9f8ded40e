// Test harness for the browser tests: a real dchat-node serving dist/, real Chromium, and an
// injected EIP-1193 / EIP-6963 wallet whose keys live in the test process (a viem local account).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { createWalletClient, http, type Hex as ViemHex } from "viem";

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

/** The indexer binary: DCHAT_INDEXER_BIN (relative to the repository), else the workspace's debug build. */
export function indexerBinary(): string {
  if (process.env.DCHAT_INDEXER_BIN) return resolve(REPO_DIR, process.env.DCHAT_INDEXER_BIN);
  const target = process.env.CARGO_TARGET_DIR ? resolve(REPO_DIR, process.env.CARGO_TARGET_DIR) : join(REPO_DIR, "target");
  return join(target, "debug", "dchat-indexer");
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

/** PostgreSQL for the indexer: DCHAT_TEST_PG_URL, default the local server (trust auth, user postgres). */
export const PG_URL = process.env.DCHAT_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

function psql(sql: string, timeout = 20_000): void {
  const r = spawnSync("psql", [PG_URL, "-v", "ON_ERROR_STOP=1", "-qc", sql], { encoding: "utf8", timeout });
  if (r.error) throw new Error(`psql is missing (${r.error.message}): install PostgreSQL's client (apt-get install -y postgresql-client)`);
  if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr.trim()} — is PostgreSQL running on ${PG_URL}? (scripts/setup installs and starts it)`);
}

export interface TestDatabase {
  url: string;
  drop(): void;
}

/** Creates a fresh database for this run; `drop()` removes it. */
export function createDatabase(): TestDatabase {
  const name = `dchat_dapp_e2e_${process.pid}_${randomBytes(4).toString("hex")}`;
  psql(`CREATE DATABASE ${name}`);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    drop() {
      if (dropped) return;
      dropped = true;
      // Cleanup only: a server slow to drop (busy checkpointing) must not fail the tests that
      // passed; scripts/dapp-test removes what is left on its next run.
      try {
        psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`, 120_000);
      } catch (e) {
        console.warn(`could not drop ${name}: ${(e as Error).message}`);
      }
    },
  };
}

/** A random indexer key and the `[indexer]` table of the node's config that accepts it. */
export function indexerKey(): { key: string; nodeConfig: string } {
  const key = randomBytes(32).toString("base64");
  const hash = createHash("sha256").update(key).digest("hex");
  return { key, nodeConfig: `[indexer]\nkey_hashes = ["${hash}"]\n` };
}

export interface RunningService {
  url: string;
  pid: number;
  stop(): Promise<void>;
  logs(): string;
}

/** Spawns a service and waits for `ready` to match its stdout. */
async function spawnService(name: string, bin: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp, cleanup?: () => void): Promise<RunningService & { match: RegExpExecArray }> {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build it with cargo build -p ${name} --bin ${name}`);
  const child: ChildProcess = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn", ...env } });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const exited = new Promise<void>((res) => child.once("exit", () => res()));
  const match = await new Promise<RegExpExecArray>((res, rej) => {
    let out = "";
    const timer = setTimeout(() => rej(new Error(`${name} did not start within 30 s\n${stderr}`)), 30_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        res(m);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`${name} exited (${code}) before it was ready\n${stderr}`));
    });
  });
  let stopped = false;
  return {
    url: match[1] ?? "",
    match,
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
      cleanup?.();
    },
  };
}

/**
 * Starts `dchat-indexer` on `port` following `nodeUrl` into `databaseUrl`, letting the dApp's
 * origin call it (CORS).
 */
export async function startIndexer(opts: { nodeUrl: string; databaseUrl: string; key: string; port: number; corsOrigin: string; gatewayUrl?: string }): Promise<RunningService> {
  const dir = mkdtempSync(join(tmpdir(), "dchat-dapp-indexer-"));
  const config = join(dir, "indexer.toml");
  const gateway = opts.gatewayUrl ? `[gateway]\nurl = "${opts.gatewayUrl}"\npoll_secs = 1\n` : "";
  writeFileSync(config, `cors_origins = ["${opts.corsOrigin}"]\n[follow]\npoll_ms = 100\n${gateway}`);
  return spawnService(
    "dchat-indexer",
    indexerBinary(),
    ["--config", config, "--http", `127.0.0.1:${opts.port}`, "--database-url", opts.databaseUrl, "--node-url", opts.nodeUrl],
    { DCHAT_INDEXER_KEY: opts.key },
    /dchat-indexer listening on (\S+)/,
    () => rmSync(dir, { recursive: true, force: true }),
  );
}

/** The gateway binary: DCHAT_GATEWAY_BIN, else the workspace's debug build. */
export function gatewayBinary(): string {
  if (process.env.DCHAT_GATEWAY_BIN) return resolve(REPO_DIR, process.env.DCHAT_GATEWAY_BIN);
  const target = process.env.CARGO_TARGET_DIR ? resolve(REPO_DIR, process.env.CARGO_TARGET_DIR) : join(REPO_DIR, "target");
  return join(target, "debug", "dchat-gateway");
}

/**
 * The OpenID Connect provider configured like LinkedIn (gateway/oidc/provider.mjs), which signs
 * in its test account `alice` ("Alice Example") without any page.
 */
export async function startOidcProvider(redirectUri: string): Promise<RunningService & { issuer: string }> {
  const dir = join(REPO_DIR, "gateway", "oidc");
  if (!existsSync(join(dir, "node_modules", "oidc-provider"))) throw new Error("gateway/oidc/node_modules is missing: run scripts/setup (npm ci in gateway/oidc)");
  const s = await spawnService(
    "provider.mjs",
    process.execPath,
    [join(dir, "provider.mjs"), "--client-id", "dchat-dapp-e2e", "--client-secret", "e2e-secret", "--redirect-uri", redirectUri, "--port", "0"],
    {},
    /listening on (\S+)/,
  );
  return { ...s, issuer: `${s.url}/oauth` };
}

/**
 * Starts `dchat-gateway` on `port`, public at `http://localhost:<port>` (the same site as the
 * dApp at `http://localhost:<node port>`, so the link's browser-binding cookie is first-party).
 */
export async function startGateway(opts: { port: number; nodeUrl: string; databaseUrl: string; issuer: string; dappOrigin: string }): Promise<RunningService> {
  const dir = mkdtempSync(join(tmpdir(), "dchat-dapp-gateway-"));
  const config = join(dir, "gateway.toml");
  writeFileSync(config, `cors_origins = ["${opts.dappOrigin}"]\n[link]\nreturn_url = "${opts.dappOrigin}/"\n`);
  return spawnService(
    "dchat-gateway",
    gatewayBinary(),
    [
      "--config",
      config,
      "--http",
      `127.0.0.1:${opts.port}`,
      "--public-url",
      `http://localhost:${opts.port}`,
      "--database-url",
      opts.databaseUrl,
      "--node-url",
      opts.nodeUrl,
      "--linkedin-issuer",
      opts.issuer,
      "--linkedin-client-id",
      "dchat-dapp-e2e",
    ],
    { DCHAT_GATEWAY_KEY: "0x" + randomBytes(32).toString("hex"), DCHAT_LINKEDIN_CLIENT_SECRET: "e2e-secret" },
    /dchat-gateway listening on (\S+)/,
    () => rmSync(dir, { recursive: true, force: true }),
  );
}

/** anvil from the repository's npm packages (TOOLCHAIN.md), or ANVIL_BIN. */
export function anvilBinary(): string {
  return process.env.ANVIL_BIN ? resolve(REPO_DIR, process.env.ANVIL_BIN) : join(REPO_DIR, "node_modules", ".bin", "anvil");
}

/** Starts anvil (chain id 31337) on a free port of 127.0.0.1. */
export async function startAnvil(): Promise<RunningService> {
  const bin = anvilBinary();
  if (!existsSync(bin)) throw new Error(`${bin} is missing: npm ci at the repository root installs Foundry (scripts/setup)`);
  return spawnService("anvil", bin, ["--host", "127.0.0.1", "--port", "0", "--chain-id", "31337"], {}, /Listening on (\S+)/).then((s) => ({
    ...s,
    url: `http://${s.url}`,
  }));
}

/** anvil's development account #5 (public test key): deploys the contracts and anchors batches. */
export const DEPLOYER_KEY = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba" as const;

/**
 * Deploys NodeRegistry, MessageAnchor and Payments with `dchat-deploy` (forge's artifacts in
 * out/, built by scripts/dapp-test) and returns the deployments file and its entry for 31337.
 */
export function deployContracts(rpcUrl: string, dir: string): { file: string; payments: `0x${string}`; messageAnchor: `0x${string}` } {
  const target = process.env.CARGO_TARGET_DIR ? resolve(REPO_DIR, process.env.CARGO_TARGET_DIR) : join(REPO_DIR, "target");
  const bin = process.env.DCHAT_DEPLOY_BIN ? resolve(REPO_DIR, process.env.DCHAT_DEPLOY_BIN) : join(target, "debug", "dchat-deploy");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build it with cargo build -p dchat-node --bin dchat-deploy`);
  if (!existsSync(join(REPO_DIR, "out", "Payments.sol", "Payments.json"))) throw new Error("out/ has no contract artifacts: run forge build (scripts/forge-test) at the repository root");
  const file = join(dir, "deployments.json");
  const r = spawnSync(bin, ["--rpc-url", rpcUrl, "--artifacts", join(REPO_DIR, "out"), "--out", file], {
    cwd: REPO_DIR,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, DCHAT_DEPLOYER_KEY: DEPLOYER_KEY },
  });
  if (r.status !== 0) throw new Error(`dchat-deploy failed: ${r.stderr}${r.stdout}`);
  const d = JSON.parse(readFileSync(file, "utf8"))["31337"] as { payments: `0x${string}`; message_anchor: `0x${string}` };
  return { file, payments: d.payments, messageAnchor: d.message_anchor };
}

/** Starts `dchat-node` on a free port with a fresh data directory, serving the built dApp. */
export async function startNode(opts: { config?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunningNode> {
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
  const child: ChildProcess = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn", ...opts.env } });
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
  /** Refuse the next transaction with code 4001. */
  rejectNextTransaction: boolean;
  /** Hashes of the transactions sent. */
  sent: string[];
}

/**
 * Injects a wallet into every page of `context`: `window.ethereum` (EIP-1193) and/or an EIP-6963
 * announcement. Its `request()` goes to the test process, where a viem local account answers.
 */
export async function installWallet(
  context: BrowserContext,
  opts: { privateKey: `0x${string}`; chainId?: number; name?: string; eip6963?: boolean; legacy?: boolean; rpcUrl?: string },
): Promise<TestWallet> {
  const wallet: TestWallet = {
    account: privateKeyToAccount(opts.privateKey),
    chainId: opts.chainId ?? 31337,
    rejectNextSignature: false,
    calls: [],
    signed: [],
    rejectNextTransaction: false,
    sent: [],
  };
  // With a chain: transactions are signed here by the local account and sent to it; reads go to it.
  const rpc = async (method: string, params: unknown[]) => {
    const r = await fetch(opts.rpcUrl!, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
    return (await r.json()) as { result?: unknown; error?: { code: number; message: string } };
  };
  const signer = opts.rpcUrl ? createWalletClient({ account: wallet.account, transport: http(opts.rpcUrl) }) : undefined;
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
      case "eth_sendTransaction": {
        if (!signer) return rpcError(4200, "This wallet has no chain");
        if (wallet.rejectNextTransaction) {
          wallet.rejectNextTransaction = false;
          return rpcError(4001, "User rejected the request.");
        }
        const tx = params[0] as { from: string; to: ViemHex; data?: ViemHex; value?: ViemHex };
        if (tx.from.toLowerCase() !== wallet.account.address.toLowerCase()) return rpcError(4100, "Unknown account");
        try {
          const hash = await signer.sendTransaction({ chain: null, to: tx.to, data: tx.data, value: tx.value ? BigInt(tx.value) : undefined });
          wallet.sent.push(hash);
          return { result: hash };
        } catch (err) {
          return rpcError(-32603, (err as Error).message);
        }
      }
      case "eth_call":
      case "eth_getTransactionReceipt":
      case "eth_blockNumber":
      case "eth_getBalance":
      case "eth_estimateGas":
        if (!opts.rpcUrl) return rpcError(4200, "This wallet has no chain");
        return rpc(method, params);
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
