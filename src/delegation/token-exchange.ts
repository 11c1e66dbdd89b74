import type { Principal } from '../identity/principal.js';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import type { z } from 'zod';
import type { TokenExchangeDownstreamSchema } from '../config/schema-upstreams.js';
import { resolveSecret } from '../config/secrets.js';
import { BehalfError } from '../errors.js';
import { memoPromise } from '../promise-memo.js';
import type { User } from '../identity/principal.js';
import { fingerprint } from '../shared/hash.js';
import { LOCAL_EXCHANGE_LOCK, type ExchangeLock } from '../state/exchange-lock.js';
import { CredentialCache, credentialKey } from './credential-cache.js';
import type { StrategyContext } from './registry.js';
import { subjectTokenOf } from './subject-token.js';
import type { CredentialRequest, DownstreamCredential, DownstreamStrategy } from './types.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export type TokenExchangeConfig = z.infer<typeof TokenExchangeDownstreamSchema>;

export interface TokenExchangeContext {
  /** The upstream's URL: the exchanged token's audience unless the config names one. */
  upstreamUrl: string;
  /** The trusted user-token issuers (userAuth.issuers): without `issuer` in the config, the exchange goes to the user's own. */
  issuers: readonly string[];
  baseDir: string;
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** Per IdP request (discovery, exchange); default 10 s. */
  timeoutMs?: number;
  /** Cache bound; default 10 000 credentials. */
  maxEntries?: number;
  /** Epoch seconds; for tests. */
  now?: () => number;
  /** Keeps instances of a fleet from exchanging for the same user and tool at once; default: this process only. */
  lock?: ExchangeLock;
}

/** When the token endpoint does not say how long the token lives, it is reused for at most this long. */
const DEFAULT_LIFETIME_SECONDS = 60;

/** Plain HTTP to an IdP only on this machine (the development IdP); anywhere else a token would cross the network in clear. */
function insecureAllowed(url: URL): boolean {
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

/** A network failure or a timeout, as opposed to an answer the IdP gave. */
function unreachable(err: unknown): boolean {
  const name = (err as Error)?.name;
  return (
    (name === 'TypeError' && (err as Error).message === 'fetch failed') ||
    name === 'TimeoutError' ||
    name === 'AbortError'
  );
}

function unavailable(reason: string): BehalfError {
  return new BehalfError('downstream_credential_unavailable', reason);
}

/** An OAuth error code or a short description from the IdP, stripped of anything that could be a token. */
function sanitize(text: unknown, max = 120): string {
  if (typeof text !== 'string') return '';
  return text
    .replace(/[A-Za-z0-9\-_.~+/=]{24,}/g, '[redacted]')
    .replace(/[^\x20-\x7e]/g, '')
    .slice(0, max);
}

/**
 * RFC 8693 token exchange (docs/architecture.md §5): for each call, the user's own token
 * (the subject token) is exchanged at the IdP by the gateway, authenticated as
 * its own client, for a token whose subject is the user, whose actor is the
 * gateway, whose audience is the upstream and whose scope is narrowed to the
 * tool. The upstream never sees the agent's credentials nor the user's
 * incoming token.
 *
 * Exchanged tokens are cached per (user issuer + subject, audience, scope) —
 * never across users — and renewed `refreshSkewSeconds` before they expire;
 * concurrent first calls of one user share one exchange. No credential, no
 * call: every failure rejects, and the gateway refuses the call.
 *
 * Errors name the step that failed and the IdP's OAuth error code, never a
 * token (the gateway logs them).
 */
export class TokenExchangeStrategy implements DownstreamStrategy {
  readonly name = 'token-exchange' as const;
  private readonly client: oauth.Client;
  private readonly auth: oauth.ClientAuth;
  private readonly audience: string;
  private readonly cache: CredentialCache<DownstreamCredential>;
  private readonly servers = new Map<string, Promise<oauth.AuthorizationServer>>();
  private readonly trusted: ReadonlySet<string>;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(
    private readonly cfg: TokenExchangeConfig,
    private readonly ctx: TokenExchangeContext,
  ) {
    // Resolved at start, so a missing secret stops the gateway instead of failing every call.
    this.auth = oauth.ClientSecretBasic(resolveSecret(cfg.clientSecret, ctx.baseDir, ctx.env));
    this.client = { client_id: cfg.clientId };
    this.audience = cfg.audience ?? ctx.upstreamUrl;
    this.trusted = new Set(ctx.issuers);
    this.timeoutMs = ctx.timeoutMs ?? 10_000;
    this.now = ctx.now ?? (() => Date.now() / 1000);
    this.cache = new CredentialCache({
      refreshSkewSeconds: cfg.refreshSkewSeconds,
      maxEntries: ctx.maxEntries,
      now: this.now,
    });
    for (const u of [cfg.issuer, cfg.tokenEndpoint]) {
      if (u && new URL(u).protocol !== 'https:' && !insecureAllowed(new URL(u))) {
        throw new BehalfError('config_invalid', `token exchange: ${u} must be https (plain http only on loopback)`);
      }
    }
  }

  async credentialFor(req: CredentialRequest): Promise<DownstreamCredential> {
    const user = req.principal.user;
    if (!user) throw unavailable('token exchange needs a user, and the request has none');
    const subjectToken = subjectTokenOf(req.principal);
    if (!subjectToken) throw unavailable("token exchange needs the user's token, and the request has none");
    const scopes = (req.tool !== undefined ? this.cfg.toolScopes[req.tool] : undefined) ?? this.cfg.scopes;
    const scope = [...new Set(scopes)].sort().join(' ');
    // Everything the exchanged token depends on, starting with who the user is: never shared across users.
    const key = credentialKey(user.issuer, user.subject, this.audience, scope);
    const lock = this.ctx.lock ?? LOCAL_EXCHANGE_LOCK;
    return this.cache.get(key, () => lock.around(key, () => this.exchange(user, subjectToken, scope)));
  }

  forgetUser(p: Principal): void {
    if (p.user) this.cache.forgetUser(p.user.issuer, p.user.subject);
  }

  close(): void {
    this.cache.clear();
  }

  private async exchange(user: User, subjectToken: string, scope: string): Promise<DownstreamCredential> {
    const as = await this.server(user);
    const params = new URLSearchParams({
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      requested_token_type: ACCESS_TOKEN_TYPE,
    });
    // A URL names a resource (RFC 8707); anything else is a logical audience (RFC 8693).
    params.set(URL.canParse(this.audience) ? 'resource' : 'audience', this.audience);
    if (scope) params.set('scope', scope);

    let response: Response;
    try {
      response = await oauth.genericTokenEndpointRequest(
        as,
        this.client,
        this.auth,
        TOKEN_EXCHANGE_GRANT,
        params,
        this.requestOptions(as.token_endpoint!),
      );
    } catch (err) {
      // The IdP may have moved or restarted: look it up again next time. Reduced to its name, never
      // kept as the cause: the library's errors may carry the request, and the request a token.
      this.servers.delete(as.issuer);
      throw unavailable(
        `token exchange at ${as.issuer}: token endpoint ${unreachable(err) ? 'unreachable' : 'request failed'} (${sanitize((err as Error)?.name, 40)})`,
      );
    }
    let body: oauth.TokenEndpointResponse;
    try {
      body = await oauth.processGenericTokenEndpointResponse(as, this.client, response);
    } catch (err) {
      // Never the error object itself: oauth4webapi attaches the response body, which may hold a token.
      if (err instanceof oauth.ResponseBodyError) {
        const why = sanitize(err.error_description);
        throw unavailable(
          `token exchange refused by ${as.issuer}: ${sanitize(err.error, 60)}${why ? ` (${why})` : ''}`,
        );
      }
      throw unavailable(
        `token exchange at ${as.issuer}: unusable token response (${sanitize((err as { code?: string })?.code ?? (err as Error)?.name, 60)})`,
      );
    }
    if (body.token_type !== 'bearer')
      throw unavailable(`token exchange at ${as.issuer}: token_type ${sanitize(body.token_type, 20)} is not supported`);
    const issued = body.issued_token_type;
    if (issued !== undefined && issued !== ACCESS_TOKEN_TYPE)
      throw unavailable(
        `token exchange at ${as.issuer}: issued_token_type ${sanitize(issued, 80)} is not an access token`,
      );
    return this.credentialOf(body, user);
  }

  /** Headers, audit id and expiry of an exchanged token; a JWT that names another subject is refused outright. */
  private credentialOf(body: oauth.TokenEndpointResponse, user: User): DownstreamCredential {
    const token = body.access_token;
    let claims: { sub?: unknown; jti?: unknown; exp?: unknown } | undefined;
    try {
      claims = decodeJwt(token);
    } catch {
      claims = undefined; // an opaque token: only the endpoint's expires_in says how long it lives
    }
    if (claims && claims.sub !== undefined && claims.sub !== user.subject) {
      throw unavailable('token exchange returned a token for another subject');
    }
    const now = this.now();
    const expiries = [
      typeof body.expires_in === 'number' ? now + body.expires_in : undefined,
      typeof claims?.exp === 'number' ? claims.exp : undefined,
    ].filter((x): x is number => x !== undefined);
    const expiresAt = Math.floor(expiries.length ? Math.min(...expiries) : now + DEFAULT_LIFETIME_SECONDS);
    const id = typeof claims?.jti === 'string' && claims.jti ? claims.jti : `fp:${fingerprint(token)}`;
    return { headers: { authorization: `Bearer ${token}` }, id, expiresAt };
  }

  /** The authorization server: from `tokenEndpoint`, else discovered from the configured issuer or the user's own (cached). */
  private server(user: User): Promise<oauth.AuthorizationServer> {
    const issuer = this.cfg.issuer ?? user.issuer;
    if (!this.cfg.issuer && !this.trusted.has(issuer))
      return Promise.reject(unavailable("the user's issuer is not a configured one"));
    if (this.cfg.tokenEndpoint) return Promise.resolve({ issuer, token_endpoint: this.cfg.tokenEndpoint });
    return memoPromise(this.servers, issuer, () => this.discover(issuer));
  }

  private async discover(issuer: string): Promise<oauth.AuthorizationServer> {
    const url = new URL(issuer);
    if (url.protocol !== 'https:' && !insecureAllowed(url))
      throw unavailable(`token exchange: issuer ${issuer} is not https`);
    let lastFailure = 'unreachable';
    // OpenID Connect discovery first, then RFC 8414 (an OAuth-only server).
    for (const algorithm of ['oidc', 'oauth2'] as const) {
      try {
        const res = await oauth.discoveryRequest(url, { algorithm, ...this.requestOptions(issuer) });
        const as = await oauth.processDiscoveryResponse(url, res);
        if (!as.token_endpoint) throw unavailable(`token exchange: ${issuer} publishes no token endpoint`);
        this.ctx.log(`token exchange: using the token endpoint of ${issuer}`);
        return as;
      } catch (err) {
        if (err instanceof BehalfError) throw err;
        lastFailure = unreachable(err)
          ? 'unreachable'
          : sanitize((err as { code?: string })?.code ?? (err as Error)?.name, 60) || 'error';
      }
    }
    throw unavailable(`token exchange: discovery of ${issuer} failed (${lastFailure})`);
  }

  /** A deadline, and plain HTTP only to a loopback endpoint. */
  private requestOptions(endpoint: string): { signal: AbortSignal; [oauth.allowInsecureRequests]?: boolean } {
    return {
      signal: AbortSignal.timeout(this.timeoutMs),
      ...(insecureAllowed(new URL(endpoint)) ? { [oauth.allowInsecureRequests]: true } : {}),
    };
  }
}

/** The default maker of token-exchange strategies, from the gateway's own config (registered by startGateway). */
export function tokenExchangeFactory(ctx: StrategyContext): (upstream: string) => DownstreamStrategy {
  return (name) => {
    const u = ctx.config.upstreams[name];
    if (!u || u.transport === 'stdio' || u.downstream.strategy !== 'token-exchange') {
      throw new Error(`upstream ${name}: not a token-exchange upstream`);
    }
    return new TokenExchangeStrategy(u.downstream, {
      upstreamUrl: u.url,
      issuers: ctx.config.userAuth.issuers.map((i) => i.issuer),
      baseDir: ctx.baseDir,
      env: ctx.env,
      log: ctx.log,
      lock: ctx.exchangeLock,
    });
  };
}
