import './runtime-notice.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import { issueAccessToken } from './issue-token.js';
import { resourceServerInfo, type ResourcePolicy } from './resource.js';
import type { DevUser } from './types.js';

interface PasswordParams {
  username?: string;
  password?: string;
  ttl?: string;
}

/**
 * Registers the resource owner password grant (RFC 6749 §4.3).
 *
 * It exists only so the development quickstart and the tests can obtain user tokens without a
 * browser. A real deployment never does this: users sign in through the authorization-code flow
 * of the organisation's own IdP, and behalf only validates the tokens that IdP issues.
 *
 * oidc-provider has already authenticated the client and checked that 'password' is among its
 * grant_types before this handler runs.
 */
export function registerPasswordGrant(
  provider: Provider,
  users: ReadonlyMap<string, DevUser>,
  policy: ResourcePolicy,
  ttlSeconds: number,
): void {
  provider.registerGrantType<PasswordParams>(
    'password',
    async (ctx) => {
      const { params, client } = ctx.oidc;
      const { username, password, resource } = params;
      if (!username || !password) {
        throw new errors.InvalidRequest('missing required parameter(s) (username, password)');
      }
      // A single audience only: duplicates were already refused because none were declared allowed.
      if (typeof resource !== 'string' || !resource) {
        throw new errors.InvalidRequest('missing required parameter(s) (resource)');
      }

      const user = users.get(username);
      if (!passwordMatches(user, password)) {
        throw new errors.InvalidGrant('invalid username or password');
      }

      const info = resourceServerInfo(policy, resource);
      const scope = grantedScope(params.scope, client.scope, info.scope, new Set(policy.scopes));
      const expiresIn = requestedLifetime(params.ttl, ttlSeconds);

      const { accessToken, token } = await issueAccessToken(provider, ctx, {
        accountId: user.sub,
        client,
        resource,
        info,
        scope,
        gty: 'password',
        ...(expiresIn !== undefined ? { expiresIn } : {}),
      });

      ctx.body = {
        access_token: accessToken,
        token_type: token.tokenType,
        expires_in: token.expiration,
        ...(scope ? { scope } : {}),
      };
    },
    ['username', 'password', 'scope', 'resource', 'ttl'],
  );
}

/**
 * A non-standard `ttl` parameter (seconds) so tests and reviews can get a token that expires soon
 * (e.g. to see a stream end with its token). It only ever shortens the configured lifetime.
 */
function requestedLifetime(ttl: string | undefined, configured: number): number | undefined {
  if (ttl === undefined || ttl === '') return undefined;
  if (!/^\d{1,9}$/.test(ttl) || Number(ttl) < 1)
    throw new errors.InvalidRequest('ttl must be a whole number of seconds, at least 1');
  return Math.min(Number(ttl), configured);
}

/** Compares digests so the time taken says nothing about the password, nor whether the user exists. */
function passwordMatches(user: DevUser | undefined, password: string): user is DevUser {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(user?.password ?? ''), digest(password)) && user !== undefined;
}

/**
 * Mirrors oidc-provider's client_credentials grant: a known scope outside the client's registered
 * `scope` is an error (invalid_scope); scopes the resource does not offer are dropped silently.
 * With no `scope` parameter the client gets everything it may have here (RFC 6749 §3.3 allows a default).
 */
function grantedScope(
  requested: string | undefined,
  clientScope: string | undefined,
  offeredScope: string,
  known: ReadonlySet<string>,
): string | undefined {
  const offered = new Set(offeredScope.split(' '));
  const allowed = clientScope ? new Set(clientScope.split(' ')) : undefined;
  const wanted = requested
    ? requested.split(' ').filter(Boolean)
    : [...offered].filter((s) => !allowed || allowed.has(s));
  for (const s of wanted) {
    if (allowed && known.has(s) && !allowed.has(s)) {
      throw new errors.InvalidScope('requested scope is not allowed', s);
    }
  }
  return wanted.filter((s) => offered.has(s)).join(' ') || undefined;
}
