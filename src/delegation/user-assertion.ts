import type { Principal } from '../identity/principal.js';
import type { z } from 'zod';
import type { UpstreamConfig } from '../config/schema.js';
import type { UserAssertionDownstreamSchema } from '../config/schema-upstreams.js';
import { USER_ASSERTION_RESERVED_CLAIMS } from '../config/schema-upstreams.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { CredentialCache, credentialKey } from './credential-cache.js';
import type { CredentialRequest, DownstreamCredential, DownstreamStrategy, GatewaySigner } from './types.js';

export type UserAssertionConfig = z.infer<typeof UserAssertionDownstreamSchema>;

export interface UserAssertionOptions {
  /** Epoch seconds; for tests. */
  now?: () => number;
  /** Most cached assertions (one per client, user and audience); default 10 000. */
  cacheEntries?: number;
}

/** Renew an assertion this long before it expires (at most half its lifetime: see CredentialCache). */
const REFRESH_SKEW_SECONDS = 15;

/**
 * `user-assertion` (docs/architecture.md §5): the upstream receives a short-lived JWT about
 * the user, signed by the gateway's own keys, instead of anything the caller
 * sent. Claims:
 *
 *   iss        the gateway (signer.issuer)
 *   sub        the user's subject, as her issuer named her
 *   user_iss   that issuer (a subject means nothing without it)
 *   aud        config `audience`, else the upstream's URL
 *   client_id  the authenticated client (the agent) the call came through
 *   jti, iat, exp = now + lifetimeSeconds
 *   + the user claims named in config `claims` (only those the issuer's
 *     `userClaims` let through; the gateway's own claims cannot be overridden)
 *
 * One assertion is reused for the same (client, user, audience, claims) until
 * shortly before it expires — never across users or agents. Traffic that is
 * for no user (a session's own `initialize` on a signed-context route, whose
 * user comes per message) carries no assertion: there is nobody to assert.
 */
export class UserAssertionStrategy implements DownstreamStrategy {
  readonly name = 'user-assertion' as const;
  private readonly cache: CredentialCache<DownstreamCredential>;
  private readonly claimNames: string[];

  constructor(
    private readonly cfg: UserAssertionConfig,
    private readonly audience: string,
    private readonly signer: GatewaySigner,
    o: UserAssertionOptions = {},
  ) {
    this.claimNames = cfg.claims.filter((c) => !USER_ASSERTION_RESERVED_CLAIMS.has(c));
    this.cache = new CredentialCache<DownstreamCredential>({
      refreshSkewSeconds: REFRESH_SKEW_SECONDS,
      maxEntries: o.cacheEntries,
      now: o.now,
    });
  }

  /** The audience an upstream's assertions name: config, else the upstream's URL (a stdio upstream has none: say it). */
  static audienceFor(name: string, cfg: UserAssertionConfig, upstream: UpstreamConfig): string {
    if (cfg.audience) return cfg.audience;
    if (upstream.transport !== 'stdio') return upstream.url;
    throw new Error(`upstream ${name}: a user-assertion for a stdio upstream needs downstream.audience`);
  }

  async credentialFor(req: CredentialRequest): Promise<DownstreamCredential | undefined> {
    const { user, client } = req.principal;
    if (!user) return undefined;
    const claims: Record<string, unknown> = {};
    for (const name of this.claimNames) if (user.claims[name] !== undefined) claims[name] = user.claims[name];
    const key = credentialKey(client.id, user.issuer, user.subject, this.audience, canonicalJson(claims));
    return this.cache.get(key, async () => {
      const signed = await this.signer.sign(
        { ...claims, sub: user.subject, user_iss: user.issuer, client_id: client.id },
        { audience: this.audience, lifetimeSeconds: this.cfg.lifetimeSeconds },
      );
      const value = this.cfg.header === 'authorization' ? `Bearer ${signed.token}` : signed.token;
      return { headers: { [this.cfg.header]: value }, id: `ua:${signed.jti}`, expiresAt: signed.expiresAt };
    });
  }

  forgetUser(p: Principal): void {
    if (p.user) this.cache.forgetUser(p.user.issuer, p.user.subject);
  }

  close(): void {
    this.cache.clear();
  }
}

/** The `user-assertion` entry of `StrategyFactories`: every upstream that names it signs with `signer`. */
export function userAssertionFactory(
  upstreams: Record<string, UpstreamConfig>,
  signer: GatewaySigner,
  o: UserAssertionOptions = {},
): (upstream: string) => DownstreamStrategy {
  return (name) => {
    const u = upstreams[name];
    if (u?.downstream.strategy !== 'user-assertion') throw new Error(`upstream ${name}: not a user-assertion upstream`);
    return new UserAssertionStrategy(u.downstream, UserAssertionStrategy.audienceFor(name, u.downstream, u), signer, o);
  };
}
