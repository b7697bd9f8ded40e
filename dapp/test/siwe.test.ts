import { describe, expect, it } from "vitest";
import positive from "./fixtures/siwe/parsing_positive.json";
import negativeObjects from "./fixtures/siwe/parsing_negative_objects.json";
import { buildSignInMessage, formatSiweMessage, SiweFieldError, toChecksumAddress, type SiweFields } from "../src/protocol/siwe";

describe("SIWE message text (official EIP-4361 vectors)", () => {
  for (const [name, v] of Object.entries(positive as Record<string, { message: string; fields: Record<string, unknown> }>)) {
    it(`formats: ${name}`, () => {
      const f = { ...v.fields } as unknown as SiweFields & { scheme?: string | null };
      if (f.scheme === null) delete f.scheme;
      expect(formatSiweMessage(f)).toBe(v.message);
    });
  }

  for (const [name, fields] of Object.entries(negativeObjects as Record<string, unknown>)) {
    it(`refuses: ${name}`, () => {
      expect(() => formatSiweMessage(fields as SiweFields)).toThrow(SiweFieldError);
    });
  }
});

describe("dchat sign-in message", () => {
  const signKey = new Uint8Array(32).fill(0xaa);
  const boxKey = new Uint8Array(32).fill(0xbb);

  it("binds the node's domain and origin and delegates both device keys until expiry", () => {
    const text = buildSignInMessage({
      nonce: { nonce: "q8ZrT1bW0xLm4NcP9aYe", expires_at: 0, domain: "localhost:8480", uri: "http://localhost:8480", chain_ids: [1, 31337] },
      address: "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
      chainId: 31337,
      signKey,
      boxKey,
      now: new Date("2030-01-01T00:00:00.000Z"),
      delegationSecs: 86400,
    });
    expect(text).toBe(
      [
        "localhost:8480 wants you to sign in with your Ethereum account:",
        "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
        "",
        "Sign in to dchat",
        "",
        "URI: http://localhost:8480",
        "Version: 1",
        "Chain ID: 31337",
        "Nonce: q8ZrT1bW0xLm4NcP9aYe",
        "Issued At: 2030-01-01T00:00:00.000Z",
        "Expiration Time: 2030-01-02T00:00:00.000Z",
        "Resources:",
        `- urn:dchat:sign:${"aa".repeat(32)}`,
        `- urn:dchat:box:${"bb".repeat(32)}`,
      ].join("\n"),
    );
  });

  it("refuses a lowercase address (the node wants EIP-55)", () => {
    expect(() =>
      buildSignInMessage({
        nonce: { nonce: "q8ZrT1bW0xLm4NcP9aYe", expires_at: 0, domain: "localhost:8480", uri: "http://localhost:8480", chain_ids: [1] },
        address: "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
        chainId: 1,
        signKey,
        boxKey,
        now: new Date(),
      }),
    ).toThrow(/EIP-55/);
  });

  it("computes EIP-55 checksums", () => {
    expect(toChecksumAddress("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")).toBe("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
    expect(toChecksumAddress("0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359")).toBe("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359");
  });
});
