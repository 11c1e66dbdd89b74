import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { GatewaySigner } from '../delegation/types.js';
import { BehalfError } from '../errors.js';
import { keyState } from './lifecycle.js';
import type { SigningKeyMaterial } from './ring.js';

/**
 * The gateway's signing identity, backed by the key store's signing keys.
 *
 * Signs with the newest active key (latest createdAt) whose notAfter leaves
 * room for the token's whole lifetime — so a token never outlives the key
 * that verifies it — and, failing that, with the newest active key, the
 * token's exp cut to the key's notAfter. Publishes every key a verifier may
 * still meet: active ones, rotated-out ones until their notAfter, and ones
 * waiting for their notBefore (published ahead, so verifiers that cache the
 * JWKS know a key before the first token signed with it arrives).
 */
export class KeyStoreSigner implements GatewaySigner {
  constructor(
    /** The gateway's base URL; a function when the listening port is known only after the keys are loaded. */
    private readonly issuerOf: string | (() => string),
    private readonly keys: () => readonly SigningKeyMaterial[],
    private readonly clock: () => number = Date.now,
  ) {}

  get issuer(): string {
    return typeof this.issuerOf === 'string' ? this.issuerOf : this.issuerOf();
  }

  async sign(
    claims: Record<string, unknown>,
    opts: { audience: string; lifetimeSeconds: number },
  ): Promise<{ token: string; jti: string; kid: string; expiresAt: number }> {
    const now = this.clock();
    const key = pickSigningKey(this.keys(), now, opts.lifetimeSeconds * 1000);
    if (!key?.privateKey)
      throw new BehalfError('downstream_credential_unavailable', 'the gateway has no usable signing key');
    const iat = Math.floor(now / 1000);
    const exp = Math.min(iat + opts.lifetimeSeconds, Math.floor(key.lifecycle.notAfter! / 1000));
    const jti = randomBytes(16).toString('base64url');
    // Registered claims are set last: a caller's claims cannot change issuer, audience, times or id.
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setAudience(opts.audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(key.privateKey);
    return { token, jti, kid: key.kid, expiresAt: exp };
  }

  jwks(): { keys: Record<string, unknown>[] } {
    const now = this.clock();
    return {
      keys: newestFirst(
        this.keys().filter((k) => {
          const s = keyState(k.lifecycle, now);
          return s === 'active' || s === 'not-yet-valid';
        }),
      ).map((k) => {
        // Only the public members, named one by one: nothing private can slip through.
        const { kty, crv, x, y } = k.publicJwk;
        return { kty, crv, x, y, kid: k.kid, alg: k.alg, use: 'sig' };
      }),
    };
  }
}

/** Latest createdAt first; the store's times are whole seconds, so among equals the later entry (appended later) wins. */
function newestFirst(keys: readonly SigningKeyMaterial[]): SigningKeyMaterial[] {
  const at = (k: SigningKeyMaterial) => k.lifecycle.createdAt ?? k.lifecycle.notBefore ?? 0;
  return keys
    .map((k, i) => ({ k, i }))
    .sort((a, b) => at(b.k) - at(a.k) || b.i - a.i)
    .map((x) => x.k);
}

export function pickSigningKey(
  keys: readonly SigningKeyMaterial[],
  now: number,
  lifetimeMs: number,
): SigningKeyMaterial | undefined {
  const usable = newestFirst(
    keys.filter((k) => k.privateKey && k.lifecycle.notAfter !== undefined && keyState(k.lifecycle, now) === 'active'),
  );
  return usable.find((k) => k.lifecycle.notAfter! >= now + lifetimeMs) ?? usable[0];
}
