import type { IssuerConfig } from '../config/schema.js';
import type { KeyFetchConfig } from '../config/schema-clients.js';
import { fetchJwks, KeySetUnavailable, noAnswerReason, RemoteKeySet, type KeyFetchPolicy } from './remote-key-set.js';

/** Programmatic overrides of the configured key fetching (tests and embedders). */
export interface KeyFetchOverrides {
  /** The cool-down of an unknown kid: both the refetch interval and how long a kid is remembered as unknown. */
  jwksCooldownMs?: number;
  jwksCacheMaxAgeMs?: number;
  timeoutMs?: number;
}

export function keyFetchPolicy(cfg: KeyFetchConfig, o: KeyFetchOverrides = {}): KeyFetchPolicy {
  return {
    timeoutMs: o.timeoutMs ?? cfg.timeoutMs,
    minRefetchMs: o.jwksCooldownMs ?? cfg.minRefetchSeconds * 1000,
    unknownKidMs: o.jwksCooldownMs ?? cfg.unknownKidSeconds * 1000,
    maxAgeMs: o.jwksCacheMaxAgeMs ?? cfg.maxAgeSeconds * 1000,
  };
}

/**
 * An issuer's key set, found through OIDC/OAuth discovery unless a jwksUri is
 * configured. Discovery is part of the first fetch, so it is bounded and
 * rate-limited like every fetch (remote-key-set.ts); the URI it finds is kept.
 */
export class IssuerKeys {
  readonly keySet: RemoteKeySet;
  private jwksUri?: string;
  private refresher?: NodeJS.Timeout;

  constructor(
    private readonly issuer: IssuerConfig,
    private readonly policy: KeyFetchPolicy,
  ) {
    this.jwksUri = issuer.jwksUri;
    this.keySet = new RemoteKeySet(async () => {
      this.jwksUri ??= await this.discoverJwksUri();
      return fetchJwks(this.jwksUri, policy.timeoutMs);
    }, policy);
  }

  /** Fetches the key set every `ms`, so a key the issuer stopped publishing is noticed without waiting for a token. */
  refreshEvery(ms: number, log: (line: string) => void): void {
    this.refresher = setInterval(() => {
      this.keySet
        .refreshNow()
        .catch((err: unknown) => log(`key set of ${this.issuer.issuer}: ${(err as Error).message}`));
    }, ms);
    this.refresher.unref();
  }

  close(): void {
    clearInterval(this.refresher);
  }

  private async discoverJwksUri(): Promise<string> {
    const base = this.issuer.issuer.replace(/\/$/, '');
    const candidates = [`${base}/.well-known/openid-configuration`, `${base}/.well-known/oauth-authorization-server`];
    // One deadline for the whole discovery, so a hung IdP costs one timeout, not one per candidate.
    const signal = AbortSignal.timeout(this.policy.timeoutMs);
    // Why each candidate failed, so the operator can tell an issuer that is down from one misconfigured.
    const failures: string[] = [];
    let cause: unknown;
    for (const url of candidates) {
      const res = await fetch(url, { signal }).catch((err: unknown) => {
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
    throw new KeySetUnavailable(`discovery failed: ${failures.join('; ')}`, { cause });
  }
}
