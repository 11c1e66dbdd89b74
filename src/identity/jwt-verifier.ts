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
  /** The key that signed it: withdrawn from the issuer's key set, it ends the token even when cached. */
  kid?: string;
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
      if (this.now() < hit.exp + hit.token.issuer.clockSkewSeconds) {
        checkAge(hit.token, this.now());
        return hit.token;
      }
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
    const verified = { issuer, payload, fingerprint: hash.slice(0, 16), kid: protectedHeader.kid };
    // jose judges iat only under maxTokenAge: a token issued in the future is a forgery or a broken clock either way.
    if (typeof payload.iat === 'number' && payload.iat > this.now() + issuer.clockSkewSeconds)
      throw new BehalfError('user_token_invalid', 'iat in the future');
    checkAge(verified, this.now());
    return verified;
  }

  /**
   * Keys an issuer withdraws end the tokens they signed: their cached
   * verifications are dropped and `onWithdrawn` is told (the revocation
   * service then ends their sessions and streams). Issuers with
   * keyRefreshSeconds are refetched at that interval so a withdrawal is seen
   * without waiting for a token.
   */
  watchKeys(onWithdrawn: (issuer: string, kid: string) => void, log: (line: string) => void): void {
    for (const [iss, keys] of this.keys) {
      keys.keySet.onWithdrawn = (kids) => {
        const gone = new Set(kids);
        for (const [k, e] of this.cache)
          if (e.token.issuer.issuer === iss && e.token.kid && gone.has(e.token.kid)) this.cache.delete(k);
        for (const kid of kids) onWithdrawn(iss, kid);
      };
      const every = this.byIssuer.get(iss)!.keyRefreshSeconds;
      if (every) keys.refreshEvery(every * 1000, log);
    }
  }

  close(): void {
    for (const k of this.keys.values()) k.close();
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

/** issuers[].maxTokenAgeSeconds, judged from iat on every use: a cached token ages too. */
function checkAge(v: VerifiedToken, now: number): void {
  const max = v.issuer.maxTokenAgeSeconds;
  if (max === undefined) return;
  const iat = v.payload.iat;
  if (typeof iat !== 'number') throw new BehalfError('user_token_invalid', 'token has no iat (maxTokenAgeSeconds)');
  if (now - iat > max + v.issuer.clockSkewSeconds) throw new BehalfError('user_token_invalid', 'token too old');
}

function sameTyp(expected: string, actual: string | undefined): boolean {
  if (!actual) return false;
  const norm = (s: string) => s.toLowerCase().replace(/^application\//, '');
  return norm(expected) === norm(actual);
}
