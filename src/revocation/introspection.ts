import type { IssuerConfig } from '../config/schema.js';
import type { IntrospectionConfig } from '../config/schema-revocation.js';
import { resolveSecret } from '../config/secrets.js';
import { subjectTokenOf } from '../delegation/subject-token.js';
import { BehalfError, describeError } from '../errors.js';
import type { Principal, User } from '../identity/principal.js';
import { noAnswerReason } from '../identity/remote-key-set.js';
import type { RevocationRequest } from './service.js';

interface Issuer {
  cfg: IntrospectionConfig;
  basic: string;
}

const MAX_CACHED = 10_000;

/**
 * RFC 7662 token introspection, per issuer (docs/revocation.md). A token's
 * answer is cached for `cacheMs`; the tokens of open sessions are asked
 * again at that interval (`watch`), so a token made inactive at its issuer
 * ends its sessions and streams that late at most. An inactive answer
 * becomes a revocation of the token (by jti, else fingerprint) until it
 * expires. When the endpoint cannot answer, the issuer's `onFailure`
 * decides: closed (default) refuses the request with 503 (state_unavailable), open serves the
 * token, whose signature and claims were verified here, and logs it.
 */
export class Introspector {
  private readonly issuers = new Map<string, Issuer>();
  private readonly cache = new Map<string, { active: boolean; until: number }>();
  private readonly inflight = new Map<string, Promise<boolean>>();
  private timer?: NodeJS.Timeout;

  constructor(
    issuers: readonly IssuerConfig[],
    private readonly o: {
      baseDir: string;
      env?: NodeJS.ProcessEnv;
      log: (line: string) => void;
      revoke: (r: RevocationRequest) => Promise<unknown>;
    },
  ) {
    for (const i of issuers) {
      if (!i.introspection) continue;
      const secret = resolveSecret(i.introspection.clientSecret, o.baseDir, o.env);
      const basic = Buffer.from(
        `${encodeURIComponent(i.introspection.clientId)}:${encodeURIComponent(secret)}`,
      ).toString('base64');
      this.issuers.set(i.issuer, { cfg: i.introspection, basic });
    }
  }

  get enabled(): boolean {
    return this.issuers.size > 0;
  }

  /** The per-request check: refuses an inactive token, and, failing closed, one that cannot be checked. */
  async check(p: Principal): Promise<void> {
    const u = p.user;
    const issuer = u && this.issuers.get(u.issuer);
    const token = issuer && subjectTokenOf(p);
    if (!u || !issuer || !token) return;
    let active: boolean;
    try {
      active = await this.activeOf(u, token, issuer);
    } catch (err) {
      if (issuer.cfg.onFailure === 'open') {
        this.o.log(`INTROSPECTION UNAVAILABLE (${u.issuer}, failing open): ${describeError(err)}`);
        return;
      }
      // The same 503 as shared state the gateway needs and cannot reach; which endpoint, and why, go to the log only.
      throw new BehalfError(
        'state_unavailable',
        `introspection: ${describeError(err)}`,
        { retryAfter: '1' },
        { cause: err },
      );
    }
    if (!active) throw new BehalfError('user_token_invalid', 'inactive at its issuer (introspection)');
  }

  /** Asks again, at each issuer's cacheMs, about the tokens of the sessions still open. */
  watch(principals: () => Iterable<Principal>): void {
    if (!this.enabled) return;
    const every = Math.min(...[...this.issuers.values()].map((i) => i.cfg.cacheMs));
    this.timer = setInterval(() => {
      for (const p of principals()) {
        const issuer = p.user && this.issuers.get(p.user.issuer);
        const token = issuer && subjectTokenOf(p);
        // A failure here ends nothing: the token's next request meets the issuer's onFailure choice.
        if (p.user && issuer && token)
          this.activeOf(p.user, token, issuer).catch((err: unknown) =>
            this.o.log(`introspection of an open session's token failed: ${describeError(err)}`),
          );
      }
    }, every);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private activeOf(u: User, token: string, issuer: Issuer): Promise<boolean> {
    const key = u.tokenFingerprint;
    const hit = this.cache.get(key);
    if (hit && hit.until > Date.now()) return Promise.resolve(hit.active);
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = this.introspect(token, issuer)
      .then((active) => {
        this.remember(key, active, issuer.cfg.cacheMs);
        if (!active) void this.revokeToken(u, issuer);
        return active;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private revokeToken(u: User, issuer: Issuer): Promise<unknown> {
    return this.o
      .revoke({
        kind: 'token',
        value: u.tokenId ?? u.tokenFingerprint,
        reason: 'token inactive at its issuer',
        actor: `introspection ${new URL(issuer.cfg.endpoint).host}`,
        source: 'introspection',
        ttlMs: Math.max(1000, u.expiresAt * 1000 - Date.now() + 60_000),
      })
      .catch((err: unknown) => this.o.log(`revocation after introspection failed: ${describeError(err)}`));
  }

  private async introspect(token: string, issuer: Issuer): Promise<boolean> {
    let res: Response;
    try {
      res = await fetch(issuer.cfg.endpoint, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(issuer.cfg.timeoutMs),
        headers: {
          authorization: `Basic ${issuer.basic}`,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      });
    } catch (err) {
      throw new Error(`no answer from ${issuer.cfg.endpoint}: ${noAnswerReason(err)}`, { cause: err });
    }
    if (res.status !== 200) {
      // Best effort: the body is not wanted.
      await res.body?.cancel().catch(() => undefined);
      throw new Error(`${issuer.cfg.endpoint} answered HTTP ${res.status}`);
    }
    // Not JSON is answered below as "not an introspection"; the body is never quoted (it may echo the token).
    const body = (await res.json().catch(() => undefined)) as { active?: unknown } | undefined;
    if (typeof body?.active !== 'boolean') throw new Error(`${issuer.cfg.endpoint} did not answer an introspection`);
    return body.active;
  }

  private remember(key: string, active: boolean, ms: number): void {
    if (this.cache.size >= MAX_CACHED) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, { active, until: Date.now() + ms });
  }
}
