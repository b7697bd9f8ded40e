// Sign-In with Ethereum (EIP-4361) message text, and dchat's device delegation resources.

import { keccak_256 } from "@noble/hashes/sha3.js";
import { toHex } from "../lib/bytes";

/** The fields of an EIP-4361 message. Times are RFC 3339 strings, written as given. */
export interface SiweFields {
  /** Optional `scheme://` before the domain. */
  scheme?: string;
  domain: string;
  /** EIP-55 checksummed address. */
  address: string;
  statement?: string;
  uri: string;
  version: string;
  chainId: number;
  nonce: string;
  issuedAt: string;
  expirationTime?: string;
  notBefore?: string;
  requestId?: string;
  resources?: string[];
}

/** Thrown when fields cannot make a valid EIP-4361 message. */
export class SiweFieldError extends Error {
  override name = "SiweFieldError";
}

const AUTHORITY = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:%]*@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]*)?$/;
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** EIP-55 mixed-case checksum of a 20-byte hex address. */
export function toChecksumAddress(address: string): string {
  const hex = address.slice(2).toLowerCase();
  const hash = keccak_256(new TextEncoder().encode(hex));
  let out = "0x";
  for (let i = 0; i < 40; i++) {
    const nibble = (hash[i >> 1]! >> (i % 2 === 0 ? 4 : 0)) & 0xf;
    out += nibble >= 8 ? hex[i]!.toUpperCase() : hex[i]!;
  }
  return out;
}

/** Refuses fields that would not make a valid EIP-4361 message. */
export function validateSiweFields(f: SiweFields): void {
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new SiweFieldError(what);
  };
  need(typeof f.domain === "string" && AUTHORITY.test(f.domain), "domain must be an RFC 3986 authority");
  need(f.scheme === undefined || /^[A-Za-z][A-Za-z0-9+.-]*$/.test(f.scheme), "scheme must be an RFC 3986 scheme");
  need(
    typeof f.address === "string" && /^0x[0-9a-fA-F]{40}$/.test(f.address) && toChecksumAddress(f.address) === f.address,
    "address must be EIP-55 checksummed",
  );
  // EIP-4361: the statement is one line of printable ASCII.
  need(f.statement === undefined || /^[\x20-\x7e]*$/.test(f.statement), "statement must be printable ASCII on one line");
  need(typeof f.uri === "string" && URI.test(f.uri), "uri must be an RFC 3986 URI");
  need(f.version === "1", "version must be 1");
  need(Number.isSafeInteger(f.chainId) && f.chainId > 0, "chain id must be a positive integer");
  need(typeof f.nonce === "string" && /^[A-Za-z0-9]{8,}$/.test(f.nonce), "nonce must be at least 8 alphanumeric characters");
  need(typeof f.issuedAt === "string" && DATE_TIME.test(f.issuedAt), "issued-at must be an RFC 3339 date-time");
  need(f.expirationTime === undefined || DATE_TIME.test(f.expirationTime), "expiration time must be an RFC 3339 date-time");
  need(f.notBefore === undefined || DATE_TIME.test(f.notBefore), "not-before must be an RFC 3339 date-time");
  need(f.requestId === undefined || !/[\r\n]/.test(f.requestId), "request id must be one line");
  for (const r of f.resources ?? []) need(typeof r === "string" && URI.test(r), "each resource must be an RFC 3986 URI");
}

/** Formats the message text exactly as EIP-4361 lays it out, after validating the fields. */
export function formatSiweMessage(f: SiweFields): string {
  validateSiweFields(f);
  const prefix = f.scheme ? `${f.scheme}://${f.domain}` : f.domain;
  let text = `${prefix} wants you to sign in with your Ethereum account:\n${f.address}\n\n`;
  if (f.statement !== undefined) text += `${f.statement}\n`;
  text += `\nURI: ${f.uri}\nVersion: ${f.version}\nChain ID: ${f.chainId}\nNonce: ${f.nonce}\nIssued At: ${f.issuedAt}`;
  if (f.expirationTime) text += `\nExpiration Time: ${f.expirationTime}`;
  if (f.notBefore) text += `\nNot Before: ${f.notBefore}`;
  if (f.requestId !== undefined) text += `\nRequest ID: ${f.requestId}`;
  if (f.resources && f.resources.length > 0) {
    text += `\nResources:`;
    for (const r of f.resources) text += `\n- ${r}`;
  }
  return text;
}

/** `urn:dchat:sign:<hex>`: the device's Ed25519 key, delegated to sign envelopes. */
export function signKeyResource(key: Uint8Array): string {
  return `urn:dchat:sign:${toHex(key).slice(2)}`;
}

/** `urn:dchat:box:<hex>`: the device's X25519 key, for end-to-end encryption. */
export function boxKeyResource(key: Uint8Array): string {
  return `urn:dchat:box:${toHex(key).slice(2)}`;
}

/** What `GET /v1/auth/nonce` answers. */
export interface NonceReply {
  nonce: string;
  expires_at: number;
  domain: string;
  uri: string;
  chain_ids: number[];
}

/** The statement dchat asks wallets to sign. */
export const SIGN_IN_STATEMENT = "Sign in to dchat";

/** How long a device delegation lasts (the node allows up to 30 days by default). */
export const DELEGATION_SECS = 7 * 24 * 3600;

/**
 * The dchat sign-in message: binds the node's domain and origin, and delegates the device's
 * signing and box keys until `Expiration Time`.
 */
export function buildSignInMessage(args: {
  nonce: NonceReply;
  address: string;
  chainId: number;
  signKey: Uint8Array;
  boxKey: Uint8Array;
  now: Date;
  delegationSecs?: number;
}): string {
  const expires = new Date(args.now.getTime() + (args.delegationSecs ?? DELEGATION_SECS) * 1000);
  return formatSiweMessage({
    domain: args.nonce.domain,
    address: args.address,
    statement: SIGN_IN_STATEMENT,
    uri: args.nonce.uri,
    version: "1",
    chainId: args.chainId,
    nonce: args.nonce.nonce,
    issuedAt: args.now.toISOString(),
    expirationTime: expires.toISOString(),
    resources: [signKeyResource(args.signKey), boxKeyResource(args.boxKey)],
  });
}
