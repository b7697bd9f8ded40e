// Minimal protobuf (proto3) wire format: exactly what dchat's messages need.
// 
// Fields are written in tag order and default values (0, empty bytes, empty string) are left
// out, as prost does on the Rust side, so the same fields encode to the same bytes.

/** Protobuf wire types used by dchat's messages. */
const VARINT = 0;
const LEN = 2;

/** Appends protobuf fields to a growing buffer. */
export class Writer {
  private chunks: number[] = [];

  /** A varint field; skipped when the value is 0 (proto3 default). */
  uint(tag: number, value: number | bigint): this {
    const v = BigInt(value);
    if (v < 0n || v >= 1n << 64n) throw new RangeError(`field ${tag}: ${v} is not a uint64`);
    if (v === 0n) return this;
    this.key(tag, VARINT);
    this.varint(v);
    return this;
  }

  /** A bytes field; skipped when empty (proto3 default). */
  bytes(tag: number, value: Uint8Array): this {
    if (value.length === 0) return this;
    return this.bytesAlways(tag, value);
  }

  /** A bytes field written even when empty (an element of a repeated field). */
  bytesAlways(tag: number, value: Uint8Array): this {
    this.key(tag, LEN);
    this.varint(BigInt(value.length));
    for (const b of value) this.chunks.push(b);
    return this;
  }

  /** A string field (UTF-8); skipped when empty. */
  string(tag: number, value: string): this {
    return this.bytes(tag, new TextEncoder().encode(value));
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }

  private key(tag: number, wireType: number): void {
    this.varint(BigInt((tag << 3) | wireType));
  }

  private varint(v: bigint): void {
    while (v >= 0x80n) {
      this.chunks.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.chunks.push(Number(v));
  }
}

/** A decoded field: a varint value or a length-delimited slice. */
export type Field =
  | { tag: number; wireType: typeof VARINT; value: bigint }
  | { tag: number; wireType: typeof LEN; value: Uint8Array };

/** Thrown when bytes are not a well-formed protobuf message. */
export class DecodeError extends Error {
  override name = "DecodeError";
}

/**
 * Reads every field of a message. Unknown fields of the varint, 64-bit, length-delimited and
 * 32-bit wire types are returned or skipped, as protobuf requires; groups are refused.
 */
export function readFields(buf: Uint8Array): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new DecodeError("truncated varint");
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7n;
      if (shift > 63n) throw new DecodeError("varint too long");
    }
    return result;
  };
  while (pos < buf.length) {
    const key = varint();
    const tag = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (tag === 0) throw new DecodeError("field tag 0");
    switch (wireType) {
      case VARINT:
        fields.push({ tag, wireType: VARINT, value: varint() });
        break;
      case LEN: {
        const len = Number(varint());
        if (pos + len > buf.length) throw new DecodeError(`field ${tag}: truncated bytes`);
        fields.push({ tag, wireType: LEN, value: buf.subarray(pos, pos + len) });
        pos += len;
        break;
      }
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      default:
        throw new DecodeError(`field ${tag}: unsupported wire type ${wireType}`);
    }
    if (pos > buf.length) throw new DecodeError("truncated field");
  }
  return fields;
}

/** The last varint value of `tag` (protobuf: last one wins), or 0. */
export function getUint(fields: Field[], tag: number): bigint {
  let v = 0n;
  for (const f of fields) {
    if (f.tag !== tag) continue;
    if (f.wireType !== VARINT) throw new DecodeError(`field ${tag}: expected a varint`);
    v = f.value;
  }
  return v;
}

/** The last bytes value of `tag`, or empty. */
export function getBytes(fields: Field[], tag: number): Uint8Array {
  let v: Uint8Array = new Uint8Array();
  for (const f of fields) {
    if (f.tag !== tag) continue;
    if (f.wireType !== LEN) throw new DecodeError(`field ${tag}: expected bytes`);
    v = f.value;
  }
  return v;
}

/** Every bytes value of a repeated `tag`, in order. */
export function getRepeatedBytes(fields: Field[], tag: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const f of fields) {
    if (f.tag !== tag) continue;
    if (f.wireType !== LEN) throw new DecodeError(`field ${tag}: expected bytes`);
    out.push(f.value);
  }
  return out;
}
