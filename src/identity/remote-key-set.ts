import {
  createLocalJWKSet,
  errors as joseErrors,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  type FlattenedJWSInput,
  type CompactJWSHeaderParameters,
} from 'jose';

/** How a remote key set is fetched and how often (config `issuers[].keyFetch`, `signedContext.keyFetch`). */
export interface KeyFetchPolicy {
  /** A fetch (discovery or key set) that takes longer fails. */
  timeoutMs: number;
  /** At most one fetch per this interval, whether it succeeded or not. */
  minRefetchMs: number;
  /** A kid that a fetch did not contain is refused without another fetch for this long. */
  unknownKidMs: number;
  /** Keys older than this are fetched again before use. */
  maxAgeMs: number;
}

/** The keys could not be had (fetch failed, or failed recently and is cooling down); the message says which, never a key. */
export class KeySetUnavailable extends Error {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`issuer keys unavailable (${reason})`, options);
    this.name = 'KeySetUnavailable';
  }
}

/** Remembered unknown kids, at most this many: past it the oldest go (the fetch rate limit still holds). */
const MAX_UNKNOWN_KIDS = 1024;

/**
 * A remote JWKS with failure paths that cost nothing (issue: a hung IdP
 * made every token with an unknown kid wait out a 5 s fetch, and failures
 * were never cached, so unknown kids were an amplification lever).
 *
 * - Concurrent lookups share one fetch.
 * - At most one fetch per `minRefetchMs`, counted from its start and
 *   whatever it ended with: a kid not in the current keys, or keys that
 *   cannot be had, is refused at once in between, without touching the IdP.
 * - A kid that a completed fetch did not contain is remembered as unknown for
 *   `unknownKidMs` (forgotten early when a later fetch brings it).
 * - Fails closed: keys past `maxAgeMs` that cannot be refreshed are not used.
 *
 * Key rotation keeps working: a token signed with a newly published key is
 * accepted by the first lookup after the cool-down.
 */
export class RemoteKeySet {
  private local?: { getKey: JWTVerifyGetKey; fetchedAt: number };
  private lastAttempt = -Infinity;
  private lastFailure?: unknown;
  private pending?: Promise<void>;
  private readonly unknownKids = new Map<string, number>();
  /** The kids of the last key set fetched. */
  private kids?: Set<string>;
  /** Told of kids the previous fetch had and this one has not: a key withdrawn by its issuer (src/revocation/). */
  onWithdrawn?: (kids: string[]) => void;

  constructor(
    private readonly load: () => Promise<JSONWebKeySet>,
    private readonly policy: KeyFetchPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /** The lookup `jwtVerify` calls. */
  readonly getKey: JWTVerifyGetKey = (header, token) => this.lookup(header, token);

  private async lookup(header: CompactJWSHeaderParameters, token: FlattenedJWSInput) {
    const kid = header.kid;
    if (kid !== undefined && (this.unknownKids.get(kid) ?? -Infinity) > this.now())
      throw new joseErrors.JWKSNoMatchingKey();
    if (!this.local || this.now() - this.local.fetchedAt >= this.policy.maxAgeMs) await this.refresh();
    try {
      return await this.local!.getKey(header, token);
    } catch (err) {
      // Only a missing key is worth a refetch; within the cool-down not even that.
      if (!(err instanceof joseErrors.JWKSNoMatchingKey) || (!this.pending && !this.mayFetch())) throw err;
    }
    await this.refresh();
    try {
      return await this.local!.getKey(header, token);
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey && kid !== undefined) this.rememberUnknown(kid);
      throw err;
    }
  }

  /** A scheduled refetch (issuers[].keyRefreshSeconds), within the same cool-down as every other fetch. */
  refreshNow(): Promise<void> {
    return this.pending || this.mayFetch() ? this.refresh() : Promise.resolve();
  }

  /**
   * For /readyz: true when usable keys are held; when they are not (never
   * fetched, or past their maximum age), one fetch is tried within the
   * usual bounds (a fetch in flight is shared, the cool-down holds).
   */
  async loaded(): Promise<boolean> {
    if (this.local && this.now() - this.local.fetchedAt < this.policy.maxAgeMs) return true;
    try {
      await this.refresh();
      return true;
    } catch (err) {
      // The fetch's own failure is kept (lastFailure) and told to the next verification; readiness only says no.
      return err === undefined;
    }
  }

  private mayFetch(): boolean {
    return this.now() - this.lastAttempt >= this.policy.minRefetchMs;
  }

  /** The fetch in flight, a new one if the cool-down allows it, else an immediate refusal. */
  private refresh(): Promise<void> {
    if (this.pending) return this.pending;
    if (!this.mayFetch()) {
      const wait = Math.ceil(this.lastAttempt + this.policy.minRefetchMs - this.now());
      return Promise.reject(
        new KeySetUnavailable(
          this.lastFailure
            ? `the last fetch failed; next one in ${wait} ms`
            : `the keys are stale and were fetched too recently; next fetch in ${wait} ms`,
          { cause: this.lastFailure },
        ),
      );
    }
    this.lastAttempt = this.now();
    const fetching: Promise<void> = this.fetchOnce().finally(() => {
      if (this.pending === fetching) this.pending = undefined;
    });
    this.pending = fetching;
    return fetching;
  }

  private async fetchOnce(): Promise<void> {
    try {
      const jwks = await this.load();
      const kids = new Set(jwks.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
      this.local = { getKey: createLocalJWKSet(jwks), fetchedAt: this.now() };
      this.lastFailure = undefined;
      for (const kid of kids) this.unknownKids.delete(kid);
      const withdrawn = this.kids ? [...this.kids].filter((k) => !kids.has(k)) : [];
      this.kids = kids;
      if (withdrawn.length) this.onWithdrawn?.(withdrawn);
    } catch (err) {
      this.lastFailure = err;
      throw err instanceof KeySetUnavailable ? err : new KeySetUnavailable('fetch failed', { cause: err });
    }
  }

  private rememberUnknown(kid: string): void {
    if (this.policy.unknownKidMs <= 0) return;
    this.unknownKids.delete(kid);
    if (this.unknownKids.size >= MAX_UNKNOWN_KIDS) {
      // Insertion order: the first key is the oldest entry.
      const oldest = this.unknownKids.keys().next().value;
      if (oldest !== undefined) this.unknownKids.delete(oldest);
    }
    this.unknownKids.set(kid, this.now() + this.policy.unknownKidMs);
  }
}

/** fetch fails with a TypeError whose cause names the socket error (ECONNREFUSED, ENOTFOUND…); a timeout by its name. */
export function noAnswerReason(err: unknown): string {
  const code = (err as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
}

/** GETs a JWKS within the timeout: not following redirects, refusing anything that is not a key set. */
export async function fetchJwks(uri: string, timeoutMs: number): Promise<JSONWebKeySet> {
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(uri, {
      signal,
      redirect: 'manual',
      headers: { accept: 'application/json, application/jwk-set+json' },
    });
  } catch (err) {
    throw new KeySetUnavailable(`no answer from ${uri}: ${noAnswerReason(err)}`, { cause: err });
  }
  if (res.status !== 200) {
    // Best effort: the body is not wanted, and a cancel that fails leaves nothing to clean up.
    await res.body?.cancel().catch(() => undefined);
    throw new KeySetUnavailable(`${uri} answered HTTP ${res.status}`);
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch (err) {
    if (signal.aborted) throw new KeySetUnavailable(`${uri}: TimeoutError`, { cause: err });
    // Not kept as the cause: the parser's message quotes the body (docs/architecture.md §6).
    throw new KeySetUnavailable(`${uri} did not answer JSON`);
  }
  const keys = (body as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'object' && k !== null))
    throw new KeySetUnavailable(`${uri} did not answer a key set`);
  return body as JSONWebKeySet;
}
