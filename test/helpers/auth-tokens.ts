import { createHmac, createPublicKey, type JsonWebKey } from 'node:crypto';
import { CompactSign, decodeJwt, decodeProtectedHeader, importJWK, type JWK, type JWTPayload } from 'jose';

/**
 * Token forgery kit for negative tests. Everything here produces a token the
 * gateway must refuse — except `signWith` with a key the IdP publishes and
 * sound claims, which is the positive control showing that the refusals are
 * about the forged part and not about self-signed tokens in general.
 */

const b64url = (v: object | Buffer): string =>
  Buffer.from(Buffer.isBuffer(v) ? v : JSON.stringify(v)).toString('base64url');

export type Header = Record<string, unknown>;

/** Signs `payload` with a private JWK under exactly this protected header (alg from the header). */
export async function signWith(privateJwk: object, header: Header, payload: JWTPayload): Promise<string> {
  const alg = String(header.alg);
  const key = await importJWK(privateJwk as JWK, alg);
  return new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader({ ...header, alg }).sign(key);
}

/** `alg: none` with an empty signature. */
export function unsigned(header: Header, payload: JWTPayload): string {
  return `${b64url({ ...header, alg: 'none' })}.${b64url(payload)}.`;
}

/** HS256 keyed with `secret` — e.g. the issuer's public key bytes (the RS/HS key-confusion attack). */
export function hmacSigned(secret: string | Buffer, header: Header, payload: JWTPayload): string {
  const input = `${b64url({ ...header, alg: 'HS256' })}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** The same token with one byte of its signature changed. */
export function flipSignatureByte(token: string): string {
  const [h, p, s] = token.split('.');
  const sig = Buffer.from(s!, 'base64url');
  sig[Math.floor(sig.length / 2)]! ^= 0x01;
  return `${h}.${p}.${sig.toString('base64url')}`;
}

/** PEM (SPKI) of a public JWK: the bytes a key-confusion attacker would use as an HMAC secret. */
export function publicPem(jwk: object): string {
  return createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
    .export({ format: 'pem', type: 'spki' })
    .toString();
}

export function claimsOf(token: string): JWTPayload {
  return decodeJwt(token);
}

export function headerOf(token: string): Header {
  return decodeProtectedHeader(token) as Header;
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** A real token's claims, freshly timed and with a new jti, as the IdP would issue them; `over` changes what an attack needs. */
export function freshClaims(base: JWTPayload, over: JWTPayload = {}): JWTPayload {
  return { ...base, iat: nowSeconds(), exp: nowSeconds() + 600, jti: `t-${Math.random()}`, ...over };
}

/** Drops the named claims from a payload. */
export function without(p: JWTPayload, ...names: string[]): JWTPayload {
  const out: JWTPayload = { ...p };
  for (const n of names) delete out[n];
  return out;
}
