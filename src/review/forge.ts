import { createHmac, createPublicKey, randomBytes, type JsonWebKey } from 'node:crypto';
import { CompactSign, decodeJwt, decodeProtectedHeader, generateKeyPair, generateSecret, importJWK, type JWK, type JWTPayload } from 'jose';

/**
 * Forged user tokens for BND-04. Every function here builds a token a sound
 * verifier must refuse; each changes exactly one thing about a real token,
 * so a refusal can be pinned on that one thing.
 */

export type JwtHeader = Record<string, unknown>;
type SignKey = Parameters<CompactSign['sign']>[0];

export interface ParsedJwt {
  header: JwtHeader;
  claims: JWTPayload;
}

/** A key the review signs with: the issuer's own (a test/dev profile gave it) or a fresh one of the review's. */
export interface SigningKey {
  key: SignKey;
  alg: string;
  kid?: string;
  source: 'issuer' | 'reviewer';
}

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Header and claims of a JWS-shaped JWT, undefined for anything else (an opaque token cannot be forged from). */
export function parseJwt(token: string): ParsedJwt | undefined {
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) return undefined;
  try {
    return { header: decodeProtectedHeader(token) as JwtHeader, claims: decodeJwt(token) };
  } catch {
    // JWT-shaped but not decodable: an opaque token, as documented above.
    return undefined;
  }
}

function mustParse(token: string): ParsedJwt {
  const p = parseJwt(token);
  if (!p) throw new Error('not a JWT');
  return p;
}

/** The same claims under `alg: none` with an empty signature. */
export function algNone(token: string): string {
  const { header, claims } = mustParse(token);
  return `${b64url({ ...header, alg: 'none' })}.${b64url(claims)}.`;
}

/** HS256 keyed with `secret` (the issuer's public key as text): the RS/HS key-confusion attack. The kid stays, so the verifier picks the key it would use as the HMAC secret. */
export function hs256With(token: string, secret: string | Uint8Array): string {
  const { header, claims } = mustParse(token);
  const input = `${b64url({ ...header, alg: 'HS256' })}.${b64url(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** The token with one signature character changed; a middle one, whose six bits all count (the last may be padding bits). */
export function badSignature(token: string): string {
  const [h, p, s] = token.split('.');
  if (h === undefined || p === undefined || !s || s.length < 2) throw new Error('token has no signature to change');
  const i = Math.floor(s.length / 2);
  const c = s[i]!;
  return `${h}.${p}.${s.slice(0, i)}${c === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
}

/** Same claims signed with a fresh key the issuer never published, under a kid nobody knows. */
export async function unknownKid(token: string): Promise<string> {
  const { header, claims } = mustParse(token);
  const key = await reviewerKey(String(header.alg ?? 'RS256'));
  return signJwt({ ...header, kid: `review-${randomBytes(8).toString('hex')}` }, claims, key);
}

/**
 * Signs `claims` under `header` with `key`: alg from the key, and the key's
 * kid when it has one (an issuer key), else the header's (a reviewer key
 * keeps the original kid so the token looks like the issuer's).
 */
export async function signJwt(header: JwtHeader, claims: JWTPayload, key: SigningKey): Promise<string> {
  const protectedHeader = { ...header, alg: key.alg, ...(key.kid !== undefined ? { kid: key.kid } : {}) };
  return new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader(protectedHeader).sign(key.key);
}

/** A fresh key for `alg` (an HMAC secret for HS*); it signs, nobody trusts it. */
export async function reviewerKey(alg: string, kid?: string): Promise<SigningKey> {
  if (/^HS/.test(alg)) return { key: await generateSecret(alg as 'HS256', { extractable: true }), alg, kid, source: 'reviewer' };
  const known = /^(RS|PS|ES)(256|384|512)$|^EdDSA$|^Ed25519$/.test(alg) ? alg : 'RS256';
  const { privateKey } = await generateKeyPair(known as 'RS256', { extractable: true });
  return { key: privateKey, alg: known, kid, source: 'reviewer' };
}

const EC_ALGS: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };

function algOfJwk(jwk: JWK, fallback: string | undefined): string {
  if (jwk.alg) return jwk.alg;
  if (jwk.kty === 'EC' && jwk.crv && EC_ALGS[jwk.crv]) return EC_ALGS[jwk.crv]!;
  if (jwk.kty === 'OKP') return 'EdDSA';
  if (jwk.kty === 'RSA') return fallback && /^(RS|PS)/.test(fallback) ? fallback : 'RS256';
  if (fallback) return fallback;
  throw new Error('cannot tell the signing algorithm of the issuer key');
}

/**
 * The issuer's private key from a JWK or a JWKS document (the key whose kid
 * matches `kid`, else the first private one).
 */
export async function issuerKey(doc: unknown, kid: string | undefined, fallbackAlg: string | undefined): Promise<SigningKey> {
  const keys = (doc && typeof doc === 'object' && Array.isArray((doc as { keys?: unknown }).keys) ? (doc as { keys: unknown[] }).keys : [doc]) as JWK[];
  const privateKeys = keys.filter((k) => k && typeof k === 'object' && typeof k.d === 'string');
  const jwk = privateKeys.find((k) => kid !== undefined && k.kid === kid) ?? privateKeys[0];
  if (!jwk) throw new Error('the signing key file holds no private JWK');
  const alg = algOfJwk(jwk, fallbackAlg);
  return { key: await importJWK(jwk, alg), alg, kid: jwk.kid, source: 'issuer' };
}

/** The two texts of a public key an HS/RS-confused verifier might use as its HMAC secret: the SPKI PEM and the JWK JSON. */
export function publicKeyTexts(jwk: object): { pem: string; jwkJson: string } {
  const pem = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString();
  return { pem, jwkJson: JSON.stringify(jwk) };
}

/** Claim changes, one per attack; times in seconds. */
export const claimAttacks = {
  expired(c: JWTPayload, now: number): JWTPayload {
    const { nbf: _nbf, ...rest } = c;
    return { ...rest, iat: now - 7200, exp: now - 3600 };
  },
  notYetValid(c: JWTPayload, now: number): JWTPayload {
    return { ...c, iat: now, nbf: now + 3600, exp: Math.max(typeof c.exp === 'number' ? c.exp : 0, now + 7200) };
  },
  wrongIssuer(c: JWTPayload): JWTPayload {
    return { ...c, iss: 'https://issuer.behalf-review.invalid' };
  },
  wrongAudience(c: JWTPayload): JWTPayload {
    return { ...c, aud: 'https://other-resource.behalf-review.invalid/mcp' };
  },
  actorMismatch(c: JWTPayload): JWTPayload {
    const act = (c.act && typeof c.act === 'object' ? c.act : {}) as Record<string, unknown>;
    return { ...c, act: { ...act, sub: 'behalf-review-impostor' } };
  },
};
