// Device keys: an Ed25519 key that signs envelopes and an X25519 key that receives wrapped room
// keys. Generated once per wallet on this browser and kept in IndexedDB; the wallet delegates them
// by listing the public keys in its sign-in message.

import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { randomBytes } from "../lib/bytes";

export interface DeviceKeys {
  /** Ed25519 secret key (32-byte seed). */
  signSecret: Uint8Array;
  /** Ed25519 public key: the `device_key` of every envelope this device signs. */
  signPublic: Uint8Array;
  /** X25519 secret key. */
  boxSecret: Uint8Array;
  /** X25519 public key: what HPKE wraps room keys to. */
  boxPublic: Uint8Array;
}

export function generateDeviceKeys(): DeviceKeys {
  const signSecret = randomBytes(32);
  const boxSecret = randomBytes(32);
  return deviceKeysFromSecrets(signSecret, boxSecret);
}

export function deviceKeysFromSecrets(signSecret: Uint8Array, boxSecret: Uint8Array): DeviceKeys {
  return {
    signSecret,
    signPublic: ed25519.getPublicKey(signSecret),
    boxSecret,
    boxPublic: x25519.getPublicKey(boxSecret),
  };
}

/** Where device keys live. One record per wallet: a node ties a device key to one wallet. */
export interface DeviceKeyStore {
  get(address: string): Promise<DeviceKeys | undefined>;
  /** Stores `keys` unless keys exist for `address`; returns the keys stored in the end. */
  putIfAbsent(address: string, keys: DeviceKeys): Promise<DeviceKeys>;
}

const DB_NAME = "dchat";
const DB_VERSION = 1;
const STORE = "device-keys";

interface StoredKeys {
  signSecret: Uint8Array;
  boxSecret: Uint8Array;
  createdAt: number;
}

function openDb(factory: IDBFactory): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = factory.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB open failed"));
    req.onblocked = () => reject(new Error("IndexedDB is blocked by another tab"));
  });
}

function run<T>(db: IDBDatabase, mode: IDBTransactionMode, op: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const req = op(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}

/** Device keys in IndexedDB (the browser's own, or another factory in tests). */
export function indexedDbKeyStore(factory: IDBFactory = indexedDB): DeviceKeyStore {
  let db: Promise<IDBDatabase> | undefined;
  const getDb = () => (db ??= openDb(factory));
  return {
    async get(address) {
      const rec = (await run(await getDb(), "readonly", (s) => s.get(address.toLowerCase()))) as
        | StoredKeys
        | undefined;
      if (!rec) return undefined;
      return deviceKeysFromSecrets(new Uint8Array(rec.signSecret), new Uint8Array(rec.boxSecret));
    },
    async putIfAbsent(address, keys) {
      const rec: StoredKeys = { signSecret: keys.signSecret, boxSecret: keys.boxSecret, createdAt: Date.now() };
      try {
        // `add` fails if another tab stored keys first; theirs win, so every tab signs alike.
        await run(await getDb(), "readwrite", (s) => s.add(rec, address.toLowerCase()));
        return keys;
      } catch (err) {
        const stored = await this.get(address);
        if (stored) return stored;
        throw err;
      }
    },
  };
}

/** The wallet's device keys on this browser, generated and stored on first use. */
export async function loadOrCreateDeviceKeys(store: DeviceKeyStore, address: string): Promise<DeviceKeys> {
  const existing = await store.get(address);
  if (existing) return existing;
  return store.putIfAbsent(address, generateDeviceKeys());
}
