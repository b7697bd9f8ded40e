// The dApp in real Chromium against a real dchat-node: two wallets sign in, chat end-to-end
// encrypted in a group and a direct room and in the clear in a channel, manage members and roles,
// and the error screens render.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { privateKeyToAccount } from "viem/accounts";
import {
  createDatabase,
  freePort,
  indexerKey,
  installWallet,
  KEYS,
  launchBrowser,
  screenshot,
  startGateway,
  startIndexer,
  startNode,
  startOidcProvider,
  type RunningNode,
  type RunningService,
  type TestDatabase,
  type TestWallet,
} from "./harness";
import { ScriptedUser } from "./node-client";

const WAIT = { timeout: 15_000 };
const PHONE = { width: 390, height: 844 };

let node: RunningNode;
let indexer: RunningService;
let gateway: RunningService;
let oidc: RunningService;
let db: TestDatabase;
let gatewayDb: TestDatabase;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  // The node names its search indexer to the dApp ([dapp] indexer_url, GET /v1/info); the
  // indexer follows the node's log into a fresh PostgreSQL database and lets the dApp's origin in.
  // The LinkedIn gateway likewise ([dapp] gateway_url), against the OpenID Connect provider
  // configured like LinkedIn; the indexer follows its profile feed for people search.
  db = createDatabase();
  gatewayDb = createDatabase();
  const { key, nodeConfig } = indexerKey();
  const indexerPort = await freePort();
  const gatewayPort = await freePort();
  const gatewayUrl = `http://localhost:${gatewayPort}`;
  node = await startNode({ config: `${nodeConfig}[dapp]\nindexer_url = "http://127.0.0.1:${indexerPort}"\ngateway_url = "${gatewayUrl}"\n` });
  oidc = await startOidcProvider(`${gatewayUrl}/v1/link/linkedin/callback`);
  gateway = await startGateway({ port: gatewayPort, nodeUrl: node.listenUrl, databaseUrl: gatewayDb.url, issuer: (oidc as RunningService & { issuer: string }).issuer, dappOrigin: node.url });
  indexer = await startIndexer({ nodeUrl: node.listenUrl, databaseUrl: db.url, key, port: indexerPort, corsOrigin: node.url, gatewayUrl: `http://127.0.0.1:${gatewayPort}` });
  browser = await launchBrowser();
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await indexer?.stop();
  await gateway?.stop();
  await oidc?.stop();
  await node?.stop();
  db?.drop();
  gatewayDb?.drop();
});

async function newContext(viewport = { width: 1200, height: 800 }): Promise<BrowserContext> {
  const c = await browser.newContext({ viewport });
  c.setDefaultTimeout(15_000);
  contexts.push(c);
  return c;
}

/** Opens the dApp and signs in with the wallet button named `walletName`. */
async function signIn(page: Page, url: string, walletName: string): Promise<void> {
  await page.goto(url + "/");
  await page.getByRole("button", { name: `Sign in with ${walletName}` }).click();
  await page.getByTestId("me").waitFor(WAIT);
}

const address = (key: `0x${string}`) => privateKeyToAccount(key).address;
const shortAddr = (a: string) => `${a.slice(0, 6)}…${a.slice(-4)}`;

/** A GET to the node with the page's own session token, as the dApp would send it. */
async function apiGet(page: Page, path: string): Promise<{ status: number; body: any }> {
  return page.evaluate(async (p) => {
    const s = JSON.parse(localStorage.getItem("dchat.session.v1") ?? "{}") as { token?: string };
    const r = await fetch(p, { headers: { Authorization: `Bearer ${s.token}` } });
    return { status: r.status, body: await r.json() };
  }, path);
}

describe("dApp against a live node", () => {
  let alice: Page;
  let bob: Page;
  let aliceWallet: TestWallet;
  let channelId = "";
  let groupId = "";

  it("signs in two wallets: one announced through EIP-6963, one only as window.ethereum", async () => {
    const ca = await newContext();
    aliceWallet = await installWallet(ca, { privateKey: KEYS.alice, name: "Alice Wallet", eip6963: true, legacy: false });
    alice = await ca.newPage();
    await alice.goto(node.url + "/");
    await alice.getByRole("button", { name: "Sign in with Alice Wallet" }).waitFor(WAIT);
    await screenshot(alice, "01-sign-in");
    await alice.getByRole("button", { name: "Sign in with Alice Wallet" }).click();
    await alice.getByTestId("me").waitFor(WAIT);
    expect(await alice.getByTestId("me").getAttribute("title")).toBe(address(KEYS.alice));
    // The wallet signed a sign-in for this node that delegates the browser's two device keys.
    expect(aliceWallet.signed).toHaveLength(1);
    const siwe = aliceWallet.signed[0]!;
    expect(siwe.startsWith(`${node.domain} wants you to sign in with your Ethereum account:\n${address(KEYS.alice)}\n`)).toBe(true);
    expect(siwe).toContain(`\nURI: ${node.url}\n`);
    expect(siwe).toContain("\nChain ID: 31337\n");
    expect(siwe).toMatch(/\nResources:\n- urn:dchat:sign:[0-9a-f]{64}\n- urn:dchat:box:[0-9a-f]{64}$/);
    await alice.locator('[data-live="open"]').waitFor(WAIT);

    // Bob is on a phone, with a wallet that does not announce itself.
    const cb = await newContext(PHONE);
    await installWallet(cb, { privateKey: KEYS.bob, eip6963: false, legacy: true });
    bob = await cb.newPage();
    await signIn(bob, node.url, "Browser wallet");
    await bob.getByText("No rooms yet.").waitFor(WAIT);
    await screenshot(bob, "02-empty-room-list-phone");
  });

  it("two wallets in a private group exchange end-to-end encrypted messages both ways live", async () => {
    await alice.getByRole("link", { name: "New group" }).click();
    await alice.getByLabel("Name").fill("Project X");
    await alice.getByLabel(/Members/).fill(address(KEYS.bob));
    await alice.getByText("1 member besides you").waitFor(WAIT);
    await screenshot(alice, "03-create-group");
    await alice.getByRole("button", { name: "Create group" }).click();
    await alice.getByRole("heading", { name: "Project X" }).waitFor(WAIT);
    await alice.getByText("You created the room").waitFor(WAIT);
    groupId = (await alice.getByTestId("room-id").textContent())!.trim();

    // Bob learns of the group from his room list (it is polled).
    await bob.getByRole("link", { name: /Project X/ }).waitFor(WAIT);

    // The first message starts a key epoch (wrapped for both browsers' devices), then is sealed.
    const composer = alice.getByRole("textbox", { name: "Message Project X" });
    await composer.fill("hello from Alice");
    await composer.press("Enter");
    await alice.locator('li.msg[data-status="sent"]', { hasText: "hello from Alice" }).waitFor(WAIT);
    await alice.getByText("You started a new key epoch").waitFor(WAIT);

    // The node holds ciphertext only.
    const stored = await apiGet(alice, `/v1/rooms/${groupId}/messages`);
    expect(stored.status).toBe(200);
    const texts = (stored.body.messages as { kind: string; encrypted?: boolean; text?: string }[]).filter((m) => m.kind === "text");
    expect(texts).toHaveLength(1);
    expect(texts[0]!.encrypted).toBe(true);
    expect(texts[0]!.text).toBeUndefined();
    expect(JSON.stringify(stored.body)).not.toContain(Buffer.from("hello from Alice").toString("hex"));

    // Bob opens the group and reads it; he answers, and Alice sees it live.
    await bob.getByRole("link", { name: /Project X/ }).click();
    await bob.locator("li.msg", { hasText: "hello from Alice" }).waitFor(WAIT);
    const bobComposer = bob.getByRole("textbox", { name: "Message Project X" });
    await bobComposer.fill("hi Alice, sealed too");
    await bobComposer.press("Enter");
    const fromBob = alice.locator("li.msg", { hasText: "hi Alice, sealed too" });
    await fromBob.waitFor(WAIT);
    expect(await fromBob.locator(".sender").textContent()).toBe(shortAddr(address(KEYS.bob)));
    await composer.fill("see you at 5");
    await composer.press("Enter");
    await bob.locator("li.msg", { hasText: "see you at 5" }).waitFor(WAIT);

    const all = await apiGet(alice, `/v1/rooms/${groupId}/messages`);
    const sealed = (all.body.messages as { kind: string; encrypted?: boolean; text?: string }[]).filter((m) => m.kind === "text");
    expect(sealed).toHaveLength(3);
    expect(sealed.every((m) => m.encrypted === true && m.text === undefined)).toBe(true);
    expect(await alice.getByTestId("e2e-badge").count()).toBe(3);
    expect(await bob.getByTestId("e2e-badge").count()).toBe(3);
    expect(await alice.locator(".unverified").count()).toBe(0);
    expect(await bob.locator(".unverified").count()).toBe(0);
    expect(await bob.locator("[data-sealed]").count()).toBe(0);
    await screenshot(alice, "04-group-encrypted-chat");
    await screenshot(bob, "04-group-encrypted-chat-phone");
    await bob.getByRole("link", { name: "Back to rooms" }).first().click();
  });

  it("a second device of a member cannot open messages sealed before it existed, and says so", async () => {
    // Bob signs in on another browser: a new device key the old epochs were not wrapped for.
    const c = await newContext();
    await installWallet(c, { privateKey: KEYS.bob, name: "Bob Laptop Wallet" });
    const laptop = await c.newPage();
    await signIn(laptop, node.url, "Bob Laptop Wallet");
    await laptop.getByRole("link", { name: /Project X/ }).click();
    const unreadable = laptop.locator('[data-sealed="no_key"]');
    await expect.poll(() => unreadable.count(), WAIT).toBe(3);
    await unreadable.first().getByText("Encrypted for a key this device does not hold.").waitFor(WAIT);
    expect(await laptop.getByText("hello from Alice").count()).toBe(0);
    await screenshot(laptop, "05-group-other-device");
    // The node now asks for a new epoch: the member devices changed.
    const members = await apiGet(laptop, `/v1/rooms/${groupId}/members`);
    expect(members.body.rotate).toBe(true);
    await c.close();
  });

  it("creates a public channel that another wallet joins by id, and both exchange messages live", async () => {
    await alice.getByRole("link", { name: "New channel" }).click();
    await alice.getByLabel("Name").fill("town-square");
    await alice.getByRole("button", { name: "Create channel" }).click();
    await alice.getByRole("heading", { name: "town-square" }).waitFor(WAIT);
    channelId = (await alice.getByTestId("room-id").textContent())!.trim();
    expect(channelId).toMatch(/^0x[0-9a-f]{64}$/);

    // Bob joins by id, then goes back to his list.
    await bob.getByRole("link", { name: "Join channel" }).click();
    await bob.getByLabel("Channel id").fill(channelId);
    await screenshot(bob, "05-join-channel-phone");
    await bob.getByRole("button", { name: "Join", exact: true }).click();
    await bob.getByRole("heading", { name: "town-square" }).waitFor(WAIT);
    await alice.getByText(`${shortAddr(address(KEYS.bob))} joined`).waitFor(WAIT);
    await bob.getByRole("link", { name: "Back to rooms" }).first().click();
    const bobRoom = bob.getByRole("link", { name: /town-square/ });
    await bobRoom.waitFor(WAIT);

    const composer = alice.getByRole("textbox", { name: "Message town-square" });
    await composer.fill("hello from Alice");
    await composer.press("Enter");
    await expect.poll(() => composer.inputValue()).toBe("");
    await alice.locator('li.msg[data-status="sent"]', { hasText: "hello from Alice" }).waitFor(WAIT);

    // Unread count on Bob's list, live over the WebSocket.
    await bob.getByTestId("unread").filter({ hasText: "1" }).waitFor(WAIT);
    expect(await bob.getByTestId("unread").getAttribute("aria-label")).toBe("1 unread");
    await screenshot(bob, "06-room-list-unread-phone");

    await bobRoom.click();
    await bob.getByText("hello from Alice").waitFor(WAIT);
    // On a phone the room replaces the list.
    expect(await bob.getByRole("navigation", { name: "Rooms" }).isVisible()).toBe(false);
    const bobComposer = bob.getByRole("textbox", { name: "Message town-square" });
    await bobComposer.fill("hi Alice, Bob here");
    await bobComposer.press("Enter");

    // Alice sees it without reloading, attributed to Bob.
    const fromBob = alice.locator("li.msg", { hasText: "hi Alice, Bob here" });
    await fromBob.waitFor(WAIT);
    expect(await fromBob.locator(".sender").textContent()).toBe(shortAddr(address(KEYS.bob)));

    // And back again.
    await composer.fill("see you at 5");
    await composer.press("Enter");
    await bob.getByText("see you at 5").waitFor(WAIT);
    await bob.locator('li.msg.mine[data-status="sent"]', { hasText: "hi Alice, Bob here" }).waitFor(WAIT);
    // Every message checked out against its signed envelope.
    expect(await alice.locator(".unverified").count()).toBe(0);
    expect(await bob.locator(".unverified").count()).toBe(0);
    await screenshot(alice, "07-channel-chat");
    await screenshot(bob, "08-channel-chat-phone");

    // Shift+Enter makes a new line instead of sending.
    await bobComposer.fill("line one");
    await bobComposer.press("Shift+Enter");
    await bobComposer.pressSequentially("line two");
    expect(await bobComposer.inputValue()).toBe("line one\nline two");
    await bobComposer.press("Enter");
    await alice.locator("li.msg", { hasText: "line one" }).waitFor(WAIT);

    // Back to the list on the phone; the room is read.
    await bob.getByRole("link", { name: "Back to rooms" }).first().click();
    await bob.getByRole("link", { name: /town-square/ }).waitFor(WAIT);
    expect(await bob.getByTestId("unread").count()).toBe(0);
  });

  it("keeps the session and device keys across a reload, without asking the wallet again", async () => {
    await alice.reload();
    await alice.getByTestId("me").waitFor(WAIT);
    await alice.getByRole("heading", { name: "town-square" }).waitFor(WAIT);
    await alice.getByText("see you at 5").waitFor(WAIT);
    const composer = alice.getByRole("textbox", { name: "Message town-square" });
    await composer.fill("after a reload");
    await composer.press("Enter");
    await alice.locator('li.msg[data-status="sent"]', { hasText: "after a reload" }).waitFor(WAIT);
    expect(aliceWallet.signed).toHaveLength(1);
  });

  it("pages back through a long history when scrolling up", async () => {
    // A third user, scripted over HTTP, fills the channel with more than two pages of history.
    const carol = new ScriptedUser(node.listenUrl, KEYS.carol);
    await carol.signIn();
    const lamport = await carol.join(channelId);
    const texts = Array.from({ length: 120 }, (_, i) => `history ${String(i + 1).padStart(3, "0")}`);
    await carol.postAll(channelId, lamport + 1, texts);
    await alice.getByText("history 120").waitFor(WAIT);

    // Bob opens the channel afresh (a reload drops what was loaded).
    await bob.reload();
    await bob.getByRole("link", { name: /town-square/ }).click();
    await bob.getByText("history 120").waitFor(WAIT);
    expect(await bob.getByText("history 001").count()).toBe(0);

    const log = bob.getByRole("log");
    for (let i = 0; i < 20 && (await bob.getByText("Start of the room").count()) === 0; i++) {
      await log.evaluate((el) => el.scrollTo({ top: 0 }));
      await bob.waitForTimeout(300);
    }
    await bob.getByText("Start of the room").waitFor(WAIT);
    await bob.getByText("history 001").waitFor(WAIT);
    expect(await bob.locator("li.msg", { hasText: /history \d{3}$/ }).count()).toBe(120);
    await bob.getByText("hello from Alice").waitFor(WAIT);
    expect(await bob.locator(".unverified").count()).toBe(0);
    await screenshot(bob, "09-channel-history-phone");
  });

  it("shows a send failure with a retry that delivers the same message", async () => {
    const composer = alice.getByRole("textbox", { name: "Message town-square" });
    // The node refuses nothing here: cut the network for this one request.
    await alice.route("**/v1/rooms/*/messages", (route) => (route.request().method() === "POST" ? route.abort("connectionrefused") : route.continue()), { times: 1 });
    await composer.fill("this one retries");
    await composer.press("Enter");
    const failed = alice.locator('li.msg[data-status="failed"]', { hasText: "this one retries" });
    await failed.waitFor(WAIT);
    await failed.getByText("Not sent: node unreachable").waitFor(WAIT);
    await screenshot(alice, "10-send-failed");
    await failed.getByRole("button", { name: "Retry" }).click();
    await alice.locator('li.msg[data-status="sent"]', { hasText: "this one retries" }).waitFor(WAIT);
    await bob.getByText("this one retries").waitFor(WAIT);
    expect(await bob.getByText("this one retries").count()).toBe(1);
  });

  it("search finds a message in a public channel (full text, highlighted) and people by address", async () => {
    await alice.evaluate(() => (window.location.hash = "#/"));
    await alice.getByRole("link", { name: "Search" }).click();
    const box = alice.getByRole("searchbox");
    // Too short: said before anything is sent.
    await box.fill("s");
    await box.press("Enter");
    await alice.locator('[data-problem="search"]').getByText("Type at least 2 characters.").waitFor(WAIT);
    // The indexer follows the node's log: retry until it has read the channel.
    const hit = alice.locator("li[data-hit]", { hasText: "see you at 5" });
    await expect
      .poll(
        async () => {
          await box.fill("\"see you\"");
          await box.press("Enter");
          await alice.getByTestId("search-count").waitFor(WAIT);
          return hit.count();
        },
        { timeout: 20_000, interval: 500 },
      )
      .toBeGreaterThan(0);
    expect((await hit.first().locator("mark").allTextContents()).join(" ").toLowerCase()).toMatch(/see.*you/);
    await hit.first().getByText("town-square").waitFor(WAIT);
    await screenshot(alice, "21-search-channel");
    // A hit opens its room.
    await hit.first().getByRole("link").click();
    await alice.getByRole("heading", { name: "town-square" }).waitFor(WAIT);

    // Paging: the 120 "history" messages come 20 at a time.
    await alice.getByRole("link", { name: "Search", exact: true }).first().click();
    await alice.getByRole("searchbox").fill("history");
    await alice.getByRole("searchbox").press("Enter");
    await alice.getByTestId("search-count").getByText("20+ messages found").waitFor(WAIT);
    await alice.getByRole("button", { name: "More results" }).click();
    await expect.poll(() => alice.locator("li[data-hit]").count(), WAIT).toBe(40);

    // People: Bob by the start of his address, with a button to message him.
    await alice.getByRole("link", { name: "Search", exact: true }).first().click();
    await alice.getByLabel("People").check();
    await alice.getByRole("searchbox").fill(address(KEYS.bob).slice(0, 8).toLowerCase());
    await alice.getByRole("searchbox").press("Enter");
    const bobHit = alice.locator(`li[data-user="${address(KEYS.bob).toLowerCase()}"]`);
    await bobHit.waitFor(WAIT);
    await bobHit.getByRole("button", { name: /Message/ }).waitFor(WAIT);
    await screenshot(alice, "22-search-people");

    // The search service down: said so, and the app keeps working.
    await alice.route(`${indexer.url}/**`, (route) => route.abort("connectionrefused"), { times: 1 });
    await alice.getByRole("searchbox").press("Enter");
    await alice.locator('[data-problem="search"]').getByText("The search service is not answering. Try again in a moment.").waitFor(WAIT);
  });

  it("search finds a message in an end-to-end encrypted group through keyed tokens, on a phone", async () => {
    // Bob's messages in the group were sent with their tokens; the indexer holds no text of them.
    await bob.evaluate((id) => (window.location.hash = `#/room/${id}`), groupId);
    await bob.getByRole("heading", { name: "Project X" }).waitFor(WAIT);
    await bob.getByRole("link", { name: "Search in Project X" }).click();
    const box = bob.getByRole("searchbox");
    await bob.getByText("your device turns the words into keyed tokens").waitFor(WAIT);
    const hit = bob.locator("li[data-hit]", { hasText: "hello from Alice" });
    await expect
      .poll(
        async () => {
          // A prefix of a word Alice wrote.
          await box.fill("hell");
          await box.press("Enter");
          await bob.getByTestId("search-count").waitFor(WAIT);
          return hit.count();
        },
        { timeout: 20_000, interval: 500 },
      )
      .toBe(1);
    expect(await bob.locator("li[data-hit]").count()).toBe(1);
    await screenshot(bob, "23-search-encrypted-group-phone");
    // A word nobody wrote finds nothing.
    await box.fill("thursday");
    await box.press("Enter");
    await bob.getByText("No messages match “thursday”.").waitFor(WAIT);
    // Full-text search of public channels never returns the group's messages.
    const pub = await bob.evaluate(async (url) => {
      const s = JSON.parse(localStorage.getItem("dchat.session.v1") ?? "{}") as { token?: string };
      const r = await fetch(`${url}/v1/search/messages?q=hello`, { headers: { Authorization: `Bearer ${s.token}` } });
      return (await r.json()) as { results: { room: string }[] };
    }, indexer.url);
    expect(pub.results.some((r) => r.room.toLowerCase() === groupId.toLowerCase())).toBe(false);
    // Alice's browser kept no token upload waiting: the indexer took them all.
    expect(await alice.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("dchat.search-tokens")))).toEqual([]);
  });

  it("a picture round-trips between the two wallets in the encrypted group, with progress and a preview", async () => {
    await alice.evaluate((id) => (window.location.hash = `#/room/${id}`), groupId);
    await alice.getByRole("heading", { name: "Project X" }).waitFor(WAIT);
    await bob.evaluate((id) => (window.location.hash = `#/room/${id}`), groupId);
    await bob.getByRole("heading", { name: "Project X" }).waitFor(WAIT);
    // A real PNG: a piece of the page.
    const png = await alice.screenshot({ clip: { x: 0, y: 0, width: 48, height: 32 } });
    await alice.locator("#composer-file").setInputFiles({ name: "whiteboard.png", mimeType: "image/png", buffer: png });
    const mine = alice.locator("li.msg[data-status=\"sent\"]", { has: alice.getByTestId("media") });
    await mine.waitFor(WAIT);
    await mine.getByTestId("media-preview").waitFor(WAIT);

    // Bob's browser downloads the ciphertext, decrypts it with the key from the sealed message, and shows it.
    const preview = bob.getByTestId("media-preview").last();
    await preview.waitFor(WAIT);
    await expect.poll(() => preview.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth), WAIT).toBe(48);
    const cid = await bob.getByTestId("media").last().getAttribute("data-cid");
    expect(cid).toMatch(/^Qm[1-9A-HJ-NP-Za-km-z]{44}$/);
    const roundTrip = await preview.evaluate(async (img: HTMLImageElement) => Array.from(new Uint8Array(await (await fetch(img.src)).arrayBuffer())));
    expect(Buffer.from(roundTrip).equals(png)).toBe(true);
    await screenshot(bob, "24-media-encrypted-phone");
    await screenshot(alice, "24-media-encrypted");

    // The node holds ciphertext: not the picture's bytes, and typed as opaque.
    const stored = await alice.evaluate(async (c) => {
      const s = JSON.parse(localStorage.getItem("dchat.session.v1") ?? "{}") as { token?: string };
      const r = await fetch(`/v1/media/${c}`, { headers: { Authorization: `Bearer ${s.token}` } });
      return { type: r.headers.get("content-type"), bytes: Array.from(new Uint8Array(await r.arrayBuffer())) };
    }, cid!);
    expect(stored.type).toBe("application/octet-stream");
    expect(stored.bytes.length).toBe(png.length + 16);
    expect(Buffer.from(stored.bytes).includes(png.subarray(0, 16))).toBe(false);
    const msgs = await apiGet(alice, `/v1/rooms/${groupId}/messages`);
    const media = (msgs.body.messages as { kind: string; encrypted?: boolean }[]).filter((m) => m.kind === "media");
    expect(media).toHaveLength(1);
    expect(media[0]!.encrypted).toBe(true);
  });

  it("a file in a public channel shows upload progress, and a refused type is reported", async () => {
    await bob.evaluate((id) => (window.location.hash = `#/room/${id}`), channelId);
    await bob.getByRole("heading", { name: "town-square" }).waitFor(WAIT);
    await alice.evaluate((id) => (window.location.hash = `#/room/${id}`), channelId);
    await alice.getByRole("heading", { name: "town-square" }).waitFor(WAIT);
    // Slow the upload down so that its progress shows.
    await alice.route(/\/v1\/media\?room=/, async (route) => {
      await new Promise((r) => setTimeout(r, 1500));
      await route.continue();
    }, { times: 1 });
    const notes = Buffer.from("agenda: search, media, tips\n".repeat(2000));
    await alice.locator("#composer-file").setInputFiles({ name: "agenda.txt", mimeType: "text/plain", buffer: notes });
    await alice.getByTestId("upload").waitFor(WAIT);
    await screenshot(alice, "25-media-uploading");
    const file = bob.getByTestId("media").filter({ hasText: "agenda.txt" });
    await file.waitFor(WAIT);
    await file.getByTestId("media-open").click();
    const save = file.getByTestId("media-download");
    await save.waitFor(WAIT);
    const got = await save.evaluate(async (a: HTMLAnchorElement) => new TextDecoder().decode(await (await fetch(a.href)).arrayBuffer()));
    expect(got).toBe(notes.toString());
    await screenshot(bob, "26-media-file-phone");

    // A type the node refuses (415 media_type_not_allowed) is shown, and can be dismissed.
    await alice.locator("#composer-file").setInputFiles({ name: "tool.exe", mimeType: "application/x-msdownload", buffer: Buffer.from("MZ") });
    const err = alice.getByTestId("upload-error");
    await err.getByText(/does not accept files of this type/).waitFor(WAIT);
    await screenshot(alice, "27-media-refused");
    await err.getByRole("button", { name: "Dismiss" }).click();
    expect(await alice.getByTestId("upload-error").count()).toBe(0);
  });

  it("links a LinkedIn account through the gateway: the verified name shows on the profile, on messages and in people search", async () => {
    await alice.evaluate((id) => (window.location.hash = `#/room/${id}`), channelId);
    await alice.getByRole("heading", { name: "town-square" }).waitFor(WAIT);
    await alice.getByTestId("me").click();
    await alice.getByRole("heading", { name: "Your profile" }).waitFor(WAIT);
    await screenshot(alice, "28-profile-unlinked");
    // To the provider (LinkedIn's stand-in signs in "Alice Example" at once), back through the
    // gateway's callback, and home to the dApp.
    await alice.getByRole("button", { name: "Link LinkedIn" }).click();
    await alice.waitForURL((u) => u.searchParams.get("linkedin") === "linked", { timeout: 30_000 });
    await alice.getByTestId("linkedin-status").getByText("Your LinkedIn account is linked.").waitFor(WAIT);
    const linked = alice.getByTestId("linkedin-linked");
    await linked.getByText("Alice Example").waitFor(WAIT);
    await linked.getByTestId("verified-badge").waitFor(WAIT);
    await screenshot(alice, "29-profile-linked");
    expect(aliceWallet.signed).toHaveLength(1);

    // Bob sees the verified name next to Alice's messages.
    await bob.reload();
    await bob.evaluate((id) => (window.location.hash = `#/room/${id}`), channelId);
    const fromAlice = bob.locator("li.msg", { hasText: "this one retries" });
    await fromAlice.getByTestId("verified-name").getByText("✓ Alice Example").waitFor(WAIT);
    await screenshot(bob, "29-verified-name-phone");

    // People search finds her by the linked name, marked verified (the indexer follows the
    // gateway's profile feed).
    await bob.evaluate(() => (window.location.hash = "#/search"));
    await bob.getByLabel("People").check();
    const hit = bob.locator(`li[data-user="${address(KEYS.alice).toLowerCase()}"]`);
    await expect
      .poll(
        async () => {
          await bob.getByRole("searchbox").fill("Alice Exa");
          await bob.getByRole("searchbox").press("Enter");
          await bob.getByTestId("search-count").waitFor(WAIT);
          return hit.getByTestId("verified-badge").count();
        },
        { timeout: 20_000, interval: 1000 },
      )
      .toBe(1);
    await hit.locator("strong", { hasText: "Alice Example" }).waitFor(WAIT);
    await screenshot(bob, "29-search-people-verified-phone");
  });

  it("starts a direct message by address; the other wallet finds the same room and both talk, encrypted", async () => {
    await bob.evaluate(() => (window.location.hash = "#/"));
    await bob.getByRole("link", { name: "New direct message" }).click();
    await bob.getByLabel("Wallet address").fill(address(KEYS.alice));
    await screenshot(bob, "15-new-direct-phone");
    await bob.getByRole("button", { name: "Start" }).click();
    await bob.getByRole("heading", { name: shortAddr(address(KEYS.alice)) }).waitFor(WAIT);
    const dmId = (await bob.getByTestId("room-id").textContent())!.trim();
    const bobComposer = bob.getByRole("textbox", { name: `Message ${shortAddr(address(KEYS.alice))}` });
    await bobComposer.fill("psst, Alice");
    await bobComposer.press("Enter");
    await bob.locator('li.msg[data-status="sent"]', { hasText: "psst, Alice" }).waitFor(WAIT);

    // Alice starts a direct message to Bob too: the same room, not a second one.
    await alice.evaluate(() => (window.location.hash = "#/"));
    await alice.getByRole("link", { name: "New direct message" }).click();
    await alice.getByLabel("Wallet address").fill(address(KEYS.bob).toLowerCase());
    await alice.getByRole("button", { name: "Start" }).click();
    await alice.getByRole("heading", { name: shortAddr(address(KEYS.bob)) }).waitFor(WAIT);
    expect((await alice.getByTestId("room-id").textContent())!.trim()).toBe(dmId);
    await alice.locator("li.msg", { hasText: "psst, Alice" }).waitFor(WAIT);
    const composer = alice.getByRole("textbox", { name: `Message ${shortAddr(address(KEYS.bob))}` });
    await composer.fill("hi Bob, only we can read this");
    await composer.press("Enter");
    await bob.locator("li.msg", { hasText: "hi Bob, only we can read this" }).waitFor(WAIT);

    const stored = await apiGet(bob, `/v1/rooms/${dmId}/messages`);
    const texts = (stored.body.messages as { kind: string; encrypted?: boolean; text?: string }[]).filter((m) => m.kind === "text");
    expect(texts).toHaveLength(2);
    expect(texts.every((m) => m.encrypted === true && m.text === undefined)).toBe(true);
    expect(await alice.locator(".unverified").count()).toBe(0);

    // A direct room keeps its two members: no role or removal buttons.
    await alice.getByRole("button", { name: "Members", exact: true }).click();
    const panel = alice.getByTestId("members-panel");
    await panel.getByText("Members (2)").waitFor(WAIT);
    expect(await panel.getByRole("button").count()).toBe(0);
    await screenshot(alice, "16-direct-message");
    await screenshot(bob, "16-direct-message-phone");
  });

  it("lists the node's channels with the default team channel, and joins it from the directory", async () => {
    await bob.evaluate(() => (window.location.hash = "#/"));
    await bob.getByRole("link", { name: "Join channel" }).click();
    const team = bob.locator("li[data-channel-id]", { hasText: "team" }).filter({ hasText: "default" });
    await team.waitFor(WAIT);
    await bob.locator(`li[data-channel-id="${channelId}"]`).getByRole("link", { name: "Open town-square" }).waitFor(WAIT);
    await screenshot(bob, "17-channel-directory-phone");
    await team.getByRole("button", { name: "Join team" }).click();
    await bob.getByRole("heading", { name: "team", exact: true }).waitFor(WAIT);
    await bob.getByText("You joined").waitFor(WAIT);

    // A member may leave; the channel leaves the list, with no removal notice.
    await bob.getByRole("button", { name: "Members", exact: true }).click();
    await bob.getByRole("button", { name: "Leave channel" }).click();
    await bob.getByRole("link", { name: "New direct message" }).waitFor(WAIT);
    await expect.poll(() => bob.locator(`a.room-link`, { hasText: /^#?\s*team/ }).count(), WAIT).toBe(0);
    expect(await bob.getByTestId("notice").count()).toBe(0);
  });

  it("the owner changes roles and removes a member, whose browser drops the room and can no longer read it", async () => {
    const bobAddr = address(KEYS.bob);
    await alice.evaluate((id) => (window.location.hash = `#/room/${id}`), groupId);
    await alice.getByRole("heading", { name: "Project X" }).waitFor(WAIT);
    await alice.getByRole("button", { name: "Members", exact: true }).click();
    const panel = alice.getByTestId("members-panel");
    const bobRow = panel.locator(`li[data-member="${bobAddr.toLowerCase()}"]`);
    await bobRow.getByTestId("role").filter({ hasText: "member" }).waitFor(WAIT);

    // Promote, then demote (only the owner sets roles).
    await bobRow.getByRole("button", { name: "Make admin" }).click();
    await bobRow.getByTestId("role").filter({ hasText: "admin" }).waitFor(WAIT);
    await alice.getByText(`You made ${shortAddr(bobAddr)} admin`).waitFor(WAIT);
    await bobRow.getByRole("button", { name: "Make member" }).click();
    await bobRow.getByTestId("role").filter({ hasText: "member" }).waitFor(WAIT);
    await screenshot(alice, "18-members-and-roles");

    // An admin invites: a wallet that never signed in is listed without a device.
    await panel.getByLabel("Invite by address").fill(address(KEYS.dave));
    await panel.getByRole("button", { name: "Invite", exact: true }).click();
    await alice.getByText(`You invited ${shortAddr(address(KEYS.dave))}`).waitFor(WAIT);
    await panel.getByText("Members (3)").waitFor(WAIT);
    await panel.locator(`li[data-member="${address(KEYS.dave).toLowerCase()}"]`).getByText("no device yet").waitFor(WAIT);

    // A plain member sees the list, but no invite, role or removal controls.
    await bob.evaluate((id) => (window.location.hash = `#/room/${id}`), groupId);
    await bob.getByRole("button", { name: "Members", exact: true }).click();
    const bobPanel = bob.getByTestId("members-panel");
    await bobPanel.getByText("Members (3)").waitFor(WAIT);
    expect(await bobPanel.getByRole("button", { name: /Remove|Make|Invite/ }).count()).toBe(0);
    await bobPanel.getByRole("button", { name: "Leave group" }).waitFor(WAIT);
    await screenshot(bob, "18-members-as-member-phone");

    // Bob's list shows the group until he is removed.
    await bob.evaluate(() => (window.location.hash = "#/"));
    await bob.getByRole("link", { name: /Project X/ }).waitFor(WAIT);
    await bobRow.getByRole("button", { name: `Remove ${shortAddr(bobAddr)}` }).click();
    await alice.getByText(`You removed ${shortAddr(bobAddr)}`).waitFor(WAIT);
    await panel.getByText("Members (2)").waitFor(WAIT);

    // The node stops Bob's stream (`unsubscribed`): the room leaves his list with a notice.
    await bob.getByTestId("notice").filter({ hasText: "Project X" }).waitFor(WAIT);
    expect(await bob.getByRole("link", { name: /Project X/ }).count()).toBe(0);
    await screenshot(bob, "19-removed-phone");
    const history = await apiGet(bob, `/v1/rooms/${groupId}/messages`);
    expect(history.status).toBe(403);
    expect(history.body.error).toBe("not_a_member");

    // Alice's next message starts a new epoch wrapped for her devices only.
    const epochsBefore = await alice.getByText("You started a new key epoch").count();
    const composer = alice.getByRole("textbox", { name: "Message Project X" });
    await composer.fill("after Bob left");
    await composer.press("Enter");
    await alice.locator('li.msg[data-status="sent"]', { hasText: "after Bob left" }).waitFor(WAIT);
    await expect.poll(() => alice.getByText("You started a new key epoch").count(), WAIT).toBe(epochsBefore + 1);
    const members = await apiGet(alice, `/v1/rooms/${groupId}/members`);
    const left = members.body.members.map((m: { address: string }) => m.address);
    expect(left).toContain(address(KEYS.alice));
    expect(left).not.toContain(address(KEYS.bob));
    expect(members.body.epoch.box_keys).toHaveLength(1);
    expect(members.body.rotate).toBe(false);
    // And Bob's browser shows nothing of the room.
    await bob.evaluate((id) => (window.location.hash = `#/room/${id}`), groupId);
    await bob.getByText("You are not in this room.").waitFor(WAIT);
    expect(await bob.getByText("after Bob left").count()).toBe(0);
  });

  it("the owner hands ownership over after confirming, and becomes an admin who may leave", async () => {
    const dave = address(KEYS.dave);
    const panel = alice.getByTestId("members-panel");
    const daveRow = panel.locator(`li[data-member="${dave.toLowerCase()}"]`);
    alice.once("dialog", (d) => void d.accept());
    await daveRow.getByRole("button", { name: "Make owner" }).click();
    await alice.getByText(`You handed ownership to ${shortAddr(dave)}`).waitFor(WAIT);
    await daveRow.getByTestId("role").filter({ hasText: "owner" }).waitFor(WAIT);
    await panel.locator(`li[data-member="${address(KEYS.alice).toLowerCase()}"]`).getByTestId("role").filter({ hasText: "admin" }).waitFor(WAIT);
    // Only the owner sets roles; an admin may still invite, and may leave.
    expect(await panel.getByRole("button", { name: /Make / }).count()).toBe(0);
    await panel.getByRole("button", { name: "Invite", exact: true }).waitFor(WAIT);
    await panel.getByRole("button", { name: "Leave group" }).waitFor(WAIT);
    await screenshot(alice, "20-ownership-handed-over");
  });
});

describe("error states", () => {
  it("asks to switch networks when the wallet is on a chain the node does not accept", async () => {
    const c = await newContext();
    const wallet = await installWallet(c, { privateKey: KEYS.dave, chainId: 5, name: "Dave Wallet" });
    const page = await c.newPage();
    await page.goto(node.url + "/");
    await page.getByRole("button", { name: "Sign in with Dave Wallet" }).click();
    const alert = page.locator('[data-problem="wrong_network"]');
    await alert.waitFor(WAIT);
    await alert.getByText("Wrong network").waitFor(WAIT);
    await alert.getByText("Chain 5").waitFor(WAIT);
    await screenshot(page, "11-wrong-network");
    expect(wallet.calls).not.toContain("personal_sign");

    await page.getByRole("button", { name: "Switch to Local (Anvil)" }).click();
    await page.getByTestId("me").waitFor(WAIT);
    expect(wallet.chainId).toBe(31337);
  });

  it("says so when the wallet rejects the signature, and works from the keyboard", async () => {
    const c = await newContext();
    const wallet = await installWallet(c, { privateKey: KEYS.dave, name: "Dave Wallet" });
    wallet.rejectNextSignature = true;
    const page = await c.newPage();
    await page.goto(node.url + "/");
    await page.getByRole("button", { name: "Sign in with Dave Wallet" }).waitFor(WAIT);
    // Keyboard only: Tab to the wallet button, Enter.
    for (let i = 0; i < 10; i++) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => document.activeElement?.textContent ?? "");
      if (focused.includes("Sign in with Dave Wallet")) break;
    }
    await page.keyboard.press("Enter");
    const alert = page.locator('[data-problem="rejected"]');
    await alert.waitFor(WAIT);
    await alert.getByText("You rejected the request in your wallet.").waitFor(WAIT);
    await screenshot(page, "12-wallet-rejected");

    // Trying again goes through (Dave already signed in once above: same device key).
    await page.getByRole("button", { name: "Sign in with Dave Wallet" }).click();
    await page.getByTestId("me").waitFor(WAIT);
  });

  it("shows the session expiring, then the node being unreachable", async () => {
    // A node whose tokens last 3 seconds.
    const shortNode = await startNode({ config: "[auth]\ntoken_ttl_secs = 3\n" });
    try {
      const c = await newContext();
      await installWallet(c, { privateKey: KEYS.alice, name: "Alice Wallet" });
      const page = await c.newPage();
      await signIn(page, shortNode.url, "Alice Wallet");
      const expired = page.locator('[data-problem="expired"]');
      await expired.waitFor({ timeout: 20_000 });
      await expired.getByText("Session expired").waitFor(WAIT);
      await screenshot(page, "13-session-expired");

      await shortNode.stop();
      await page.getByRole("button", { name: "Sign in with Alice Wallet" }).click();
      const unreachable = page.locator('[data-problem="unreachable"]');
      await unreachable.waitFor(WAIT);
      await unreachable.getByText("Node unreachable").waitFor(WAIT);
      await screenshot(page, "14-node-unreachable");
    } finally {
      await shortNode.stop();
    }
  });
});
