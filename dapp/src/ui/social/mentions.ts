// Mentions in the composer: the "@…" being typed before the caret, and putting a member's full
// address in its place. The addresses end up in Body.mentions (protocol/social.ts parseMentions).

/** The "@prefix" right before the caret, if the caret is in one. */
export function mentionQuery(text: string, caret: number): { start: number; prefix: string } | undefined {
  const before = text.slice(0, caret);
  const m = /(^|\s)@(0?x?[0-9a-fA-F]{0,40})$/.exec(before);
  if (!m) return undefined;
  const prefix = m[2]!;
  // A whole address is typed: nothing to complete (Enter sends).
  if (/^0x[0-9a-fA-F]{40}$/.test(prefix)) return undefined;
  return { start: caret - prefix.length - 1, prefix: prefix.toLowerCase() };
}

/** Members whose address starts with the typed prefix (with or without 0x), at most `max`. */
export function mentionMatches(members: string[], prefix: string, self: string, max = 6): string[] {
  const p = prefix.toLowerCase().replace(/^0x/, "").replace(/^0$/, "");
  return members.filter((a) => a.toLowerCase() !== self.toLowerCase() && a.toLowerCase().slice(2).startsWith(p)).slice(0, max);
}

/** The text with "@prefix" replaced by "@<address> ", and where the caret goes. */
export function applyMention(text: string, start: number, caret: number, address: string): { text: string; caret: number } {
  const insert = `@${address} `;
  return { text: text.slice(0, start) + insert + text.slice(caret), caret: start + insert.length };
}

/** A text cut at its `@0x…` mentions: plain strings and the addresses mentioned, in order. */
export function splitMentions(text: string): (string | { address: string })[] {
  const out: (string | { address: string })[] = [];
  const re = /(^|[^0-9A-Za-z_])@(0x[0-9a-fA-F]{40})(?![0-9a-fA-F])/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    const at = m.index! + m[1]!.length;
    if (at > last) out.push(text.slice(last, at));
    out.push({ address: m[2]! });
    last = at + 1 + m[2]!.length;
  }
  if (last < text.length || out.length === 0) out.push(text.slice(last));
  return out;
}
