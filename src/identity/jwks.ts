import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import type { IssuerConfig } from '../config/schema.js';

/**
 * Key sets per issuer, found through OIDC/OAuth discovery unless a jwksUri is
 * configured. jose's remote set caches keys and refetches on an unknown kid
 * (rate-limited by the cooldown), which is what makes key rotation work
 * without restarts.
 */
export class IssuerKeys {
  private keySet?: JWTVerifyGetKey;
  private pending?: Promise<JWTVerifyGetKey>;

  constructor(
    private readonly issuer: IssuerConfig,
    private readonly options: { cooldownMs: number; cacheMaxAgeMs: number; timeoutMs: number },
  ) {}

  async get(): Promise<JWTVerifyGetKey> {
    if (this.keySet) return this.keySet;
    // One discovery in flight per issuer; a failure is not cached, so the next call retries.
    this.pending ??= this.load().finally(() => { this.pending = undefined; });
    return this.pending;
  }

  private async load(): Promise<JWTVerifyGetKey> {
    const uri = this.issuer.jwksUri ?? (await this.discoverJwksUri());
    this.keySet = createRemoteJWKSet(new URL(uri), {
      cooldownDuration: this.options.cooldownMs,
      cacheMaxAge: this.options.cacheMaxAgeMs,
      timeoutDuration: this.options.timeoutMs,
    });
    return this.keySet;
  }

  private async discoverJwksUri(): Promise<string> {
    const base = this.issuer.issuer.replace(/\/$/, '');
    const candidates = [`${base}/.well-known/openid-configuration`, `${base}/.well-known/oauth-authorization-server`];
    for (const url of candidates) {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.options.timeoutMs) }).catch(() => undefined);
      if (!res?.ok) continue;
      const doc = (await res.json().catch(() => undefined)) as { issuer?: unknown; jwks_uri?: unknown } | undefined;
      // A discovery document for another issuer is a mix-up, not a key source.
      if (doc?.issuer !== this.issuer.issuer && doc?.issuer !== base) continue;
      if (typeof doc.jwks_uri === 'string') return doc.jwks_uri;
    }
    throw new Error('issuer discovery failed');
  }
}
