// HTTP client of a dchat-node. The dApp is served by the node, so requests go to its own origin.

import { encodeEnvelope, type Envelope } from "../protocol/envelope";
import type { NonceReply } from "../protocol/siwe";
import { Kind } from "../protocol/envelope";
import type { ChannelEntry, ControlReply, ErrorBody, MediaUploadReply, MembersReply, MessagePage, NodeInfo, PostReply, ProofReply, Room, SignInReply, WrappedKeyJson } from "./types";

/** The endpoint of each control kind: `POST /v1/rooms/{id}/{path}`. */
const CONTROL_PATH: Record<number, string> = {
  [Kind.Invite]: "invites",
  [Kind.Leave]: "leave",
  [Kind.Remove]: "removals",
  [Kind.SetRole]: "roles",
  [Kind.SetPolicy]: "policy",
  [Kind.RotateKey]: "keys",
};

/** A reply with an error status: `code` is the node's stable snake_case code. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSecs?: number,
  ) {
    super(message);
  }

  /** The token is missing, expired or no longer accepted: sign in again. */
  get isSessionProblem(): boolean {
    return this.status === 401 && (this.code === "unauthorized" || this.code.startsWith("token_"));
  }
}

/** The node did not answer (down, unreachable, or too slow). */
export class NodeUnreachableError extends Error {
  override name = "NodeUnreachableError";
}

const TIMEOUT_MS = 15_000;

export interface NodeClientOptions {
  /** Origin of the node; empty means this page's origin. */
  base?: string;
  /** The access token to send, if signed in. */
  token?: () => string | undefined;
  /** Called when the node refuses the token (expired, or from a replaced node key). */
  onSessionProblem?: (err: ApiError) => void;
}

export class NodeClient {
  constructor(private readonly opts: NodeClientOptions = {}) {}

  nonce(): Promise<NonceReply> {
    return this.request("GET", "/v1/auth/nonce", { auth: false });
  }

  signIn(message: string, signature: string): Promise<SignInReply> {
    return this.request("POST", "/v1/auth/siwe", { json: { message, signature }, auth: false });
  }

  /** The node and the services around it (indexer, gateway, contracts); a node without the route gives none. */
  async info(): Promise<NodeInfo> {
    try {
      return await this.request<NodeInfo>("GET", "/v1/info", { auth: false });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return { domain: "", uri: "", chain_ids: [], indexer_url: null, gateway_url: null, contracts: [] };
      throw err;
    }
  }

  /** The Merkle inclusion proof of an anchored message (404 `proof_not_found` until anchored). */
  proof(id: string): Promise<ProofReply> {
    return this.request("GET", `/v1/messages/${id}/proof`);
  }

  /**
   * Uploads a file into a room (`POST /v1/media?room=`), reporting progress. XMLHttpRequest,
   * because fetch does not report upload progress.
   */
  uploadMedia(room: string, body: Uint8Array | Blob, contentType: string, onProgress?: (sent: number, total: number) => void): Promise<MediaUploadReply> {
    const token = this.opts.token?.();
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${this.opts.base ?? ""}/v1/media?room=${room}`);
      xhr.setRequestHeader("Content-Type", contentType || "application/octet-stream");
      xhr.setRequestHeader("Accept", "application/json");
      if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      xhr.upload.onprogress = (e) => onProgress?.(e.loaded, e.lengthComputable ? e.total : 0);
      xhr.onerror = () => reject(new NodeUnreachableError("cannot reach the node (upload failed)"));
      xhr.ontimeout = () => reject(new NodeUnreachableError("the upload timed out"));
      xhr.onload = () => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(xhr.responseText);
        } catch {
          parsed = undefined;
        }
        if (xhr.status >= 200 && xhr.status < 300 && parsed) return resolve(parsed as MediaUploadReply);
        const e = (parsed ?? {}) as Partial<ErrorBody>;
        if (typeof e.error !== "string") return reject(new NodeUnreachableError(`the node is not answering (HTTP ${xhr.status})`));
        const err = new ApiError(xhr.status, e.error, e.message ?? `HTTP ${xhr.status}`);
        if (err.isSessionProblem && token) this.opts.onSessionProblem?.(err);
        reject(err);
      };
      xhr.send(body instanceof Uint8Array ? new Blob([new Uint8Array(body)]) : body);
    });
  }

  /** Downloads a file (`GET /v1/media/{cid}`). */
  async media(cid: string): Promise<{ bytes: Uint8Array; type: string }> {
    const headers: Record<string, string> = {};
    const token = this.opts.token?.();
    if (token) headers.Authorization = `Bearer ${token}`;
    let res: Response;
    try {
      res = await fetch(`${this.opts.base ?? ""}/v1/media/${encodeURIComponent(cid)}`, { headers, credentials: "omit", signal: AbortSignal.timeout(60_000) });
    } catch (err) {
      throw new NodeUnreachableError(`cannot reach the node (${(err as Error).message})`);
    }
    if (!res.ok) {
      let code = `http_${res.status}`;
      let message = `HTTP ${res.status}`;
      try {
        const e = (await res.json()) as ErrorBody;
        code = e.error;
        message = e.message;
      } catch {
        // not JSON
      }
      throw new ApiError(res.status, code, message);
    }
    return { bytes: new Uint8Array(await res.arrayBuffer()), type: res.headers.get("Content-Type") ?? "application/octet-stream" };
  }

  async rooms(): Promise<Room[]> {
    const r = await this.request<{ rooms: Room[] }>("GET", "/v1/rooms");
    return r.rooms;
  }

  room(id: string): Promise<Room> {
    return this.request("GET", `/v1/rooms/${id}`);
  }

  /** Creates a room from a signed `CreateRoom` envelope. */
  createRoom(env: Envelope): Promise<Room> {
    return this.request("POST", "/v1/rooms", { envelope: env });
  }

  /** Joins a channel with a signed `Join` envelope. */
  join(room: string, env: Envelope): Promise<Room> {
    return this.request("POST", `/v1/rooms/${room}/join`, { envelope: env });
  }

  /** Posts one signed control envelope to the endpoint of its kind. */
  control(room: string, kind: number, env: Envelope): Promise<ControlReply> {
    const path = CONTROL_PATH[kind];
    if (!path) throw new Error(`kind ${kind} is not a control kind`);
    return this.request("POST", `/v1/rooms/${room}/${path}`, { envelope: env });
  }

  /** Members, roles, their devices' box keys and the current key epoch. */
  members(room: string): Promise<MembersReply> {
    return this.request("GET", `/v1/rooms/${room}/members`);
  }

  /** The room's epoch keys wrapped for the device with X25519 key `boxKey`. */
  async keys(room: string, boxKey: string): Promise<WrappedKeyJson[]> {
    const r = await this.request<{ keys: WrappedKeyJson[] }>("GET", `/v1/rooms/${room}/keys?box_key=${boxKey}`);
    return r.keys;
  }

  /** The public channel directory. */
  async channels(): Promise<ChannelEntry[]> {
    const r = await this.request<{ channels: ChannelEntry[] }>("GET", "/v1/channels");
    return r.channels;
  }

  /** Posts a signed message envelope. */
  post(room: string, env: Envelope): Promise<PostReply> {
    return this.request("POST", `/v1/rooms/${room}/messages`, { envelope: env });
  }

  messages(room: string, page: { before?: string; after?: string; limit?: number } = {}): Promise<MessagePage> {
    const q = new URLSearchParams();
    if (page.before) q.set("before", page.before);
    if (page.after) q.set("after", page.after);
    if (page.limit) q.set("limit", String(page.limit));
    const qs = q.toString();
    return this.request("GET", `/v1/rooms/${room}/messages${qs ? `?${qs}` : ""}`);
  }

  /** A JSON route with an optional signed envelope (the social routes, src/api/social.ts). */
  call<T>(method: "GET" | "POST", path: string, envelope?: Envelope): Promise<T> {
    return this.request(method, path, envelope ? { envelope } : {});
  }

  /** The WebSocket URL of this node. */
  wsUrl(): string {
    const base = new URL(this.opts.base || window.location.origin);
    base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    base.pathname = "/v1/ws";
    return base.toString();
  }

  private async request<T>(
    method: string,
    path: string,
    opt: { json?: unknown; envelope?: Envelope; auth?: boolean } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    let body: BodyInit | undefined;
    if (opt.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opt.json);
    } else if (opt.envelope) {
      headers["Content-Type"] = "application/x-protobuf";
      body = new Uint8Array(encodeEnvelope(opt.envelope));
    }
    const token = opt.auth === false ? undefined : this.opts.token?.();
    if (token) headers.Authorization = `Bearer ${token}`;

    let res: Response;
    try {
      res = await fetch(`${this.opts.base ?? ""}${path}`, {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
        credentials: "omit",
      });
    } catch (err) {
      throw new NodeUnreachableError(`cannot reach the node (${(err as Error).message})`);
    }
    if (res.ok) return (await res.json()) as T;

    let code = "http_" + res.status;
    let message = res.statusText || `HTTP ${res.status}`;
    try {
      const e = (await res.json()) as ErrorBody;
      if (typeof e.error === "string") code = e.error;
      if (typeof e.message === "string") message = e.message;
    } catch {
      // Not the node's JSON error (a proxy, or no node at all behind this origin).
      if (res.status === 502 || res.status === 503 || res.status === 504) {
        throw new NodeUnreachableError(`the node is not answering (HTTP ${res.status})`);
      }
    }
    const retry = Number(res.headers.get("Retry-After"));
    const err = new ApiError(res.status, code, message, Number.isFinite(retry) && retry > 0 ? retry : undefined);
    if (err.isSessionProblem && token) this.opts.onSessionProblem?.(err);
    throw err;
  }
}
