import { createHash } from 'node:crypto';
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { ClientConfig, SignedContextConfig } from '../config/schema.js';
import { resolveSecret } from '../config/secrets.js';
import { BehalfError } from '../errors.js';
import type { JsonRpcMessage } from '../jsonrpc.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { fingerprint } from '../shared/hash.js';
import type { ReplayCache } from '../state/replay-cache.js';
import { keyFetchPolicy, type KeyFetchOverrides } from './jwks.js';
import { tokenFailureReason } from './jwt-verifier.js';
import { fetchJwks, RemoteKeySet } from './remote-key-set.js';
import type { Client, Principal, User } from './principal.js';

/**
 * "User context as a verified parameter" (docs/architecture.md §1, third pattern): the agent
 * platform signs a short-lived assertion about the user for one call and puts
 * it in that message's `params._meta["behalf/user"]` (or the `x-behalf-user`
 * header). The gateway checks, per message:
 *
 *   - signature by a key of the configured platform JWKS, algorithm allow-list
 *   - `iss` = the configured issuer, `aud` = this route's resource URL
 *   - `exp`, `iat` present; `exp - iat` and the age at most `maxAgeSeconds`
 *   - `sub`, `jti` present; the `jti` not seen before (replay cache, until exp)
 *   - `call` = callBinding(message): the assertion names this very call
 *   - `client_id`/`azp` names the authenticated client (under delegation: require-match)
 *
 * The assertion never reaches the upstream: it is removed from `_meta` before
 * anything is forwarded, on every route.
 */

export const DEFAULT_USER_META_KEY = 'behalf/user';

export type InboundSource = 'token' | 'token-exchange' | 'signed-context';

/** What an assertion is bound to: the method, what it reaches, and with which arguments. */
export interface CallFacts {
  method: string;
  /** Tool or prompt name, resource URI, or a completion's ref name/uri. */
  name?: unknown;
  arguments?: unknown;
}

function obj(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/**
 * The parts of a message an assertion binds:
 *   tools/call, prompts/get             {method, name: params.name, arguments: params.arguments ?? {}}
 *   resources/read|subscribe|unsubscribe {method, name: params.uri}
 *   completion/complete                 {method, name: ref.name ?? ref.uri, arguments: params.argument}
 *   anything else                       {method}
 */
export function callFacts(msg: { method: string; params?: Record<string, unknown> }): CallFacts {
  const { method } = msg;
  const params = obj(msg.params);
  switch (method) {
    case 'tools/call':
    case 'prompts/get':
      return { method, name: params.name, arguments: params.arguments ?? {} };
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return { method, name: params.uri };
    case 'completion/complete': {
      const ref = obj(params.ref);
      return { method, name: ref.name ?? ref.uri, arguments: params.argument };
    }
    default:
      return { method };
  }
}

/**
 * The `call` claim: base64url(SHA-256(canonical JSON of callFacts(msg))),
 * canonical JSON being JSON with object keys sorted by UTF-16 code units and
 * absent members left out (src/shared/canonical-json.ts; for JSON values the
 * same text as RFC 8785). An agent platform computes it from the call it is
 * about to make: e.g. for get_customer(c-100), the hash of
 * `{"arguments":{"customer_id":"c-100"},"method":"tools/call","name":"get_customer"}`.
 */
export function callBinding(msg: { method: string; params?: Record<string, unknown> }): string {
  return createHash('sha256')
    .update(canonicalJson(callFacts(msg)))
    .digest('base64url');
}

/** The message without its assertion (what may be forwarded), and the assertion it carried in `params._meta[metaKey]`. */
export function takeUserAssertion<M extends JsonRpcMessage>(msg: M, metaKey: string): { msg: M; assertion?: unknown } {
  const params = 'params' in msg ? msg.params : undefined;
  const meta = params?._meta;
  if (typeof meta !== 'object' || meta === null || !Object.hasOwn(meta, metaKey)) return { msg };
  const { [metaKey]: assertion, ...rest } = meta as Record<string, unknown>;
  const { _meta: _dropped, ...otherParams } = params!;
  const nextParams = Object.keys(rest).length ? { ...otherParams, _meta: rest } : otherParams;
  return { msg: { ...msg, params: nextParams }, assertion };
}

export interface SignedContextOptions {
  baseDir: string;
  env?: NodeJS.ProcessEnv;
  replay: ReplayCache;
  /** The configured clients: an assertion's client_id/azp must name the one that authenticated. */
  clients: readonly ClientConfig[];
  delegation: 'require-match' | 'off';
  /** userAuth.scopes: an assertion's `scope` must hold them, as a token's must. */
  requiredScopes?: readonly string[];
  /** Epoch seconds. */
  now?: () => number;
  jwksCooldownMs?: KeyFetchOverrides['jwksCooldownMs'];
  timeoutMs?: KeyFetchOverrides['timeoutMs'];
}

function invalid(reason: string, cause?: unknown): BehalfError {
  return new BehalfError('user_context_invalid', reason, {}, { cause });
}

function readJwks(ref: string, baseDir: string, env?: NodeJS.ProcessEnv): JSONWebKeySet {
  let set: unknown;
  try {
    set = JSON.parse(resolveSecret(ref, baseDir, env));
  } catch (err) {
    if (err instanceof BehalfError) throw err;
    // Not kept as the cause: the parser's message quotes the text, which came through a secret reference.
    throw new BehalfError('config_invalid', `userAuth.signedContext.jwks: ${ref} is not JSON`);
  }
  if (!Array.isArray((set as { keys?: unknown } | undefined)?.keys))
    throw new BehalfError('config_invalid', `userAuth.signedContext.jwks: ${ref} is not a JWKS ({"keys": [...]})`);
  return set as JSONWebKeySet;
}

/** Verifies signed user context assertions against one agent platform's keys. */
export class SignedContextVerifier {
  readonly metaKey: string;
  readonly header: string;
  private readonly keys: JWTVerifyGetKey;
  private readonly idsOf = new Map<string, Set<string>>();
  private readonly now: () => number;

  constructor(
    private readonly cfg: SignedContextConfig,
    private readonly o: SignedContextOptions,
  ) {
    this.metaKey = cfg.metaKey;
    this.header = cfg.header;
    this.now = o.now ?? (() => Date.now() / 1000);
    const policy = keyFetchPolicy(cfg.keyFetch, o);
    this.keys = cfg.jwks
      ? createLocalJWKSet(readJwks(cfg.jwks, o.baseDir, o.env))
      : new RemoteKeySet(() => fetchJwks(cfg.jwksUri!, policy.timeoutMs), policy).getKey;
    for (const c of o.clients) this.idsOf.set(c.id, new Set([c.id, ...c.oauthClientIds]));
  }

  /** The user an assertion proves for this call, or `user_context_invalid` with the reason (for the audit trail only). */
  async verify(token: string, expect: { audience: string; call: string; client: Client }): Promise<User> {
    try {
      decodeProtectedHeader(token);
      decodeJwt(token);
    } catch (err) {
      throw invalid('malformed', err);
    }
    const skew = this.cfg.clockSkewSeconds;
    const { payload } = await jwtVerify(token, this.keys, {
      issuer: this.cfg.issuer,
      audience: expect.audience,
      algorithms: this.cfg.algorithms,
      clockTolerance: skew,
      maxTokenAge: this.cfg.maxAgeSeconds,
      requiredClaims: ['sub', 'exp', 'iat', 'jti', 'call'],
      currentDate: new Date(this.now() * 1000),
    }).catch((err: unknown) => {
      // jose reports an `iat` older than maxTokenAge as expired; say which.
      throw invalid(
        err instanceof joseErrors.JWTExpired && err.claim === 'iat'
          ? 'older than maxAgeSeconds'
          : tokenFailureReason(err),
        err,
      );
    });
    const exp = payload.exp!;
    const iat = payload.iat!;
    if (exp - iat > this.cfg.maxAgeSeconds) throw invalid('lifetime above maxAgeSeconds');
    if (typeof payload.sub !== 'string' || !payload.sub) throw invalid('no subject');
    if (typeof payload.jti !== 'string' || !payload.jti || payload.jti.length > 256) throw invalid('bad jti');
    if (payload.call !== expect.call) throw invalid('not bound to this call');
    const tokenClient = clientIdOf(payload);
    if (this.o.delegation === 'require-match' && expect.client.method !== 'none') {
      if (!tokenClient || !this.idsOf.get(expect.client.id)?.has(tokenClient))
        throw invalid('issued for another client');
    }
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
    if (this.o.requiredScopes?.some((s) => !scopes.includes(s))) throw invalid('missing required scopes');
    // Last, so an assertion refused for any other reason does not use up its jti.
    if (!(await this.o.replay.firstUse(JSON.stringify([this.cfg.issuer, payload.jti]), exp + skew)))
      throw invalid('replayed');
    const claims: Record<string, unknown> = {};
    for (const name of this.cfg.userClaims) if (payload[name] !== undefined) claims[name] = payload[name];
    return {
      issuer: this.cfg.issuer,
      subject: payload.sub,
      claims,
      scopes,
      tokenClientId: tokenClient,
      tokenId: payload.jti,
      expiresAt: exp,
      tokenFingerprint: fingerprint(token),
    };
  }
}

function clientIdOf(p: JWTPayload): string | undefined {
  const v = p.client_id ?? p.azp;
  return typeof v === 'string' ? v : undefined;
}

export interface MessageUserInput {
  /** How this route accepts the user (config `inbound`). */
  inbound: readonly InboundSource[];
  /** The principal of the HTTP request: the client, and the user of its token if one was sent. */
  principal: Principal;
  /** The message, already without its assertion. */
  msg: { method: string; params?: Record<string, unknown> };
  /** What `params._meta[metaKey]` held, if anything. */
  metaAssertion?: unknown;
  /** The assertion header, when the route accepts signed context. */
  headerAssertion?: string;
  verifier?: SignedContextVerifier;
  /** The route's resource URL: the assertion's audience. */
  resource: string;
  /** Whether the policy decides this method for a user (calls, reads, prompts, lists); housekeeping does not. */
  needsUser: boolean;
  /** userAuth.required. */
  userRequired: boolean;
}

/**
 * The user one message is for, or a typed refusal (`user_context_required`,
 * `user_context_invalid` with the reason). One user per call: a message that
 * carries an assertion on a request that also carries a user token is
 * refused, as is an assertion on a route that does not accept them.
 */
export async function userForMessage(i: MessageUserInput): Promise<User | undefined> {
  if (i.metaAssertion !== undefined && i.headerAssertion !== undefined)
    throw invalid('assertion in both _meta and header');
  const assertion = i.metaAssertion ?? i.headerAssertion;
  if (assertion === undefined) {
    if (i.principal.user) return i.principal.user;
    if (i.needsUser && i.userRequired && i.inbound.includes('signed-context'))
      throw new BehalfError('user_context_required');
    return undefined;
  }
  if (!i.inbound.includes('signed-context') || !i.verifier)
    throw invalid('signed user context not accepted on this route');
  if (i.principal.user) throw invalid('both a user token and a signed user context');
  if (typeof assertion !== 'string') throw invalid('malformed');
  return i.verifier.verify(assertion, { audience: i.resource, call: callBinding(i.msg), client: i.principal.client });
}
