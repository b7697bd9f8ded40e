import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { toFunctionSelector } from "viem";
import { ANCHOR_ABI } from "../src/chain/contracts";
import { describeAnchorCheck, formatEth, parseEth, proofRoot } from "../src/chain/util";
import type { Hex } from "../src/lib/bytes";

describe("anchored-message proofs", () => {
  it("every proof of the contracts' Merkle vector leads to its root (contracts/test/vectors/merkle.json)", () => {
    const path = fileURLToPath(new URL("../../contracts/test/vectors/merkle.json", import.meta.url));
    const v = JSON.parse(readFileSync(path, "utf8")) as { messageHashes: Hex[]; root: Hex; proofs: Hex[][] };
    v.messageHashes.forEach((h, i) => expect(proofRoot(h, v.proofs[i]!)).toBe(v.root));
    // Another message, or a proof of another message, does not.
    expect(proofRoot(v.messageHashes[0]!, v.proofs[1]!)).not.toBe(v.root);
  });

  it("a one-message batch's root is its double-hashed leaf (one of the vector's leafHashes)", () => {
    expect(proofRoot("0x41fd7810eb39ae84b932a8643728e0ad7be75b068267b7156e03b9188fbb4436", [])).toBe(
      "0x6085cd3e472c0466ef5a8212d4e48a09731bdd293cec9e1fd18384698d46380c",
    );
  });
});

describe("ETH amounts", () => {
  it("parses what a user types, and refuses what is not an amount", () => {
    expect(parseEth("0.01")).toBe(10n ** 16n);
    expect(parseEth("1")).toBe(10n ** 18n);
    expect(parseEth(".5")).toBe(5n * 10n ** 17n);
    for (const bad of ["", "abc", "-1", "0", "1e3", "0.0000000000000000001", "1,5"]) expect(() => parseEth(bad), bad).toThrow();
    expect(formatEth(1234500000000000000n)).toBe("1.2345");
    expect(formatEth(2n * 10n ** 18n)).toBe("2");
  });
});

describe("MessageAnchor through the dApp", () => {
  it("calls the functions the contract has, with the same selectors (forge's artifact in out/)", () => {
    const path = fileURLToPath(new URL("../../out/MessageAnchor.sol/MessageAnchor.json", import.meta.url));
    const artifact = JSON.parse(readFileSync(path, "utf8")) as { methodIdentifiers: Record<string, string> };
    for (const f of ANCHOR_ABI) {
      const signature = `${f.name}(${f.inputs.map((i) => i.type).join(",")})`;
      expect(artifact.methodIdentifiers[signature], signature).toBe(toFunctionSelector(signature).slice(2));
    }
  });

  it("says whose word vouches for an anchored message", () => {
    const anchorer = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    const active = describeAnchorCheck({ included: true, activeNode: true, block: 12n }, anchorer);
    expect(active).toMatch(/^Verified on chain/);
    expect(active).toContain("block 12");
    expect(active).toContain("runs an active node");
    const lone = describeAnchorCheck({ included: true, activeNode: false, block: 12n }, anchorer);
    expect(lone).toMatch(/^Verified on chain/);
    expect(lone).toContain("not an active node");
    expect(describeAnchorCheck({ included: false, activeNode: false, block: 0n }, anchorer)).toMatch(/^The contract does NOT confirm/);
  });
});
