import type { IncomingHttpHeaders } from 'node:http';
import type { JWTPayload } from 'jose';
import type { GatewayConfig } from '../config/schema.js';
import { rememberSubjectToken } from '../delegation/subject-token.js';
import { BehalfError } from '../errors.js';
import { apiKeyEntry, apiKeyRefusal, findApiKey, type ApiKeyEntry } from './api-keys.js';
import type { JwtVerifier, VerifiedToken } from './jwt-verifier.js';
import { isClientCredentialsToken, tokenClientId } from './client-credentials.js';
import type { Client, Principal, User } from './principal.js';

export interface AuthRequest {
  headers: IncomingHttpHeaders;
  /** SHA-256 fingerprint of a client certificate the TLS layer already verified against the client CA. */
  peerFingerprint256?: string;
  /** The resource this request is for: user and client tokens must name it as audience (RFC 8707). */
  resource: string;
  /**
   * Where this route's user comes from: `token` (default) — the bearer token,
   * required per userAuth.required; `message` — each message's signed context,
   * so no token is taken here; `either` — a token when one is sent, else each
   * message's signed context (src/identity/user-context.ts).
   */
  userSource?: 'token' | 'message' | 'either';
}

/** Reads `Bearer <token>`; anything else in the header is a malformed credential. */
export function bearerToken(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new BehalfError('user_token_invalid', 'more than one authorization header');
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(value);
  if (!m) throw new BehalfError('user_token_invalid', 'authorization header is not a bearer token');
  return m[1];
}

function single(value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) throw new BehalfError('client_auth_invalid', 'credential header repeated');
  return value;
}

/**
 * The delegation check: was this token issued to — or exchanged by — the
 * client that presents it (`ids`: its oauthClientIds)?
 * - A token with `act` (RFC 8693 token exchange): `act.sub` is the party
 *   acting now and must be this client; a token another client exchanged is
 *   refused even when its client_id names this one; and its client_id/azp
 *   must name this client too, so `act.sub` alone never suffices.
 * - Without `act`: client_id/azp must name this client.
 * - With `may_act`: this client must also be named there (sub or client_id).
 */
export function delegatedTo(p: JWTPayload, ids: ReadonlySet<string>): boolean {
  const act = p.act as { sub?: unknown } | undefined;
  if (act !== undefined) {
    if (typeof act !== 'object' || act === null || typeof act.sub !== 'string' || !ids.has(act.sub)) return false;
  }
  const oid = tokenClientId(p);
  if (oid === undefined || !ids.has(oid)) return false;
  if (p.may_act !== undefined) {
    const m = p.may_act as { sub?: unknown; client_id?: unknown } | null;
    if (typeof m !== 'object' || m === null) return false;
    if (![m.sub, m.client_id].some((n) => typeof n === 'string' && ids.has(n))) return false;
  }
  return true;
}

function scopesOf(p: JWTPayload): string[] {
  if (typeof p.scope === 'string') return p.scope.split(' ').filter(Boolean);
  if (Array.isArray(p.scp)) return p.scp.filter((s): s is string => typeof s === 'string');
  return [];
}

/**
 * Turns a request's credentials into a principal, or throws a typed error.
 * Pure with respect to HTTP: the server maps errors to challenges in one place.
 *
 * oauth mode: one bearer token; `sub` is the user, client_id/azp the client,
 * which must be a configured client. dual mode: a client credential (API key,
 * mTLS certificate or client-credentials JWT) plus the user's bearer token,
 * whose client_id/azp/act.sub must name that same client (delegation check).
 */
export class Authenticator {
  private readonly apiKeys: () => readonly ApiKeyEntry[];
  private readonly byFingerprint = new Map<string, string>();
  private readonly byOauthClientId = new Map<string, string>();
  private readonly oauthIdsOf = new Map<string, Set<string>>();
  private readonly methods: Set<string>;

  /** `apiKeys`: the keys in force at each call (the gateway's key ring, re-read when the key store changes); default: the config's keys. */
  constructor(
    private readonly config: GatewayConfig,
    private readonly verifier: JwtVerifier,
    apiKeys?: () => readonly ApiKeyEntry[],
  ) {
    this.methods = new Set(config.clientAuth.methods);
    const fromConfig = config.clients.flatMap((c) =>
      c.apiKeys.map((k) =>
        apiKeyEntry(c.id, k.id, k.hash, {
          notBefore: k.notBefore === undefined ? undefined : Date.parse(k.notBefore),
          notAfter: k.notAfter === undefined ? undefined : Date.parse(k.notAfter),
        }),
      ),
    );
    this.apiKeys = apiKeys ?? (() => fromConfig);
    for (const c of config.clients) {
      for (const cert of c.certificates) this.byFingerprint.set(cert.fingerprint256, c.id);
      for (const oid of c.oauthClientIds) this.byOauthClientId.set(oid, c.id);
      this.oauthIdsOf.set(c.id, new Set(c.oauthClientIds));
    }
  }

  async authenticate(req: AuthRequest): Promise<Principal> {
    const mode = this.config.userAuth.mode;
    const presented = await this.authenticateClientCredential(req);
    const userToken = bearerToken(req.headers.authorization);
    if (mode === 'oauth') {
      const p = await this.oauthPrincipal(req, presented, userToken);
      rememberSubjectToken(p, userToken!);
      return p;
    }
    const client = presented ?? this.anonymousClient();
    const source = req.userSource ?? 'token';
    if (userToken && source === 'message')
      throw new BehalfError('user_token_invalid', 'this route takes the user from signed context, not a token');
    const user = userToken ? await this.verifyUser(userToken, req.resource, client) : undefined;
    if (!user && this.config.userAuth.required && source === 'token') throw new BehalfError('user_token_required');
    const principal = { client, user };
    // Kept only for a downstream token exchange, never on the principal itself (see subject-token.ts).
    if (user && userToken) rememberSubjectToken(principal, userToken);
    return principal;
  }

  private anonymousClient(): Client {
    if (this.config.server.allowUnauthenticated) return { id: 'anonymous', method: 'none', credentialId: '-' };
    throw new BehalfError('client_auth_required');
  }

  private async oauthPrincipal(
    req: AuthRequest,
    presented: Client | undefined,
    token: string | undefined,
  ): Promise<Principal> {
    if (!token)
      throw new BehalfError(
        presented || this.config.server.allowUnauthenticated ? 'user_token_required' : 'client_auth_required',
      );
    const verified = await this.verifier.verify(token, req.resource);
    const oid = tokenClientId(verified.payload);
    const clientId = oid ? this.byOauthClientId.get(oid) : undefined;
    if (!clientId) throw new BehalfError('client_auth_invalid', 'token was issued to an unknown client');
    if (presented && presented.id !== clientId) throw new BehalfError('delegation_mismatch');
    if (
      this.config.userAuth.delegation === 'require-match' &&
      !delegatedTo(verified.payload, this.oauthIdsOf.get(clientId)!)
    ) {
      throw new BehalfError('delegation_mismatch');
    }
    const client: Client = presented ?? { id: clientId, method: 'oauth-token', credentialId: oid! };
    return { client, user: this.toUser(verified) };
  }

  /** Returns the client proven by a presented credential, undefined when none was presented. */
  private async authenticateClientCredential(req: AuthRequest): Promise<Client | undefined> {
    const found: Client[] = [];
    if (this.methods.has('api-key')) {
      const key = single(req.headers[this.config.clientAuth.apiKeyHeader]);
      if (key !== undefined) {
        const entry = findApiKey(this.apiKeys(), key);
        if (!entry) throw new BehalfError('client_auth_invalid', 'unknown API key');
        // Revoked, expired or not yet valid: refused at once, the reason for the audit trail only.
        const refused = apiKeyRefusal(entry, Date.now());
        if (refused) throw new BehalfError('client_auth_invalid', refused);
        found.push({ id: entry.clientId, method: 'api-key', credentialId: entry.keyId });
      }
    }
    if (this.methods.has('mtls') && req.peerFingerprint256) {
      const id = this.byFingerprint.get(req.peerFingerprint256);
      if (!id) throw new BehalfError('client_auth_invalid', 'client certificate not mapped to a client');
      found.push({
        id,
        method: 'mtls',
        credentialId: req.peerFingerprint256.replace(/:/g, '').slice(0, 16).toLowerCase(),
      });
    }
    if (this.methods.has('client-credentials')) {
      const raw = single(req.headers[this.config.clientAuth.clientTokenHeader]);
      if (raw !== undefined) found.push(await this.verifyClientToken(raw.replace(/^Bearer\s+/i, ''), req.resource));
    }
    // Two credentials for two different clients is an attempt to borrow one; refuse it.
    if (found.length > 1 && found.some((c) => c.id !== found[0]!.id))
      throw new BehalfError('client_auth_invalid', 'credentials name different clients');
    if (
      found.length === 0 &&
      this.methods.size > 0 &&
      this.config.userAuth.mode === 'dual' &&
      !this.config.server.allowUnauthenticated
    ) {
      throw new BehalfError('client_auth_required');
    }
    return found[0];
  }

  private async verifyClientToken(token: string, resource: string): Promise<Client> {
    let verified: VerifiedToken;
    try {
      verified = await this.verifier.verify(token, resource);
    } catch (err) {
      throw new BehalfError('client_auth_invalid', 'client token invalid', {}, { cause: err });
    }
    const oid = tokenClientId(verified.payload);
    // A user's token in the client slot would let the user act as the agent: only a token about the client itself counts.
    const p = verified.payload;
    if (!oid || (p.sub !== undefined && p.sub !== oid && !isClientCredentialsToken(p, verified.issuer))) {
      throw new BehalfError('client_auth_invalid', 'not a client-credentials token');
    }
    const id = this.byOauthClientId.get(oid);
    if (!id) throw new BehalfError('client_auth_invalid', 'token was issued to an unknown client');
    return { id, method: 'client-credentials', credentialId: oid };
  }

  private async verifyUser(token: string, resource: string, client: Client): Promise<User> {
    const verified = await this.verifier.verify(token, resource);
    const user = this.toUser(verified);
    if (this.config.userAuth.delegation === 'require-match' && client.method !== 'none') {
      if (!delegatedTo(verified.payload, this.oauthIdsOf.get(client.id) ?? new Set<string>()))
        throw new BehalfError('delegation_mismatch');
    }
    return user;
  }

  private toUser(v: VerifiedToken): User {
    const p = v.payload;
    if (typeof p.sub !== 'string' || !p.sub) throw new BehalfError('user_token_invalid', 'token has no subject');
    const claims: Record<string, unknown> = {};
    for (const name of v.issuer.userClaims) if (p[name] !== undefined) claims[name] = p[name];
    // A client-credentials token (sub == client_id, or the issuer's own marks) proves no user.
    if (isClientCredentialsToken(p, v.issuer))
      throw new BehalfError('user_token_invalid', 'token identifies a client, not a user');
    const act = p.act as { sub?: unknown } | undefined;
    return {
      issuer: v.issuer.issuer,
      subject: p.sub,
      claims,
      scopes: scopesOf(p),
      tokenClientId: tokenClientId(p),
      actor: typeof act?.sub === 'string' ? act.sub : undefined,
      tokenId: typeof p.jti === 'string' ? p.jti : undefined,
      issuedAt: typeof p.iat === 'number' ? p.iat : undefined,
      keyId: v.kid,
      expiresAt: p.exp!,
      tokenFingerprint: v.fingerprint,
    };
  }
}
