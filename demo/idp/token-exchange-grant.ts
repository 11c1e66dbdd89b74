import './runtime-notice.js';
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import { issueAccessToken } from './issue-token.js';
import { resourceServerInfo, type ResourcePolicy } from './resource.js';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT, type DevUser, type ExchangeRecord } from './types.js';

interface ExchangeParams {
  subject_token?: string;
  subject_token_type?: string;
  requested_token_type?: string;
  actor_token?: string;
  audience?: string;
  resource?: string;
}

export interface TokenExchangeSettings {
  users: ReadonlyMap<string, DevUser>;
  policy: ResourcePolicy;
  /** The IdP's public signing keys: a subject token must be one this IdP issued. */
  publicJwks: { keys: object[] };
  /** Upper bound of an exchanged token's lifetime; never beyond the subject token's own expiry. */
  ttlSeconds: number;
  /** Claims only an exchanged token carries (act), handed to `extraTokenClaims` by token instance. */
  extraClaims: WeakMap<object, Record<string, unknown>>;
  record: (r: ExchangeRecord) => void;
}

type Actor = { sub: string; act?: unknown };

/**
 * Registers the RFC 8693 token exchange grant: a client that opted in
 * (its grant_types list the grant) presents a user's access token issued by
 * this IdP and gets a new at+jwt for that same user, for one target
 * (`resource` or `audience`), with at most the subject token's scopes, and
 * `act: { sub: <the exchanging client> }` naming itself as the actor (a prior
 * `act` nests inside). A subject token carrying `may_act` may be exchanged
 * only by a client it names.
 *
 * oidc-provider has already authenticated the client and checked that the
 * grant is among its grant_types before this handler runs.
 */
export function registerTokenExchangeGrant(provider: Provider, s: TokenExchangeSettings): void {
  const keys = createLocalJWKSet(s.publicJwks as Parameters<typeof createLocalJWKSet>[0]);
  provider.registerGrantType<ExchangeParams>(
    TOKEN_EXCHANGE_GRANT,
    async (ctx) => {
      const { params, client } = ctx.oidc;
      try {
        if (!params.subject_token) throw new errors.InvalidRequest('missing required parameter(s) (subject_token)');
        if (params.subject_token_type !== ACCESS_TOKEN_TYPE)
          throw new errors.InvalidRequest('unsupported subject_token_type');
        if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
          throw new errors.InvalidRequest('unsupported requested_token_type');
        }
        if (params.actor_token !== undefined) throw new errors.InvalidRequest('actor_token is not supported');

        const subject = await verifySubjectToken(params.subject_token, keys, provider.issuer, s.policy.signingAlg);
        const user = s.users.get(subject.sub!);
        // A client-credentials token names a client as its subject: there is no user to act for.
        if (!user) throw new errors.InvalidGrant('subject_token does not identify a user');
        if (!mayActAllows(subject.may_act, client.clientId)) {
          throw new errors.UnauthorizedClient('the subject_token does not allow this client to act for its subject');
        }

        const target = targetOf(params.resource, params.audience);
        const info = resourceServerInfo(s.policy, target);
        const scope = exchangedScope(params.scope, subject, client.scope, info.scope);
        const act: Actor = { sub: client.clientId, ...(subject.act !== undefined ? { act: subject.act } : {}) };
        const remaining = subject.exp! - Math.floor(Date.now() / 1000);
        if (remaining <= 0) throw new errors.InvalidGrant('subject_token is invalid or expired');

        const { accessToken, token } = await issueAccessToken(provider, ctx, {
          accountId: user.sub,
          client,
          resource: target,
          info,
          scope,
          gty: 'token-exchange',
          expiresIn: Math.min(s.ttlSeconds, remaining),
          extraClaims: { map: s.extraClaims, claims: { act } },
        });
        s.record({
          outcome: 'issued',
          clientId: client.clientId,
          sub: user.sub,
          audience: target,
          scope,
          jti: token.jti,
          expiresIn: token.expiration,
        });

        ctx.body = {
          access_token: accessToken,
          issued_token_type: ACCESS_TOKEN_TYPE,
          token_type: token.tokenType,
          expires_in: token.expiration,
          ...(scope ? { scope } : {}),
        };
      } catch (err) {
        s.record({
          outcome: 'refused',
          clientId: client.clientId,
          error: (err as { error?: string }).error ?? 'server_error',
        });
        throw err;
      }
    },
    [
      'subject_token',
      'subject_token_type',
      'requested_token_type',
      'actor_token',
      'actor_token_type',
      'resource',
      'audience',
      'scope',
    ],
  );
}

/** Signature with this IdP's keys, exact issuer, RFC 9068 typ, not expired. Why it failed is not said. */
async function verifySubjectToken(
  token: string,
  keys: ReturnType<typeof createLocalJWKSet>,
  issuer: string,
  alg: string,
): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(token, keys, {
      issuer,
      typ: 'at+jwt',
      algorithms: [alg],
      requiredClaims: ['sub', 'exp'],
    });
    return payload;
  } catch {
    throw new errors.InvalidGrant('subject_token is invalid or expired');
  }
}

/** No `may_act`: anyone allowed the grant may exchange. With one: only a client it names (sub or client_id). */
function mayActAllows(mayAct: unknown, clientId: string): boolean {
  if (mayAct === undefined) return true;
  if (typeof mayAct !== 'object' || mayAct === null) return false;
  const m = mayAct as Record<string, unknown>;
  return m.sub === clientId || m.client_id === clientId;
}

/** One target: `resource` (RFC 8707) and/or `audience` (RFC 8693); when both are sent they must agree. */
function targetOf(resource: string | undefined, audience: string | undefined): string {
  if (resource !== undefined && audience !== undefined && resource !== audience) {
    throw new errors.InvalidTarget('resource and audience name different targets');
  }
  const target = resource ?? audience;
  if (!target) throw new errors.InvalidTarget('resource or audience is required');
  return target;
}

/**
 * The exchanged token never carries more than the subject token did, nor more
 * than the exchanging client may have: asking for more is invalid_scope.
 * Without `scope`, it gets the subject token's scopes the client may have.
 * Scopes the target does not offer are dropped, as for the other grants.
 */
function exchangedScope(
  requested: string | undefined,
  subject: JWTPayload,
  clientScope: string | undefined,
  offeredScope: string,
): string | undefined {
  const held = new Set(typeof subject.scope === 'string' ? subject.scope.split(' ').filter(Boolean) : []);
  const allowed = clientScope ? new Set(clientScope.split(' ')) : undefined;
  const wanted = requested ? requested.split(' ').filter(Boolean) : [...held].filter((x) => !allowed || allowed.has(x));
  for (const x of wanted) {
    if (!held.has(x)) throw new errors.InvalidScope('requested scope exceeds the subject_token', x);
    if (allowed && !allowed.has(x)) throw new errors.InvalidScope('requested scope is not allowed', x);
  }
  const offered = new Set(offeredScope.split(' '));
  return wanted.filter((x) => offered.has(x)).join(' ') || undefined;
}
