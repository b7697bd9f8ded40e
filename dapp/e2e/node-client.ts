// A second client in the test process: signs in over HTTP with the dApp's own protocol modules
// (SIWE + device delegation) and posts envelopes, to give rooms a history to scroll through.

import { privateKeyToAccount } from "viem/accounts";
import { ApiError, NodeClient } from "../src/api/client";
import { generateDeviceKeys } from "../src/crypto/device";
import { composeJoin, composeText, type Signer } from "../src/protocol/compose";
import { buildSignInMessage } from "../src/protocol/siwe";

export class ScriptedUser {
  private token = "";
  readonly client: NodeClient;
  private signer!: Signer;

  constructor(
    nodeUrl: string,
    private readonly privateKey: `0x${string}`,
  ) {
    this.client = new NodeClient({ base: nodeUrl, token: () => this.token });
  }

  get address(): string {
    return privateKeyToAccount(this.privateKey).address;
  }

  async signIn(): Promise<void> {
    const account = privateKeyToAccount(this.privateKey);
    const keys = generateDeviceKeys();
    const nonce = await this.client.nonce();
    const message = buildSignInMessage({
      nonce,
      address: account.address,
      chainId: 31337,
      signKey: keys.signPublic,
      boxKey: keys.boxPublic,
      now: new Date(),
    });
    const reply = await this.client.signIn(message, await account.signMessage({ message }));
    this.token = reply.token;
    this.signer = { address: account.address, signPublic: keys.signPublic, signSecret: keys.signSecret };
  }

  async join(room: string): Promise<number> {
    const page = await this.client.messages(room, { limit: 1 });
    const lamport = page.messages.reduce((n, m) => Math.max(n, m.lamport), -1) + 1;
    await this.client.join(room, composeJoin(this.signer, room, lamport));
    return lamport;
  }

  /** Posts `texts` in order with increasing lamports, waiting out the per-address write limit. */
  async postAll(room: string, firstLamport: number, texts: string[]): Promise<void> {
    let lamport = firstLamport;
    for (const text of texts) {
      const env = composeText(this.signer, room, lamport++, text);
      for (let attempt = 0; ; attempt++) {
        try {
          await this.client.post(room, env);
          break;
        } catch (err) {
          if (err instanceof ApiError && err.code === "rate_limited" && attempt < 20) {
            await new Promise((r) => setTimeout(r, 1000 * (err.retryAfterSecs ?? 1)));
            continue;
          }
          throw err;
        }
      }
    }
  }
}
