// The node's WebSocket (`GET /v1/ws`): live messages of followed rooms.
//
// The token travels in `Sec-WebSocket-Protocol` (browsers cannot set headers on a WebSocket).
// The connection re-opens with backoff after a drop and re-subscribes; every `subscribed` frame is
// reported so that views re-read history (the node's "subscribe first, then page history" rule).

import type { Message } from "./types";

export type LiveStatus = "connecting" | "open" | "reconnecting" | "closed";

export interface LiveHandlers {
  onMessage(m: Message): void;
  /** Rooms the node accepted in a `subscribed` frame: history from now on is complete. */
  onSubscribed(rooms: string[]): void;
  onStatus(s: LiveStatus): void;
  /** Rooms the node stopped streaming without being asked (this wallet was removed). */
  onUnsubscribed?(rooms: string[]): void;
  /** An `error` frame (for example `not_a_member` for one room). */
  onFrameError?(code: string, message: string, room?: string): void;
  /** Close code 4001, or the upgrade refused for the token: sign in again. */
  onSessionExpired(): void;
  /**
   * Any other frame with a `type` (the social events: `notification`, `notifications_read`,
   * `contact`, `presence`, `read`, and kinds this version does not know yet).
   */
  onOther?(frame: { type: string } & Record<string, unknown>): void;
}

const PING_MS = 25_000;
const MAX_BACKOFF_MS = 30_000;

type ServerFrame =
  | { type: "subscribed"; rooms: string[] }
  | { type: "unsubscribed"; rooms: string[] }
  | { type: "message"; message: Message }
  | { type: "error"; error: string; message: string; room?: string }
  | { type: "pong" };

export class LiveConnection {
  private ws: WebSocket | undefined;
  private rooms = new Set<string>();
  private stopped = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly h: LiveHandlers,
  ) {}

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.ws?.close(1000, "bye");
    this.ws = undefined;
    this.h.onStatus("closed");
  }

  /** Follows rooms (now, and again after every reconnect). */
  subscribe(rooms: string[]): void {
    const fresh = rooms.map((r) => r.toLowerCase()).filter((r) => !this.rooms.has(r));
    if (fresh.length === 0) return;
    for (const r of fresh) this.rooms.add(r);
    this.send({ type: "subscribe", rooms: fresh });
  }

  unsubscribe(rooms: string[]): void {
    const ids = rooms.map((r) => r.toLowerCase());
    for (const r of ids) this.rooms.delete(r);
    this.send({ type: "unsubscribe", rooms: ids });
  }

  /** Stops following rooms the node already dropped (no frame sent). */
  forget(rooms: string[]): void {
    for (const r of rooms) this.rooms.delete(r.toLowerCase());
  }

  private send(frame: unknown): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  private open(): void {
    this.h.onStatus(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url, ["dchat.v1", `bearer.${this.token}`]);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.h.onStatus("open");
      if (this.rooms.size > 0) this.send({ type: "subscribe", rooms: [...this.rooms] });
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send({ type: "ping" }), PING_MS);
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(ev.data) as ServerFrame;
      } catch {
        return;
      }
      switch (frame.type) {
        case "message":
          this.h.onMessage(frame.message);
          break;
        case "subscribed":
          this.h.onSubscribed(frame.rooms.map((r) => r.toLowerCase()));
          break;
        case "unsubscribed": {
          // An answer to our own unsubscribe needs nothing; any other means the node dropped us.
          const dropped = frame.rooms.map((r) => r.toLowerCase()).filter((r) => this.rooms.has(r));
          for (const r of dropped) this.rooms.delete(r);
          if (dropped.length > 0) this.h.onUnsubscribed?.(dropped);
          break;
        }
        case "error":
          if (frame.room) this.rooms.delete(frame.room.toLowerCase());
          this.h.onFrameError?.(frame.error, frame.message, frame.room);
          break;
        default:
          if (typeof (frame as { type?: unknown }).type === "string") this.h.onOther?.(frame as { type: string } & Record<string, unknown>);
          break;
      }
    };
    ws.onclose = (ev) => {
      clearInterval(this.pingTimer);
      if (this.ws !== ws || this.stopped) return;
      this.ws = undefined;
      // 4001: the token expired. A refused upgrade (a bad token) looks like any failed connection
      // (1006) to a browser; it is retried, and the app's next HTTP request finds the token out.
      if (ev.code === 4001) {
        this.stopped = true;
        this.h.onStatus("closed");
        this.h.onSessionExpired();
        return;
      }
      this.scheduleRetry();
    };
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    this.attempt++;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(this.attempt, 6)) * (0.75 + Math.random() * 0.5);
    this.h.onStatus("reconnecting");
    this.retryTimer = setTimeout(() => this.open(), delay);
  }
}
