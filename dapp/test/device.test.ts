import "fake-indexeddb/auto";
import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { indexedDbKeyStore, loadOrCreateDeviceKeys } from "../src/crypto/device";

describe("device keys in IndexedDB", () => {
  it("generates keys once per wallet and finds them again after a reload", async () => {
    const factory = new IDBFactory();
    const a = await loadOrCreateDeviceKeys(indexedDbKeyStore(factory), "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2");
    // A new store object on the same database stands for a reloaded page.
    const again = await loadOrCreateDeviceKeys(indexedDbKeyStore(factory), "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2");
    expect(again.signSecret).toEqual(a.signSecret);
    expect(again.boxPublic).toEqual(a.boxPublic);
    expect(a.signPublic).toEqual(ed25519.getPublicKey(a.signSecret));
    expect(a.boxPublic).toEqual(x25519.getPublicKey(a.boxSecret));
  });

  it("gives another wallet other keys (a node ties a device key to one wallet)", async () => {
    const store = indexedDbKeyStore(new IDBFactory());
    const a = await loadOrCreateDeviceKeys(store, "0x" + "11".repeat(20));
    const b = await loadOrCreateDeviceKeys(store, "0x" + "22".repeat(20));
    expect(b.signPublic).not.toEqual(a.signPublic);
  });

  it("keeps the first keys when two tabs create them at once", async () => {
    const factory = new IDBFactory();
    const addr = "0x" + "33".repeat(20);
    const [x, y] = await Promise.all([
      loadOrCreateDeviceKeys(indexedDbKeyStore(factory), addr),
      loadOrCreateDeviceKeys(indexedDbKeyStore(factory), addr),
    ]);
    expect(x.signPublic).toEqual(y.signPublic);
  });
});
