import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { IssuerConfig } from '../config/schema.js';
import { BehalfError } from '../errors.js';
import { sha256Hex } from '../shared/hash.js';
import { IssuerKeys, keyFetchPolicy, type KeyFetchOverrides } from './jwks.js';
import { KeySetUnavailable } from './remote-key-set.js';

export interface VerifiedToken {
  issuer: IssuerConfig;
  payload: JWTPayload;
  fingerprint: string;
}

/** Overrides of each issuer's `keyFetch` (tests set `jwksCooldownMs: 0` to see a rotated key at once), and the token cache. */
export interface VerifierOptions extends KeyFetchOverrides {
  cacheEntries?: number;
  now?: () => number;
}

/** Why a token failed, for the audit record; the caller only ever sees `invalid_token`. */
export function tokenFailureReason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim ${err.claim} ${err.reason}`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'unknown key';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (err instanceof joseErrors.JWKSTimeout) return 'key set timeout';
  if (err instanceof KeySetUnavailable) return err.message;
  if (err instanceof joseErrors.JOSEError) return err.code;
  if (err instanceof BehalfError) return err.message;
  return 'verification failed';
}

/**
 * Verifies bearer JWTs from the configured issuers against one audience (the
 * resource). The issuer is chosen by the token's exact `iss`, then everything
 * is checked with that issuer's keys and rules — a token signed by a trusted
 * key but naming another issuer never passes (Envoy AI Gateway #2641).
 *
 * Verified tokens are cached by (hash of token, audience) until they expire,
 * so the signature check is paid once per token lifetime, not per call.
 */
export class JwtVerifier {
  private readonly keys = new Map<string, IssuerKeys>();
  private readonly byIssuer = new Map<string, IssuerConfig>();
  private readonly cache = new Map<string, { token: VerifiedToken; exp: number }>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(issuers: readonly IssuerConfig[], options: VerifierOptions = {}) {
    this.maxEntries = options.cacheEntries ?? 10_000;
    this.now = options.now ?? (() => Date.now() / 1000);
    for (const iss of issuers) {
      this.byIssuer.set(iss.issuer, iss);
      this.keys.set(iss.issuer, new IssuerKeys(iss, keyFetchPolicy(iss.keyFetch, options)));
    }
  }

  /** Each issuer's keys held or fetched now (within the fetch bounds): what /readyz reports as `idpKeys`. */
  async keysLoaded(): Promise<Record<string, boolean>> {
    const entries = await Promise.all([...this.keys].map(async ([iss, k]) => [iss, await k.keySet.loaded()] as const));
    return Object.fromEntries(entries);
  }

  async verify(token: string, audience: string): Promise<VerifiedToken> {
    const hash = sha256Hex(token);
    const cacheKey = `${hash}\0${audience}`;
    const hit = this.cache.get(cacheKey);
    if (hit) {
      if (this.now() < hit.exp + hit.token.issuer.clockSkewSeconds) return hit.token;
      this.cache.delete(cacheKey);
    }
    const verified = await this.verifyUncached(token, audience, hash);
    this.remember(cacheKey, verified);
    return verified;
  }

  private async verifyUncached(token: string, audience: string, hash: string): Promise<VerifiedToken> {
    let unverifiedIss: unknown;
    try {
      decodeProtectedHeader(token);
      unverifiedIss = decodeJwt(token).iss;
    } catch (err) {
      throw new BehalfError('user_token_invalid', 'malformed token', {}, { cause: err });
    }
    const issuer = typeof unverifiedIss === 'string' ? this.byIssuer.get(unverifiedIss) : undefined;
    if (!issuer) throw new BehalfError('user_token_invalid', 'untrusted issuer');
    // Keys are fetched (or refused at once, when fetching is cooling down) inside jwtVerify, by kid.
    const { payload, protectedHeader } = await jwtVerify(token, this.keys.get(issuer.issuer)!.keySet.getKey, {
      issuer: issuer.issuer,
      audience,
      algorithms: issuer.algorithms,
      clockTolerance: issuer.clockSkewSeconds,
      requiredClaims: issuer.requiredClaims,
      currentDate: new Date(this.now() * 1000),
    }).catch((err: unknown) => {
      throw new BehalfError('user_token_invalid', tokenFailureReason(err), {}, { cause: err });
    });
    if (issuer.typ && !issuer.typ.some((t) => sameTyp(t, protectedHeader.typ))) {
      throw new BehalfError('user_token_invalid', 'typ not accepted');
    }
    if (typeof payload.exp !== 'number') throw new BehalfError('user_token_invalid', 'token has no expiry');
    return { issuer, payload, fingerprint: hash.slice(0, 16) };
  }

  private remember(key: string, token: VerifiedToken): void {
    if (this.cache.size >= this.maxEntries) {
      // Map iteration order is insertion order: dropping the oldest keeps this O(1).
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, { token, exp: token.payload.exp! });
  }
}

function sameTyp(expected: string, actual: string | undefined): boolean {
  if (!actual) return false;
  const norm = (s: string) => s.toLowerCase().replace(/^application\//, '');
  return norm(expected) === norm(actual);
}
