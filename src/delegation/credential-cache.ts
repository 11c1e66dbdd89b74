/**
 * A cache of downstream credentials, for any strategy that derives one per
 * user (token exchange, user assertions).
 *
 * The key is built by the caller with `credentialKey` from everything the
 * credential depends on — at least the user's issuer and subject — so an
 * entry is never served to another user (Pomerium PR #6165: a per-user
 * upstream token cached once and then served to everyone).
 *
 * - An entry is used until `expiresAt - skew`, where the skew is
 *   `refreshSkewSeconds` but at most half the credential's lifetime, so a
 *   short-lived credential is still reused for a while rather than fetched
 *   on every call.
 * - Single flight: concurrent requests for one key share one fetch.
 * - A failed fetch is not cached: the next request tries again.
 * - Bounded: past `maxEntries` the least recently used entry goes.
 */

export interface Expiring {
  /** Epoch seconds; undefined = does not expire. */
  expiresAt?: number;
}

export interface CredentialCacheOptions {
  /** Renew this long before expiry (seconds). */
  refreshSkewSeconds: number;
  /** Default 10 000. */
  maxEntries?: number;
  /** Epoch seconds; for tests. */
  now?: () => number;
}

interface Entry<T> {
  value: T;
  /** Epoch seconds after which the entry is not served; Infinity = until evicted. */
  freshUntil: number;
}

/** A cache key from its parts; JSON, so no choice of separator can make two different tuples collide. */
export function credentialKey(...parts: readonly string[]): string {
  return JSON.stringify(parts);
}

export class CredentialCache<T extends Expiring> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly inflight = new Map<string, Promise<T>>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(private readonly o: CredentialCacheOptions) {
    this.maxEntries = Math.max(1, o.maxEntries ?? 10_000);
    this.now = o.now ?? (() => Date.now() / 1000);
  }

  /** The cached credential for `key` while fresh, else the result of one `fetch` shared by all concurrent callers. */
  get(key: string, fetch: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit) {
      if (this.now() < hit.freshUntil) {
        // Re-inserting moves the entry to the end of the Map's order: least recently used stays first.
        this.entries.delete(key);
        this.entries.set(key, hit);
        return Promise.resolve(hit.value);
      }
      this.entries.delete(key);
    }
    const pending = this.inflight.get(key);
    if (pending) return pending;
    // fetch runs on a later tick, so the promise is registered before anything can settle it.
    const p = Promise.resolve()
      .then(fetch)
      .then((value) => {
        this.store(key, value);
        return value;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /** Forgets one key (e.g. a credential the downstream refused). */
  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  /** Forgets every entry of one user (revoked): keys built by credentialKey that hold both her issuer and subject. */
  forgetUser(issuer: string, subject: string): void {
    for (const key of this.entries.keys()) {
      const parts = JSON.parse(key) as unknown;
      if (Array.isArray(parts) && parts.includes(issuer) && parts.includes(subject)) this.entries.delete(key);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  private store(key: string, value: T): void {
    let freshUntil = Infinity;
    if (value.expiresAt !== undefined) {
      const lifetime = Math.max(0, value.expiresAt - this.now());
      freshUntil = value.expiresAt - Math.min(this.o.refreshSkewSeconds, lifetime / 2);
    }
    if (!(this.now() < freshUntil)) return;
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    this.entries.set(key, { value, freshUntil });
  }
}
