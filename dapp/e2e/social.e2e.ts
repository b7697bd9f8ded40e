// The social layer in real Chromium against a real dchat-node: two wallets become contacts live,
// mentions ring the bell, read marks clear unread counts on every device of a wallet, typing
// shows and goes, strangers' direct messages wait under Requests, and a block hides a wallet.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { privateKeyToAccount } from "viem/accounts";
import { installWallet, KEYS, launchBrowser, screenshot, startNode, type RunningNode } from "./harness";

const WAIT = { timeout: 15_000 };

let node: RunningNode;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  node = await startNode();
  browser = await launchBrowser();
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await node?.stop();
});

const address = (key: `0x${string}`) => privateKeyToAccount(key).address;
const shortAddr = (a: string) => `${a.slice(0, 6)}…${a.slice(-4)}`;
const A = address(KEYS.alice);
const B = address(KEYS.bob);
const C = address(KEYS.carol);

/** A browser (its own device keys) signed in with the wallet of `key`. */
async function signedIn(key: `0x${string}`, name: string, viewport = { width: 1200, height: 800 }): Promise<Page> {
  const c = await browser.newContext({ viewport });
  c.setDefaultTimeout(15_000);
  contexts.push(c);
  await installWallet(c, { privateKey: key, name });
  const page = await c.newPage();
  await page.goto(node.url + "/");
  await page.getByRole("button", { name: `Sign in with ${name}` }).click();
  await page.getByTestId("me").waitFor(WAIT);
  await page.locator('[data-live="open"]').waitFor(WAIT);
  return page;
}

/** A GET to the node with the page's own session token. */
async function apiGet(page: Page, path: string): Promise<any> {
  return page.evaluate(async (p) => {
    const s = JSON.parse(localStorage.getItem("dchat.session.v1") ?? "{}") as { token?: string };
    const r = await fetch(p, { headers: { Authorization: `Bearer ${s.token}` } });
    return r.json();
  }, path);
}

const go = (page: Page, hash: string) => page.evaluate((h) => (window.location.hash = h), hash);

describe("social layer against a live node", () => {
  let alice: Page;
  let bob: Page;
  let groupId = "";
  let dmId = "";

  it("A asks B to be a contact by address; B sees it live, accepts, and both list each other", async () => {
    alice = await signedIn(KEYS.alice, "Alice Wallet");
    bob = await signedIn(KEYS.bob, "Bob Wallet");

    await alice.getByTestId("contacts-link").click();
    await alice.getByRole("heading", { name: "Contacts", exact: true }).waitFor(WAIT);
    await alice.getByLabel("Add a contact by address").fill(B);
    await alice.getByRole("button", { name: "Send request" }).click();
    await alice.getByText(`Contact request sent to ${shortAddr(B)}.`).waitFor(WAIT);
    await alice.getByTestId("outgoing").locator(`li[data-address="${B.toLowerCase()}"]`).waitFor(WAIT);

    // Bob hears it without reloading: the contacts link counts it, the bell rings.
    await bob.getByTestId("contacts-count").filter({ hasText: "1" }).waitFor(WAIT);
    await bob.getByTestId("bell-count").filter({ hasText: "1" }).waitFor(WAIT);
    await screenshot(bob, "social-01-request-arrives");
    await bob.getByTestId("contacts-link").click();
    await bob.getByTestId("incoming").getByText(shortAddr(A)).waitFor(WAIT);
    await screenshot(bob, "social-02-incoming-request");
    await bob.getByRole("button", { name: `Accept ${A}` }).click();

    await bob.getByTestId("contacts").locator(`li[data-address="${A.toLowerCase()}"]`).waitFor(WAIT);
    await alice.getByTestId("contacts").locator(`li[data-address="${B.toLowerCase()}"]`).waitFor(WAIT);
    expect(await alice.getByTestId("outgoing").count()).toBe(0);
    expect(await bob.getByTestId("contacts-count").count()).toBe(0);
    // The node agrees, and each sees the other online.
    const ac = await apiGet(alice, "/v1/contacts");
    expect(ac.contacts.map((c: { address: string }) => c.address)).toEqual([B]);
    await alice.getByTestId("contacts").locator('[data-testid="presence"][data-status="online"]').waitFor(WAIT);
    // Alice got a notification that Bob accepted.
    await alice.getByTestId("bell").click();
    await alice.getByTestId("notifications").getByText(`${shortAddr(B)} accepted your contact request`).waitFor(WAIT);
    await screenshot(alice, "social-03-contacts-and-notification");
    // Marked read one by one (a signed NotificationsRead naming its id).
    await alice.getByRole("button", { name: `Mark read: ${shortAddr(B)} accepted your contact request` }).click();
    await expect.poll(() => alice.getByTestId("bell-count").count(), WAIT).toBe(0);
    await alice.keyboard.press("Escape");
    expect(await alice.getByTestId("notifications").count()).toBe(0);
  });

  it("a mention in a shared room rings the bell live; marking all read takes it to 0", async () => {
    await go(alice, "#/new/group");
    await alice.getByLabel("Name").fill("Plans");
    await alice.getByLabel(/Members/).fill(B);
    await alice.getByRole("button", { name: "Create group" }).click();
    await alice.getByRole("heading", { name: "Plans" }).waitFor(WAIT);
    groupId = (await alice.getByTestId("room-id").textContent())!.trim();

    // Bob is invited (a notification); he clears the bell first.
    await go(bob, "#/");
    await bob.getByRole("link", { name: /Plans/ }).waitFor(WAIT);
    await bob.getByTestId("bell").click();
    await bob.getByTestId("notifications").getByText(`${shortAddr(A)} added you to Plans`).waitFor(WAIT);
    await bob.getByRole("button", { name: "Mark all read" }).click();
    await expect.poll(() => bob.getByTestId("bell-count").count(), WAIT).toBe(0);
    await bob.getByRole("button", { name: "Close notifications" }).click();

    // Alice mentions Bob by picking him after "@".
    const composer = alice.getByRole("textbox", { name: "Message Plans" });
    await composer.click();
    await composer.pressSequentially("lunch at noon? @0x7099");
    const picker = alice.getByRole("listbox", { name: "Mention a member" });
    await picker.getByRole("option", { name: `@${B}` }).waitFor(WAIT);
    await screenshot(alice, "social-04-mention-picker");
    await composer.press("Tab");
    expect(await composer.inputValue()).toBe(`lunch at noon? @${B} `);
    await composer.press("Enter");
    await alice.locator('li.msg[data-status="sent"]', { hasText: "lunch at noon?" }).waitFor(WAIT);

    // Bob, in his room list, hears it: the bell, and the room's unread badge.
    await bob.getByTestId("bell-count").filter({ hasText: "1" }).waitFor(WAIT);
    const plans = bob.locator(`a[data-room-id="${groupId}"]`);
    await plans.getByTestId("unread").filter({ hasText: "1" }).waitFor(WAIT);
    // The tab's title counts unread messages and notifications.
    await expect.poll(() => bob.title(), WAIT).toBe("(2) dchat");
    await bob.getByTestId("bell").click();
    const mention = bob.getByTestId("notifications").locator('li[data-kind="mention"]');
    await mention.getByText(`${shortAddr(A)} mentioned you`).waitFor(WAIT);
    expect(await mention.getAttribute("data-read")).toBe("false");
    await screenshot(bob, "social-05-bell-mention");
    await bob.getByRole("button", { name: "Mark all read" }).click();
    await expect.poll(() => bob.getByTestId("bell-count").count(), WAIT).toBe(0);
    await expect.poll(() => mention.getAttribute("data-read"), WAIT).toBe("true");
    await expect.poll(async () => (await apiGet(bob, "/v1/notifications?unread=true")).unread, WAIT).toBe(0);
    await bob.keyboard.press("Escape");
  });

  it("the unread badge is the node's: it clears when the room is opened, on the wallet's other device too", async () => {
    // Bob's second device shows the same count.
    const bobLaptop = await signedIn(KEYS.bob, "Bob Laptop Wallet");
    const laptopPlans = bobLaptop.locator(`a[data-room-id="${groupId}"]`);
    await laptopPlans.getByTestId("unread").filter({ hasText: "1" }).waitFor(WAIT);
    await screenshot(bobLaptop, "social-06-unread-other-device");

    // Opening the room signs a read mark: the badge clears here, on the laptop live, and on the node.
    await bob.locator(`a[data-room-id="${groupId}"]`).click();
    await bob.locator("li.msg", { hasText: "lunch at noon?" }).waitFor(WAIT);
    expect(await bob.locator("li.msg.mentions-me", { hasText: "lunch at noon?" }).count()).toBe(1);
    // The author's name opens their card: a contact, online.
    await bob.locator("li.msg", { hasText: "lunch at noon?" }).getByRole("button", { name: `${shortAddr(A)}: contact and presence` }).click();
    const card = bob.getByTestId("author-card");
    await card.getByTestId("relation").filter({ hasText: "contact" }).waitFor(WAIT);
    await card.locator('[data-testid="presence"][data-status="online"]').waitFor(WAIT);
    await expect.poll(async () => (await apiGet(bob, "/v1/unread")).rooms.find((r: { room: string }) => r.room === groupId)?.unread, WAIT).toBe(0);
    await expect.poll(() => laptopPlans.getByTestId("unread").count(), WAIT).toBe(0);
    await expect.poll(() => bob.title(), WAIT).toBe("dchat");
    // Alice's latest message is marked seen.
    await alice.getByTestId("seen-by").getByText(`Seen by ${shortAddr(B)}`).waitFor(WAIT);
    await screenshot(alice, "social-07-seen-by");

    // A message while Bob looks elsewhere counts again, on both devices.
    await go(bob, "#/contacts");
    await alice.getByRole("textbox", { name: "Message Plans" }).fill("one more thing");
    await alice.getByRole("textbox", { name: "Message Plans" }).press("Enter");
    await bob.locator(`a[data-room-id="${groupId}"]`).getByTestId("unread").filter({ hasText: "1" }).waitFor(WAIT);
    await laptopPlans.getByTestId("unread").filter({ hasText: "1" }).waitFor(WAIT);
    await bobLaptop.context().close();
  });

  it("shows who is typing while they type, and stops showing it after", async () => {
    await go(bob, `#/room/${groupId}`);
    await bob.locator("li.msg", { hasText: "one more thing" }).waitFor(WAIT);
    const typing = bob.getByTestId("typing");
    expect((await typing.textContent())!.trim()).toBe("");

    const composer = alice.getByRole("textbox", { name: "Message Plans" });
    await composer.pressSequentially("let me think", { delay: 40 });
    await typing.getByText(`${shortAddr(A)} is typing…`).waitFor(WAIT);
    await screenshot(bob, "social-08-typing");
    // Cleared without sending: the indicator goes (a stop, or the node's 6 s hold at the latest).
    await composer.fill("");
    await expect.poll(async () => (await typing.textContent())!.trim(), { timeout: 12_000 }).toBe("");

    // Typed and sent: the message ends it too. Bob answers with a reply.
    await composer.pressSequentially("ok, 12:30", { delay: 30 });
    await typing.getByText(`${shortAddr(A)} is typing…`).waitFor(WAIT);
    await composer.press("Enter");
    const sent = bob.locator("li.msg", { hasText: "ok, 12:30" });
    await sent.waitFor(WAIT);
    await expect.poll(async () => (await typing.textContent())!.trim(), { timeout: 12_000 }).toBe("");
    await sent.getByRole("button", { name: `Reply to ${shortAddr(A)}` }).click();
    await bob.getByTestId("replying").getByText("ok, 12:30").waitFor(WAIT);
    await bob.getByRole("textbox", { name: "Message Plans" }).fill("works for me");
    await bob.getByRole("textbox", { name: "Message Plans" }).press("Enter");
    const reply = alice.locator("li.msg", { hasText: "works for me" });
    await reply.getByTestId("reply-context").getByText("You: ok, 12:30").waitFor(WAIT);
    // Alice is notified of the reply (she is looking at the room; the bell still counts it).
    await alice.getByTestId("bell-count").filter({ hasText: "1" }).waitFor(WAIT);
    await alice.getByTestId("bell").click();
    await alice.getByTestId("notifications").locator('li[data-kind="reply"]').getByText(`${shortAddr(B)} replied to your message`).waitFor(WAIT);
    await alice.keyboard.press("Escape");
    await screenshot(alice, "social-09-reply");
  });

  it("a muted room's mentions stay off the bell until it is unmuted", async () => {
    await go(bob, `#/room/${groupId}`);
    const mute = bob.getByTestId("mute");
    await mute.click();
    await expect.poll(() => mute.getAttribute("aria-pressed"), WAIT).toBe("true");
    expect((await apiGet(bob, "/v1/mutes")).rooms).toEqual([groupId]);
    await go(bob, "#/");
    const before = (await apiGet(bob, "/v1/notifications?unread=true")).unread;
    const composer = alice.getByRole("textbox", { name: "Message Plans" });
    // A whole address typed by hand is a mention too (and Enter sends it).
    await composer.fill(`quiet please @${B}`);
    await composer.press("Enter");
    await alice.locator('li.msg[data-status="sent"]', { hasText: "quiet please" }).waitFor(WAIT);
    await bob.locator(`a[data-room-id="${groupId}"]`).getByTestId("unread").filter({ hasText: "1" }).waitFor(WAIT);
    expect(await bob.locator(`a[data-room-id="${groupId}"]`).getByLabel("muted", { exact: true }).count()).toBe(1);
    await screenshot(bob, "social-10-muted-room");
    await bob.waitForTimeout(1_000);
    expect((await apiGet(bob, "/v1/notifications?unread=true")).unread).toBe(before);
    expect(await bob.getByTestId("bell-count").count()).toBe(before === 0 ? 0 : 1);
    await go(bob, `#/room/${groupId}`);
    await bob.getByTestId("mute").click();
    await expect.poll(() => bob.getByTestId("mute").getAttribute("aria-pressed"), WAIT).toBe("false");
    expect((await apiGet(bob, "/v1/mutes")).rooms).toEqual([]);
  });

  it("a stranger's direct message waits under Requests until accepted", async () => {
    // The stranger is on a phone.
    const carol = await signedIn(KEYS.carol, "Carol Wallet", { width: 390, height: 844 });
    await carol.getByRole("link", { name: "New direct message" }).click();
    await carol.getByLabel("Wallet address").fill(B);
    await carol.getByRole("button", { name: "Start" }).click();
    await carol.getByRole("heading", { name: shortAddr(B) }).waitFor(WAIT);
    const carolDm = (await carol.getByTestId("room-id").textContent())!.trim();
    await carol.getByRole("textbox", { name: `Message ${shortAddr(B)}` }).fill("hi Bob, we met at the meetup");
    await carol.getByRole("textbox", { name: `Message ${shortAddr(B)}` }).press("Enter");
    await carol.locator('li.msg[data-status="sent"]', { hasText: "we met at the meetup" }).waitFor(WAIT);
    await screenshot(carol, "social-10-stranger-direct-message-phone");

    await go(bob, "#/");
    const requests = bob.getByTestId("requests");
    await requests.locator(`li[data-room-id="${carolDm}"]`).waitFor(WAIT);
    // Not among the rooms.
    expect(await bob.locator(`.room-list a[data-room-id="${carolDm}"]`).count()).toBe(0);
    await screenshot(bob, "social-10-requests");
    await carol.getByTestId("contacts-link").click();
    await carol.getByRole("heading", { name: "Contacts", exact: true }).waitFor(WAIT);
    await requests.getByRole("button", { name: `Accept the conversation with ${C}` }).click();
    await bob.locator(`a[data-room-id="${carolDm}"]`).waitFor(WAIT);
    expect(await bob.getByTestId("requests").count()).toBe(0);
    // Accepting asked Carol to be a contact.
    await carol.getByTestId("contacts-count").filter({ hasText: "1" }).waitFor(WAIT);
    await carol.getByTestId("incoming").getByText(shortAddr(B)).waitFor(WAIT);
    await screenshot(carol, "social-10-contacts-phone");
    await carol.context().close();
  });

  it("B blocks A after a confirmation: A's direct messages never reach B", async () => {
    // They talk in a direct room first.
    await go(alice, "#/contacts");
    await alice.getByRole("button", { name: `Message ${B}` }).click();
    await alice.getByRole("heading", { name: shortAddr(B) }).waitFor(WAIT);
    dmId = (await alice.getByTestId("room-id").textContent())!.trim();
    await alice.getByRole("textbox", { name: `Message ${shortAddr(B)}` }).fill("before the block");
    await alice.getByRole("textbox", { name: `Message ${shortAddr(B)}` }).press("Enter");
    await go(bob, `#/room/${dmId}`);
    await bob.locator("li.msg", { hasText: "before the block" }).waitFor(WAIT);

    // Bob blocks Alice from his contacts, confirming the dialog.
    await go(bob, "#/contacts");
    let asked = "";
    bob.once("dialog", (d) => {
      asked = d.message();
      void d.accept();
    });
    await bob.getByRole("button", { name: `Block ${A}` }).click();
    await bob.getByTestId("blocked").locator(`li[data-address="${A.toLowerCase()}"]`).waitFor(WAIT);
    expect(asked).toContain(`Block ${A}?`);
    expect(await bob.getByTestId("contacts").count()).toBe(0);
    await screenshot(bob, "social-11-blocked");
    // Alice's list drops Bob (live).
    await go(alice, "#/contacts");
    await expect.poll(() => alice.getByTestId("contacts").count(), WAIT).toBe(0);

    // As on the node, a blocked wallet's messages leave Bob's view, the earlier ones too.
    await go(bob, `#/room/${dmId}`);
    await bob.getByRole("heading", { name: shortAddr(A) }).waitFor(WAIT);
    await expect.poll(() => bob.locator("li.msg", { hasText: "before the block" }).count(), WAIT).toBe(0);

    // Alice writes; the node stores it, Bob never sees it, live or after a reload.
    await go(alice, `#/room/${dmId}`);
    await alice.getByRole("textbox", { name: `Message ${shortAddr(B)}` }).fill("after the block");
    await alice.getByRole("textbox", { name: `Message ${shortAddr(B)}` }).press("Enter");
    await alice.locator('li.msg[data-status="sent"]', { hasText: "after the block" }).waitFor(WAIT);
    await bob.waitForTimeout(2_000);
    expect(await bob.locator("li.msg", { hasText: "after the block" }).count()).toBe(0);
    await bob.reload();
    await bob.getByRole("heading", { name: shortAddr(A) }).waitFor(WAIT);
    await bob.getByText("Start of the room").waitFor(WAIT);
    expect(await bob.locator("li.msg", { hasText: "after the block" }).count()).toBe(0);
    expect(await bob.locator("li.msg", { hasText: "before the block" }).count()).toBe(0);
    const bobView = await apiGet(bob, `/v1/rooms/${dmId}/messages`);
    expect(bobView.messages.filter((m: { sender: string; kind: string }) => m.sender === A && m.kind === "text")).toHaveLength(0);
    // Alice's own view holds both.
    const aliceView = await apiGet(alice, `/v1/rooms/${dmId}/messages`);
    expect(aliceView.messages.filter((m: { sender: string; kind: string }) => m.sender === A && m.kind === "text")).toHaveLength(2);
    await screenshot(bob, "social-12-block-hides-messages");

    // Unblocking is offered on the blocked list.
    await go(bob, "#/contacts");
    bob.once("dialog", (d) => void d.accept());
    await bob.getByRole("button", { name: `Unblock ${A}` }).click();
    await expect.poll(() => bob.getByTestId("blocked").count(), WAIT).toBe(0);
  });

  it("hides its own presence when asked: the contact sees it offline", async () => {
    // Carol is Bob's remaining contact request; Alice and Bob are no longer contacts, so make
    // them contacts again and check Alice sees Bob's hidden presence as offline.
    await go(alice, "#/contacts");
    await alice.getByLabel("Add a contact by address").fill(B);
    await alice.getByRole("button", { name: "Send request" }).click();
    await go(bob, "#/contacts");
    await bob.getByRole("button", { name: `Accept ${A}` }).click();
    const bobRow = alice.getByTestId("contacts").locator(`li[data-address="${B.toLowerCase()}"]`);
    await bobRow.locator('[data-testid="presence"][data-status="online"]').waitFor(WAIT);
    await bob.getByLabel(/Hide my presence/).check();
    await bobRow.locator('[data-testid="presence"][data-status="offline"]').waitFor(WAIT);
    await expect.poll(async () => (await apiGet(bob, "/v1/settings")).hide_presence, WAIT).toBe(true);
    // The node answers offline with no last-seen time.
    await expect.poll(async () => (await apiGet(alice, `/v1/presence?addresses=${B}`)).presence[0], WAIT).toEqual({ address: B, status: "offline", last_seen_ms: null });
    await bob.getByLabel(/Hide my presence/).uncheck();
    await bobRow.locator('[data-testid="presence"][data-status="online"]').waitFor(WAIT);
    // Signing out says offline at once, with the last-seen time.
    await bob.getByRole("button", { name: "Sign out" }).click();
    await bobRow.locator('[data-testid="presence"][data-status="offline"]').waitFor(WAIT);
    expect(await bobRow.getByText(/offline · last seen/).count()).toBe(1);
    await screenshot(alice, "social-13-presence-hidden");
  });

  it("pages back through older notifications past the first fifty", async () => {
    // Bob, signed in again, mentions Alice 55 times in the group they share.
    const bobAgain = await signedIn(KEYS.bob, "Bob Again Wallet");
    await go(bobAgain, `#/room/${groupId}`);
    const composer = bobAgain.getByRole("textbox", { name: "Message Plans" });
    for (let i = 0; i < 55; i++) {
      await composer.fill(`page ${i} @${A} `);
      await composer.press("Enter");
    }
    await bobAgain.locator('li.msg[data-status="sent"]', { hasText: "page 54" }).waitFor(WAIT);
    await expect.poll(async () => (await apiGet(alice, "/v1/notifications?kind=mention&limit=50")).notifications.length, WAIT).toBe(50);

    await go(alice, "#/");
    await alice.getByTestId("bell").click();
    const panel = alice.getByTestId("notifications");
    const items = panel.locator("li.notification");
    await expect.poll(() => items.count(), WAIT).toBe(50);
    // Everything Alice has, read from the node page by page.
    let total = 0;
    let before: string | undefined;
    do {
      const page = await apiGet(alice, `/v1/notifications?limit=50${before ? `&before=${before}` : ""}`);
      total += page.notifications.length;
      before = page.next;
    } while (before);
    expect(total).toBeGreaterThan(55);
    expect(total).toBeLessThanOrEqual(100);
    await panel.getByRole("button", { name: "Older notifications" }).click();
    // The rest, once each, below the first fifty; then nothing older to ask for.
    await expect.poll(() => items.count(), WAIT).toBe(total);
    await expect.poll(() => panel.getByRole("button", { name: "Older notifications" }).count(), WAIT).toBe(0);
    const kinds = await items.evaluateAll((els) => els.map((e) => e.getAttribute("data-kind")));
    expect(kinds.filter((k) => k === "mention").length).toBeGreaterThanOrEqual(55);
    await screenshot(alice, "social-14-older-notifications");
    await alice.getByRole("button", { name: "Close notifications" }).click();
  });
});
