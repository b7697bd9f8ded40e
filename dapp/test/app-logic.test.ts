import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../src/lib/bytes";
import { getUint, readFields, DecodeError } from "../src/protocol/wire";
import { sortKey } from "../src/state/chat";
import { parseMembers } from "../src/ui/CreateRoomForm";
import { href, parseRoute } from "../src/ui/route";

describe("display order", () => {
  it("orders by lamport, then timestamp, then id bytes", () => {
    const msgs = [
      { lamport: 2, timestamp_ms: 1, id: "0x02" },
      { lamport: 10, timestamp_ms: 0, id: "0x01" },
      { lamport: 2, timestamp_ms: 1, id: "0x01" },
      { lamport: 2, timestamp_ms: 0, id: "0xff" },
    ];
    const sorted = [...msgs].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
    expect(sorted.map((m) => `${m.lamport}/${m.timestamp_ms}/${m.id}`)).toEqual(["2/0/0xff", "2/1/0x01", "2/1/0x02", "10/0/0x01"]);
  });
});

describe("group members field", () => {
  const self = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2";
  it("accepts addresses separated by commas, spaces and lines, drops repeats and the caller", () => {
    const r = parseMembers(
      `0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed, 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\n${self.toLowerCase()} 0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359`,
      self,
    );
    expect(r.invalid).toEqual([]);
    expect(r.members).toEqual(["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"]);
  });
  it("reports what is not an address", () => {
    expect(parseMembers("0x1234 bob.eth", self).invalid).toEqual(["0x1234", "bob.eth"]);
  });
});

describe("hash routes", () => {
  it("round-trips every screen", () => {
    const id = "0x" + "ab".repeat(32);
    for (const r of [{ name: "home" }, { name: "room", id }, { name: "new-group" }, { name: "new-channel" }, { name: "join" }] as const) {
      expect(parseRoute(href(r))).toEqual(r);
    }
    expect(parseRoute("#/room/0x12")).toEqual({ name: "home" });
  });
});

describe("protobuf reader", () => {
  it("skips unknown 64-bit and 32-bit fields and refuses truncated ones", () => {
    const f = readFields(fromHex("09" + "00".repeat(8) + "15" + "00".repeat(4) + "1801"));
    expect(getUint(f, 3)).toBe(1n);
    expect(() => readFields(fromHex("0a05aa"))).toThrow(DecodeError);
    expect(() => readFields(fromHex("08ff"))).toThrow(DecodeError);
  });
  it("hex helpers refuse odd or non-hex input", () => {
    expect(toHex(fromHex("0xABcd"))).toBe("0xabcd");
    expect(() => fromHex("0xabc")).toThrow();
    expect(() => fromHex("zz")).toThrow();
    expect(() => fromHex("0xab", 2)).toThrow(/expected 2 bytes/);
  });
});

describe("search, profile and LinkedIn return routes", () => {
  it("parses the search and profile routes", async () => {
    const { href, parseRoute } = await import("../src/ui/route");
    const room = "0x" + "ab".repeat(32);
    expect(parseRoute("#/search")).toEqual({ name: "search" });
    expect(parseRoute(`#/search/${room.toUpperCase().replace("0X", "0x")}`)).toEqual({ name: "search", room });
    expect(parseRoute("#/search/nope")).toEqual({ name: "search" });
    expect(parseRoute("#/profile")).toEqual({ name: "profile" });
    expect(href({ name: "search", room })).toBe(`#/search/${room}`);
  });

  it("reads the gateway's redirect back", async () => {
    const { linkOutcome } = await import("../src/ui/ProfileView");
    expect(linkOutcome("?linkedin=linked")).toEqual({ ok: true });
    expect(linkOutcome("?linkedin_error=browser_mismatch")).toEqual({ ok: false, code: "browser_mismatch" });
    expect(linkOutcome("")).toBeUndefined();
  });
});
