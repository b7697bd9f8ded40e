// Client of the LinkedIn gateway (dchat-gateway, docs/gateway.md). The node names it in
// `GET /v1/info` (`[dapp] gateway_url`); linking and unlinking take the node's access token.

import { ApiError, NodeUnreachableError } from "./client";

/** `GET /v1/profiles/{address}`: a linked, attested profile. */
export interface LinkedProfile {
  address: string;
  linked: boolean;
  profile: { name: string; picture: string | null; email_domain: string | null; linked_at: number } | null;
  attestation: { digest: string; signer: string; message: { expiry: number } } | null;
}

export class GatewayClient {
  constructor(
    readonly base: string,
    private readonly token: () => string | undefined,
  ) {}

  /** Starts a link: the browser then goes to `authorization_url` (LinkedIn's sign-in). */
  start(): Promise<{ authorization_url: string; expires_at: number }> {
    return this.request("POST", "/v1/link/linkedin/start", true);
  }

  async unlink(): Promise<void> {
    await this.request("DELETE", "/v1/link/linkedin", true);
  }

  /** The wallet's linked profile, or undefined when it has none. */
  async profile(address: string): Promise<LinkedProfile | undefined> {
    try {
      return await this.request<LinkedProfile>("GET", `/v1/profiles/${address}`, false);
    } catch (err) {
      if (err instanceof ApiError && err.code === "profile_not_found") return undefined;
      throw err;
    }
  }

  private async request<T>(method: string, path: string, auth: boolean): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = this.token();
    if (auth && token) headers.Authorization = `Bearer ${token}`;
    let res: Response;
    try {
      // The link's browser-binding cookie must be stored and sent: credentials on the calls
      // that start or end a link.
      res = await fetch(`${this.base}${path}`, { method, headers, credentials: auth ? "include" : "omit", mode: "cors", signal: AbortSignal.timeout(15_000) });
    } catch (err) {
      throw new NodeUnreachableError(`cannot reach the LinkedIn gateway (${(err as Error).message})`);
    }
    if (res.status === 204) return undefined as T;
    if (res.ok) return (await res.json()) as T;
    let code = `http_${res.status}`;
    let message = `HTTP ${res.status}`;
    try {
      const e = (await res.json()) as { error?: string; message?: string };
      if (e.error) code = e.error;
      if (e.message) message = e.message;
    } catch {
      throw new NodeUnreachableError(`the LinkedIn gateway is not answering (HTTP ${res.status})`);
    }
    throw new ApiError(res.status, code, message);
  }
}
