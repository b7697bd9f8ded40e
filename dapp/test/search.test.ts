import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../src/lib/bytes";
import { messageTokens, prefixToken, queryTokens, searchKey, wordToken, words } from "../src/crypto/search";
import { highlightParts, markedText } from "../src/api/indexer";

const key = () => searchKey(new Uint8Array(32).fill(7), new Uint8Array(32).fill(1));

describe("keyed search tokens (protocol/src/search.rs)", () => {
  it("matches the protocol's known answer", () => {
    expect(toHex(wordToken(key(), "hello"))).toBe("0x870fd2e30f953846814040021db3cd8c");
    const both = messageTokens(key(), "hel");
    expect(both).toHaveLength(2);
    expect(both).toContain(toHex(prefixToken(key(), "hel")));
    expect(both).toContain(toHex(wordToken(key(), "hel")));
  });

  it("normalizes case, width, ligatures and punctuation as the protocol does", () => {
    expect(words("Hello, WORLD! ｆｕｌｌ-width ﬁle")).toEqual(["hello", "world", "full", "width", "file"]);
    expect(words("Straße café_42")).toEqual(["straße", "café", "42"]);
    expect(words("  ...  ")).toEqual([]);
    expect(Array.from(words("a".repeat(100))[0]!)).toHaveLength(32);
  });

  it("finds a word by itself and by its prefixes, and sorts a message's tokens", () => {
    const k = key();
    const tokens = messageTokens(k, "Meeting moved to Thursday");
    for (const q of ["meeting", "THURSDAY", "moved to"]) for (const t of queryTokens(k, q, false)) expect(tokens).toContain(t);
    for (const q of ["meet", "thu", "Thursd"]) for (const t of queryTokens(k, q, true)) expect(tokens).toContain(t);
    expect(tokens).not.toContain(queryTokens(k, "friday", false)[0]);
    expect(tokens).not.toContain(queryTokens(k, "meet", false)[0]);
    expect([...tokens].sort()).toEqual(tokens);
  });

  const vectorsPath = fileURLToPath(new URL("../../protocol/testdata/search/vectors.json", import.meta.url));
  const have = existsSync(vectorsPath);
  it.skipIf(!have)("matches protocol/testdata/search/vectors.json (written by the Rust protocol crate)", () => {
    const v = JSON.parse(readFileSync(vectorsPath, "utf8")) as {
      cases: { text: string; room: string; epoch_key: string; search_key: string; words: string[]; message_tokens: string[]; query_word_tokens: string[]; query_prefix_tokens: string[] }[];
    };
    expect(v.cases.length).toBeGreaterThan(0);
    for (const c of v.cases) {
      const k = searchKey(fromHex(c.epoch_key), fromHex(c.room));
      expect(toHex(k), c.text).toBe(c.search_key);
      expect(words(c.text), c.text).toEqual(c.words);
      expect(messageTokens(k, c.text), c.text).toEqual(c.message_tokens);
      expect(queryTokens(k, c.text, false), c.text).toEqual(c.query_word_tokens);
      expect(queryTokens(k, c.text, true), c.text).toEqual(c.query_prefix_tokens);
    }
  });
});

describe("search highlights", () => {
  it("splits the indexer's <b> markers into plain text, never HTML", () => {
    expect(highlightParts("say <b>hello</b> to <b>x</b>")).toEqual([
      { text: "say ", match: false },
      { text: "hello", match: true },
      { text: " to ", match: false },
      { text: "x", match: true },
    ]);
    expect(highlightParts("<script>alert(1)</script>")).toEqual([{ text: "<script>alert(1)</script>", match: false }]);
  });
});

describe("marked search hits", () => {
  it("marks the highlight's words in the whole text, as whole words, ignoring case", () => {
    expect(markedText("See you at 5, seeyou", "<b>see</b> <b>you</b>")).toEqual([
      { text: "See", match: true },
      { text: " ", match: false },
      { text: "you", match: true },
      { text: " at 5, seeyou", match: false },
    ]);
    expect(markedText("a (b) c", "<b>(b)</b>")).toEqual([{ text: "a ", match: false }, { text: "(b)", match: true }, { text: " c", match: false }]);
    expect(markedText("plain", undefined)).toEqual([{ text: "plain", match: false }]);
  });
});
