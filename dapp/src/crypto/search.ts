// Keyed search tokens for end-to-end encrypted rooms (protocol/src/search.rs, dchat_protocol::search).
//
// - Words: NFKC, lowercase, split on every character that is not alphanumeric (Unicode
//   Alphabetic or Numeric, as Rust's char::is_alphanumeric), each cut to 32 characters.
// - Room search key: HKDF-SHA256(ikm = epoch key, no salt, info = "dchat/search/v1" || room id), 32 bytes.
// - Tokens: HMAC-SHA256(search key, "w:" || word) and HMAC-SHA256(search key, "p:" || prefix) for
//   each prefix of 3 up to all of the word's characters, truncated to 16 bytes; a message's set is
//   deduplicated and sorted.
// - A query sends one token per word (`p:` for a prefix search of three characters or more).

import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes, toHex, utf8, type Hex } from "../lib/bytes";

export const TOKEN_LEN = 16;
export const MIN_PREFIX_CHARS = 3;
export const MAX_WORD_CHARS = 32;
export const MAX_TOKENS = 4096;
const INFO = "dchat/search/v1";

const NOT_ALNUM = /[^\p{Alphabetic}\p{N}]+/u;

/** The normalized words of a text, in order. */
export function words(text: string): string[] {
  return text
    .normalize("NFKC")
    .toLowerCase()
    .split(NOT_ALNUM)
    .filter((w) => w.length > 0)
    .map((w) => Array.from(w).slice(0, MAX_WORD_CHARS).join(""));
}

/** A room's search key for one key epoch. */
export function searchKey(epochKey: Uint8Array, room: Uint8Array): Uint8Array {
  if (epochKey.length !== 32 || room.length !== 32) throw new Error("epoch key and room id are 32 bytes");
  return hkdf(sha256, epochKey, undefined, concatBytes(utf8(INFO), room), 32);
}

function mac(key: Uint8Array, tag: string, text: string): Uint8Array {
  return hmac(sha256, key, utf8(tag + text)).slice(0, TOKEN_LEN);
}

export function wordToken(key: Uint8Array, word: string): Uint8Array {
  return mac(key, "w:", word);
}

export function prefixToken(key: Uint8Array, prefix: string): Uint8Array {
  return mac(key, "p:", prefix);
}

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Every token of a message text, deduplicated and sorted (as `0x` hex). */
export function messageTokens(key: Uint8Array, text: string): Hex[] {
  const out: Uint8Array[] = [];
  for (const word of words(text)) {
    out.push(wordToken(key, word));
    const chars = Array.from(word);
    for (let n = MIN_PREFIX_CHARS; n <= chars.length; n++) out.push(prefixToken(key, chars.slice(0, n).join("")));
  }
  out.sort(compare);
  const unique = out.filter((t, i) => i === 0 || compare(t, out[i - 1]!) !== 0);
  return unique.slice(0, MAX_TOKENS).map(toHex);
}

/** One token per query word; prefix search for words of three characters or more. */
export function queryTokens(key: Uint8Array, query: string, prefix = true): Hex[] {
  const out = words(query).map((w) => toHex(prefix && Array.from(w).length >= MIN_PREFIX_CHARS ? prefixToken(key, w) : wordToken(key, w)));
  return out.filter((t, i) => i === 0 || t !== out[i - 1]);
}
