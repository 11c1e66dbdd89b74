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
    this.pending ??= this.load().finally(() => {
      this.pending = undefined;
    });
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
    // Why each candidate failed, so the operator can tell an issuer that is down from one misconfigured.
    const failures: string[] = [];
    let cause: unknown;
    for (const url of candidates) {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.options.timeoutMs) }).catch((err: unknown) => {
        cause = err;
        failures.push(`${url}: no answer (${noAnswerReason(err)})`);
        return undefined;
      });
      if (!res) continue;
      if (!res.ok) {
        failures.push(`${url}: HTTP ${res.status}`);
        continue;
      }
      const doc = (await res.json().catch((err: unknown) => {
        cause = err;
        failures.push(`${url}: not JSON`);
        return undefined;
      })) as { issuer?: unknown; jwks_uri?: unknown } | undefined;
      if (!doc) continue;
      // A discovery document for another issuer is a mix-up, not a key source.
      if (doc.issuer !== this.issuer.issuer && doc.issuer !== base) failures.push(`${url}: names another issuer`);
      else if (typeof doc.jwks_uri === 'string') return doc.jwks_uri;
      else failures.push(`${url}: no jwks_uri`);
    }
    throw new Error(`issuer discovery failed: ${failures.join('; ')}`, { cause });
  }
}

/** fetch fails with a TypeError whose cause names the socket error (ECONNREFUSED, ENOTFOUND…); a timeout by its name. */
function noAnswerReason(err: unknown): string {
  const code = (err as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
}
