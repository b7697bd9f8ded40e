// The dApp's on-chain parts against anvil with dchat's contracts deployed: a tip lands on chain
// through the wallet, and messages show the "anchored" badge with a proof the contract accepts.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { createPublicClient, createWalletClient, http, parseAbi, parseEventLogs } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DEPLOYER_KEY,
  deployContracts,
  installWallet,
  KEYS,
  launchBrowser,
  REPO_DIR,
  screenshot,
  startAnvil,
  startNode,
  type RunningNode,
  type RunningService,
  type TestWallet,
} from "./harness";

const WAIT = { timeout: 15_000 };
const PHONE = { width: 390, height: 844 };
const PAYMENTS = parseAbi([
  "function balances(address account, address token) view returns (uint256)",
  "event Tipped(address indexed from, address indexed to, address token, uint256 amount, uint256 fee, bytes32 indexed messageHash)",
  "function subscriptionExpiry(bytes32 room, address subscriber) view returns (uint64)",
  "function roomInfo(bytes32 room) view returns ((address owner, uint64 periodSeconds, address token, uint256 pricePerPeriod))",
  "function setRoomPrice(bytes32 room, address token, uint256 pricePerPeriod, uint64 periodSeconds)",
]);
const address = (key: `0x${string}`) => privateKeyToAccount(key).address;
const TOKEN = parseAbi(["constructor(string name_, string symbol_)", "function mint(address to, uint256 amount)", "function balanceOf(address) view returns (uint256)"]);

/** Deploys the contracts' test ERC-20 (contracts/test/mocks/MockERC20.sol) and mints to `holder`. */
async function deployToken(rpcUrl: string, holder: `0x${string}`): Promise<`0x${string}`> {
  const artifact = join(REPO_DIR, "out", "MockERC20.sol", "MockERC20.json");
  if (!existsSync(artifact)) throw new Error("out/MockERC20.sol is missing: run forge build at the repository root (scripts/dapp-test does)");
  const bytecode = (JSON.parse(readFileSync(artifact, "utf8")) as { bytecode: { object: `0x${string}` } }).bytecode.object;
  const wallet = createWalletClient({ account: privateKeyToAccount(DEPLOYER_KEY), transport: http(rpcUrl) });
  const chain = createPublicClient({ transport: http(rpcUrl) });
  const hash = await wallet.deployContract({ chain: null, abi: TOKEN, bytecode, args: ["Holders", "HOLD"] });
  const token = (await chain.waitForTransactionReceipt({ hash })).contractAddress!;
  await chain.waitForTransactionReceipt({ hash: await wallet.writeContract({ chain: null, address: token, abi: TOKEN, functionName: "mint", args: [holder, 10n ** 18n] }) });
  return token;
}

let anvil: RunningService;
let node: RunningNode;
let browser: Browser;
let dir: string;
let contracts: { payments: `0x${string}`; messageAnchor: `0x${string}` };
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dchat-dapp-chain-"));
  anvil = await startAnvil();
  const d = deployContracts(anvil.url, dir);
  contracts = d;
  // The node anchors its clients' messages every second and names the contracts to the dApp.
  node = await startNode({
    config: [
      `rpc_url = "${anvil.url}"`,
      "chain_ids = [31337]",
      "[anchor]",
      `deployments = "${d.file}"`,
      "batch_size = 100",
      "interval_secs = 1",
      "[dapp]",
      `deployments = "${d.file}"`,
      "",
    ].join("\n"),
    env: { DCHAT_ANCHOR_KEY: DEPLOYER_KEY },
  });
  browser = await launchBrowser();
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await node?.stop();
  await anvil?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function open(key: `0x${string}`, name: string, viewport = { width: 1200, height: 800 }): Promise<{ page: Page; wallet: TestWallet }> {
  const c = await browser.newContext({ viewport });
  c.setDefaultTimeout(15_000);
  contexts.push(c);
  const wallet = await installWallet(c, { privateKey: key, name, rpcUrl: anvil.url });
  const page = await c.newPage();
  await page.goto(node.url + "/");
  await page.getByRole("button", { name: `Sign in with ${name}` }).click();
  await page.getByTestId("me").waitFor(WAIT);
  return { page, wallet };
}

describe("dApp on chain (anvil + Payments + MessageAnchor)", () => {
  let alice: Page;
  let aliceWallet: TestWallet;
  let bob: Page;
  let tipped = "";
  let channel = "";

  it("tips a message through the wallet, and the tip lands on chain", async () => {
    ({ page: alice, wallet: aliceWallet } = await open(KEYS.alice, "Alice Wallet"));
    ({ page: bob } = await open(KEYS.bob, "Bob Wallet", PHONE));

    await alice.getByRole("link", { name: "New channel" }).click();
    await alice.getByLabel("Name").fill("tip-jar");
    await alice.getByRole("button", { name: "Create channel" }).click();
    await alice.getByRole("heading", { name: "tip-jar" }).waitFor(WAIT);
    channel = (await alice.getByTestId("room-id").textContent())!.trim();
    await bob.getByRole("link", { name: "Join channel" }).click();
    await bob.getByLabel("Channel id").fill(channel);
    await bob.getByRole("button", { name: "Join", exact: true }).click();
    await bob.getByRole("heading", { name: "tip-jar" }).waitFor(WAIT);
    const composer = bob.getByRole("textbox", { name: "Message tip-jar" });
    await composer.fill("a message worth a tip");
    await composer.press("Enter");
    const msg = alice.locator("li.msg", { hasText: "a message worth a tip" });
    await msg.waitFor(WAIT);
    tipped = (await msg.getAttribute("data-id"))!;

    // Bad input first: said in words, nothing sent.
    await msg.getByRole("button", { name: /^Tip / }).click();
    const form = msg.getByTestId("tip-form");
    await form.getByLabel("Amount (ETH)").fill("lots");
    await form.getByRole("button", { name: "Send tip" }).click();
    await form.getByTestId("tip-status").getByText("Enter an amount in ETH, such as 0.01.").waitFor(WAIT);
    // The wallet refuses: said so.
    aliceWallet.rejectNextTransaction = true;
    await form.getByLabel("Amount (ETH)").fill("0.01");
    await form.getByRole("button", { name: "Send tip" }).click();
    await form.getByTestId("tip-status").getByText("You rejected the request in your wallet.").waitFor(WAIT);
    expect(aliceWallet.sent).toHaveLength(0);
    // Then it goes through.
    await form.getByRole("button", { name: "Send tip" }).click();
    await form.getByTestId("tip-status").getByText(/^Tipped 0\.01 ETH/).waitFor({ timeout: 30_000 });
    await screenshot(alice, "30-tip-sent");
    expect(aliceWallet.sent).toHaveLength(1);

    // On chain: Bob's balance in Payments holds the tip minus the 1% operator fee, and the event
    // names the message.
    const chain = createPublicClient({ transport: http(anvil.url) });
    const balance = await chain.readContract({ address: contracts.payments, abi: PAYMENTS, functionName: "balances", args: [address(KEYS.bob), "0x0000000000000000000000000000000000000000"] });
    expect(balance).toBe(9_900_000_000_000_000n);
    const receipt = await chain.getTransactionReceipt({ hash: aliceWallet.sent[0] as `0x${string}` });
    const [ev] = parseEventLogs({ abi: PAYMENTS, logs: receipt.logs, eventName: "Tipped" });
    expect(ev!.args.from).toBe(address(KEYS.alice));
    expect(ev!.args.to).toBe(address(KEYS.bob));
    expect(ev!.args.amount).toBe(10_000_000_000_000_000n);
    expect(ev!.args.messageHash).toBe(tipped);
  });

  it("shows the anchored badge with the Merkle proof and the transaction, and the contract confirms it", async () => {
    const msg = bob.locator("li.msg", { hasText: "a message worth a tip" });
    const badge = msg.getByTestId("anchored-badge");
    await badge.waitFor({ timeout: 30_000 });
    await badge.click();
    const proof = msg.getByTestId("proof");
    await proof.getByTestId("proof-local").getByText("✓ The proof leads from this message's id to the batch root.").waitFor(WAIT);
    const tx = (await proof.getByTestId("proof-tx").textContent())!;
    expect(tx).toMatch(/^0x[0-9a-f]{64}$/);
    const chain = createPublicClient({ transport: http(anvil.url) });
    const receipt = await chain.getTransactionReceipt({ hash: tx as `0x${string}` });
    expect(receipt.to?.toLowerCase()).toBe(contracts.messageAnchor.toLowerCase());
    // Anchored under the node's anchor key, which runs no registered node here: the contract
    // confirms the proof and the dApp says whose word it is.
    const anchorer = await proof.getByTestId("proof-anchorer").locator("code").getAttribute("title");
    expect(anchorer?.toLowerCase()).toBe(privateKeyToAccount(DEPLOYER_KEY).address.toLowerCase());
    await proof.getByRole("button", { name: "Check on chain" }).click();
    await proof.getByTestId("proof-check").getByText(/^Verified on chain: .* not an active node in NodeRegistry/).waitFor(WAIT);
    await screenshot(bob, "31-anchored-proof-phone");
  });

  it("the owner makes the channel paid through the wallet; another wallet subscribes on chain, then joins", async () => {
    await alice.getByRole("button", { name: "Members", exact: true }).click();
    const panel = alice.getByTestId("policy-panel");
    await panel.getByLabel("Policy", { exact: true }).selectOption("paid");
    // Bad input is refused before the wallet is asked.
    await panel.getByLabel("Period (days)").fill("0");
    await panel.getByRole("button", { name: "Save policy" }).click();
    await panel.getByTestId("policy-status").getByText("The period is a whole number of days, 1 to 3650.").waitFor(WAIT);
    await panel.getByLabel("Price per period (ETH)").fill("0.002");
    await panel.getByLabel("Period (days)").fill("30");
    await panel.getByRole("button", { name: "Save policy" }).click();
    await panel.getByTestId("policy-status").getByText("Policy saved.").waitFor({ timeout: 30_000 });
    await panel.getByTestId("policy-current").getByText("Paid subscription").waitFor(WAIT);
    await screenshot(alice, "32-policy-paid");
    const chain = createPublicClient({ transport: http(anvil.url) });
    const terms = await chain.readContract({ address: contracts.payments, abi: PAYMENTS, functionName: "roomInfo", args: [channel as `0x${string}`] });
    expect(terms.owner).toBe(address(KEYS.alice));
    expect(terms.pricePerPeriod).toBe(2_000_000_000_000_000n);

    // Dave, on a phone, is refused by the gate, sees the price, subscribes through his wallet, and is in.
    const { page: dave, wallet: daveWallet } = await open(KEYS.dave, "Dave Wallet", PHONE);
    await dave.getByRole("link", { name: "Join channel" }).click();
    await dave.getByLabel("Channel id").fill(channel);
    await dave.getByRole("button", { name: "Join", exact: true }).click();
    await dave.getByText(/This room is gated/).waitFor(WAIT);
    const sub = dave.getByTestId("subscribe-panel");
    await sub.getByTestId("subscribe-price").getByText(/^0\.002 ETH per 30 days/).waitFor(WAIT);
    await screenshot(dave, "33-subscribe-phone");
    await sub.getByRole("button", { name: "Subscribe and join" }).click();
    await dave.getByRole("heading", { name: "tip-jar" }).waitFor({ timeout: 30_000 });
    expect(daveWallet.sent).toHaveLength(1);
    const expiry = await chain.readContract({ address: contracts.payments, abi: PAYMENTS, functionName: "subscriptionExpiry", args: [channel as `0x${string}`, address(KEYS.dave)] });
    expect(Number(expiry)).toBeGreaterThan(Date.now() / 1000 + 29 * 86_400);
    await alice.getByText(`${address(KEYS.dave).slice(0, 6)}…${address(KEYS.dave).slice(-4)} joined`).waitFor(WAIT);
  });

  it("a member whose subscription lapsed is offered a renewal in the room, pays through the wallet and posts again", async () => {
    // The room's owner shortens the period on chain to 5 seconds, so a subscription lapses soon.
    const owner = createWalletClient({ account: privateKeyToAccount(KEYS.alice), transport: http(anvil.url) });
    const chain = createPublicClient({ transport: http(anvil.url) });
    const setPrice = await owner.writeContract({
      chain: null,
      address: contracts.payments,
      abi: PAYMENTS,
      functionName: "setRoomPrice",
      args: [channel as `0x${string}`, "0x0000000000000000000000000000000000000000", 1_000_000_000_000_000n, 5n],
    });
    await chain.waitForTransactionReceipt({ hash: setPrice });

    const { page: carol, wallet } = await open(KEYS.carol, "Carol Wallet", PHONE);
    await carol.getByRole("link", { name: "Join channel" }).click();
    await carol.getByLabel("Channel id").fill(channel);
    await carol.getByRole("button", { name: "Join", exact: true }).click();
    const sub = carol.getByTestId("subscribe-panel");
    await sub.getByTestId("subscribe-price").getByText(/^0\.001 ETH per 5 seconds/).waitFor(WAIT);
    await sub.getByLabel("Periods").fill("2");
    await sub.getByRole("button", { name: "Subscribe and join" }).click();
    await carol.getByRole("heading", { name: "tip-jar" }).waitFor({ timeout: 30_000 });
    await carol.getByText("a message worth a tip").waitFor(WAIT);

    // Ten seconds later the subscription has ended: the channel stays readable, but the node
    // refuses her post (402 gate_not_met), and the room offers the renewal.
    await carol.waitForTimeout(11_000);
    const composer = carol.getByRole("textbox", { name: "Message tip-jar" });
    await composer.fill("still here?");
    await composer.press("Enter");
    const failed = carol.locator('li.msg[data-status="failed"]', { hasText: "still here?" });
    await failed.getByText(/This room is gated/).waitFor(WAIT);
    const renew = carol.getByTestId("subscribe-panel");
    await renew.getByText("Your subscription to this room has ended").waitFor(WAIT);
    await screenshot(carol, "34-subscription-lapsed-phone");
    await renew.getByLabel("Periods").fill("60");
    await renew.getByRole("button", { name: "Renew" }).click();
    await expect.poll(() => carol.getByTestId("subscribe-panel").count(), { timeout: 30_000 }).toBe(0);
    await failed.getByRole("button", { name: "Retry" }).click();
    await carol.locator('li.msg[data-status="sent"]', { hasText: "still here?" }).waitFor(WAIT);
    await alice.getByText("still here?").waitFor(WAIT);
    expect(wallet.sent).toHaveLength(2);
  });

  it("an admin gates a channel on an ERC-20 balance: a holder joins, a wallet without the token is told why", async () => {
    const token = await deployToken(anvil.url, address(KEYS.carol));
    await alice.getByRole("link", { name: "New channel" }).click();
    await alice.getByLabel("Name").fill("holders");
    await alice.getByRole("button", { name: "Create channel" }).click();
    await alice.getByRole("heading", { name: "holders" }).waitFor(WAIT);
    const holders = (await alice.getByTestId("room-id").textContent())!.trim();
    await alice.getByRole("button", { name: "Members", exact: true }).click();
    const panel = alice.getByTestId("policy-panel");
    await panel.getByLabel("Policy", { exact: true }).selectOption("token_gated");
    // A malformed contract address is refused in words.
    await panel.getByLabel("Token contract").fill("0x1234");
    await panel.getByRole("button", { name: "Save policy" }).click();
    await panel.getByTestId("policy-status").getByText(/Enter the token contract's address/).waitFor(WAIT);
    await panel.getByLabel("Token contract").fill(token);
    await panel.getByLabel("Minimum balance").fill("1");
    await panel.getByRole("button", { name: "Save policy" }).click();
    await panel.getByTestId("policy-status").getByText("Policy saved.").waitFor(WAIT);
    await panel.getByTestId("policy-current").getByText("Token holders").waitFor(WAIT);
    await screenshot(alice, "35-policy-token-gated");

    // Dave holds none: the node refuses his join (402 gate_not_met) and the dApp says why.
    const dave = (await open(KEYS.dave, "Dave Wallet 2")).page;
    await dave.getByRole("link", { name: "Join channel" }).click();
    await dave.getByLabel("Channel id").fill(holders);
    await dave.getByRole("button", { name: "Join", exact: true }).click();
    await dave.getByText(/This room is gated: you need the token/).waitFor(WAIT);
    expect(await dave.getByTestId("subscribe-panel").count()).toBe(0);
    await screenshot(dave, "36-gate-not-met");

    // Carol holds the token and joins.
    const carol = (await open(KEYS.carol, "Carol Wallet", PHONE)).page;
    await carol.getByRole("link", { name: "Join channel" }).click();
    await carol.getByLabel("Channel id").fill(holders);
    await carol.getByRole("button", { name: "Join", exact: true }).click();
    await carol.getByRole("heading", { name: "holders" }).waitFor(WAIT);
  });
});
