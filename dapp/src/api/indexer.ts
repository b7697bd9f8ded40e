// Client of the search indexer (dchat-indexer, docs/indexer.md). The node names it in
// `GET /v1/info` (`[dapp] indexer_url`); it takes the node's access token.

import type { Hex } from "../lib/bytes";
import { ApiError, NodeUnreachableError } from "./client";

/** One message found. `text` and `highlight` only for public channels. */
export interface MessageHit {
  id: Hex;
  room: Hex;
  room_name: string;
  sender: string;
  timestamp_ms: number;
  text?: string;
  /** Matches between `<b>` and `</b>`; the rest is raw text (not HTML-escaped). */
  highlight?: string;
  rank?: number;
}

export interface MessageResults {
  results: MessageHit[];
  next_cursor?: string;
}

export interface UserHit {
  address: string;
  name?: string;
  verified: boolean;
  score: number;
}

const TIMEOUT_MS = 15_000;

export class IndexerClient {
  constructor(
    readonly base: string,
    private readonly token: () => string | undefined,
    private readonly onSessionProblem?: (err: ApiError) => void,
  ) {}

  /** Full text over public channels (one channel when `room` is given). */
  searchMessages(q: string, opts: { room?: string; cursor?: string; limit?: number } = {}): Promise<MessageResults> {
    const p = new URLSearchParams({ q });
    if (opts.room) p.set("room", opts.room);
    if (opts.cursor) p.set("cursor", opts.cursor);
    if (opts.limit) p.set("limit", String(opts.limit));
    return this.request("GET", `/v1/search/messages?${p}`);
  }

  /** Keyed-token search in one encrypted room: one list of alternatives per query word. */
  searchTokens(room: string, words: string[][], opts: { cursor?: string; limit?: number } = {}): Promise<MessageResults> {
    const p = new URLSearchParams({ room });
    for (const alts of words) p.append("tokens", alts.join(","));
    if (opts.cursor) p.set("cursor", opts.cursor);
    if (opts.limit) p.set("limit", String(opts.limit));
    return this.request("GET", `/v1/search/messages?${p}`);
  }

  async searchUsers(q: string, limit = 20): Promise<UserHit[]> {
    const r = await this.request<{ results: UserHit[] }>("GET", `/v1/search/users?${new URLSearchParams({ q, limit: String(limit) })}`);
    return r.results;
  }

  /** Attaches the keyed tokens of a message this wallet sent to an encrypted room. */
  uploadTokens(messageId: string, tokens: string[]): Promise<{ message_id: string; stored: number }> {
    return this.request("POST", "/v1/search/tokens", { message_id: messageId, tokens });
  }

  private async request<T>(method: string, path: string, json?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = this.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (json !== undefined) headers["Content-Type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers,
        body: json === undefined ? undefined : JSON.stringify(json),
        signal: AbortSignal.timeout(TIMEOUT_MS),
        credentials: "omit",
        mode: "cors",
      });
    } catch (err) {
      throw new SearchUnavailableError(`cannot reach the search service (${(err as Error).message})`);
    }
    if (res.ok) return (await res.json()) as T;
    let code = `http_${res.status}`;
    let message = res.statusText || `HTTP ${res.status}`;
    try {
      const e = (await res.json()) as { error?: unknown; message?: unknown };
      if (typeof e.error === "string") code = e.error;
      if (typeof e.message === "string") message = e.message;
    } catch {
      throw new SearchUnavailableError(`the search service is not answering (HTTP ${res.status})`);
    }
    const err = new ApiError(res.status, code, message);
    if (err.isSessionProblem && token) this.onSessionProblem?.(err);
    throw err;
  }
}

/** The indexer did not answer (down, blocked by CORS, or not configured right). */
export class SearchUnavailableError extends NodeUnreachableError {
  override name = "SearchUnavailableError";
}

/** Splits an indexer highlight into plain and matched pieces (never parsed as HTML). */
export function highlightParts(highlight: string): { text: string; match: boolean }[] {
  const out: { text: string; match: boolean }[] = [];
  const re = /<b>([\s\S]*?)<\/b>/g;
  let last = 0;
  for (let m = re.exec(highlight); m; m = re.exec(highlight)) {
    if (m.index > last) out.push({ text: highlight.slice(last, m.index), match: false });
    if (m[1]) out.push({ text: m[1], match: true });
    last = m.index + m[0].length;
  }
  if (last < highlight.length) out.push({ text: highlight.slice(last), match: false });
  return out;
}

/**
 * The whole text of a hit with the indexer's matches marked: the highlight may be an excerpt, so
 * the words it marks are found again in the full text (case-insensitively, whole words).
 */
export function markedText(text: string, highlight: string | undefined): { text: string; match: boolean }[] {
  if (!highlight) return [{ text, match: false }];
  const terms = [...new Set(highlightParts(highlight).filter((p) => p.match).map((p) => p.text.trim().toLowerCase()).filter(Boolean))];
  if (terms.length === 0) return [{ text, match: false }];
  const escaped = terms.sort((a, b) => b.length - a.length).map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(`(?<![\\p{L}\\p{N}])(${escaped.join("|")})(?![\\p{L}\\p{N}])`, "giu");
  const out: { text: string; match: boolean }[] = [];
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) out.push({ text: text.slice(last, m.index), match: false });
    out.push({ text: m[0], match: true });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last), match: false });
  return out.length > 0 ? out : [{ text, match: false }];
}
