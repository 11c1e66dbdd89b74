import { z } from 'zod';
import { SecretRef } from './schema-common.js';

/** Upstream MCP servers: stdio children (per user) and HTTP servers, with how each is reached as the user. */

const RequestTimeoutMs = z.number().int().positive().default(60_000);

const ForwardClientRoots = z
  .boolean()
  .default(false)
  .describe(
    "Let the agent's MCP roots reach this upstream. Off by default: some servers (server-filesystem) widen their sandbox to whatever roots the client offers",
  );

const EnvValue = z.union([SecretRef, z.object({ value: z.string() }).strict()]);

/**
 * A stdio upstream runs as the user: a child per session (so never one child
 * for two users), `{user}` in args and cwd replaced by the user's subject,
 * the user's downstream credential in one environment variable, caps on
 * children, and optionally another OS user.
 */
export const PerUserProcessSchema = z
  .object({
    maxPerUser: z
      .number()
      .int()
      .positive()
      .default(4)
      .describe('Children one user may have at once; at the cap her least recently used one is ended'),
    maxTotal: z
      .number()
      .int()
      .positive()
      .default(64)
      .describe('Children of this upstream at once; past it new sessions are refused (503)'),
    idleTimeoutSeconds: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('A child idle this long is stopped (default: sessions.idleTtlSeconds)'),
    credentialEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional()
      .describe("Environment variable that receives the user's downstream credential (from `downstream`)"),
    uid: z.number().int().min(0).optional(),
    gid: z.number().int().min(0).optional(),
  })
  .strict();

export const StdioUpstreamSchema = z
  .object({
    transport: z.literal('stdio'),
    command: z.string().min(1),
    args: z.array(z.string()).default([]),
    cwd: z.string().optional().describe('Working directory of the child; default: a private temporary folder'),
    envAllow: z
      .array(z.string())
      .default(['PATH'])
      .describe('Names copied from the gateway environment; nothing else is inherited'),
    env: z.record(z.string(), EnvValue).default({}).describe('Extra variables: secret references or {value: literal}'),
    requestTimeoutMs: RequestTimeoutMs,
    forwardClientRoots: ForwardClientRoots,
    perUser: PerUserProcessSchema.default({ maxPerUser: 4, maxTotal: 64 }).describe(
      "Children per user: caps, the user's credential in the environment, OS user; `{user}` in args/cwd is the user's subject",
    ),
    downstream: z
      .lazy(() => HttpDownstreamSchema)
      .default({ strategy: 'none' })
      .describe(
        "How the child gets the user's credential (into perUser.credentialEnv): token-exchange, user-assertion, or none",
      ),
  })
  .strict();

/** RFC 8693 at the IdP: subject = the user's token, the gateway authenticates as its own client, audience = the upstream. */
export const TokenExchangeDownstreamSchema = z
  .object({
    strategy: z.literal('token-exchange'),
    issuer: z
      .url()
      .optional()
      .describe("IdP to exchange at (its discovery gives the token endpoint); default: the user token's issuer"),
    tokenEndpoint: z.url().optional().describe('Overrides discovery'),
    clientId: z.string().min(1).describe("The gateway's own client at the IdP"),
    clientSecret: SecretRef,
    audience: z.string().optional().describe('Audience/resource of the exchanged token; default: the upstream URL'),
    scopes: z.array(z.string()).default([]).describe('Scopes asked for every call'),
    toolScopes: z
      .record(z.string(), z.array(z.string()))
      .default({})
      .describe('Narrower scopes per tool, instead of `scopes`'),
    refreshSkewSeconds: z
      .number()
      .int()
      .min(0)
      .max(300)
      .default(30)
      .describe('An exchanged token is renewed this long before it expires'),
  })
  .strict();

/** Claims of a user assertion that only the gateway sets: config `claims` cannot name them. */
export const USER_ASSERTION_RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'iat',
  'nbf',
  'jti',
  'user_iss',
  'client_id',
  'azp',
  'act',
  'scope',
  'cnf',
]);

/** A short-lived JWT about the user, signed by the gateway (keys published at /.well-known/jwks.json). */
export const UserAssertionDownstreamSchema = z
  .object({
    strategy: z.literal('user-assertion'),
    audience: z.string().optional().describe('default: the upstream URL'),
    lifetimeSeconds: z.number().int().min(5).max(600).default(60),
    claims: z
      .array(z.string().refine((c) => !USER_ASSERTION_RESERVED_CLAIMS.has(c), 'a claim the gateway sets itself'))
      .default([])
      .describe("User claims (of the issuer's userClaims) copied into the assertion"),
    header: z
      .string()
      .toLowerCase()
      .default('authorization')
      .describe('Header carrying it (as Bearer when authorization)'),
  })
  .strict();

/** One static credential for every user: allowed only when declared, and named in every audit record. */
export const ServiceAccountDownstreamSchema = z
  .object({
    strategy: z.literal('service-account'),
    headers: z
      .record(z.string(), SecretRef)
      .refine((h) => Object.keys(h).length > 0, 'a service account needs its credential header'),
  })
  .strict();

export const HttpDownstreamSchema = z.discriminatedUnion('strategy', [
  TokenExchangeDownstreamSchema,
  UserAssertionDownstreamSchema,
  ServiceAccountDownstreamSchema,
  z.object({ strategy: z.literal('none') }).strict(),
]);

export const HttpUpstreamSchema = z
  .object({
    transport: z.enum(['streamable-http', 'sse']),
    url: z.url(),
    headers: z
      .record(z.string(), SecretRef)
      .default({})
      .describe('Static headers for the upstream (service-account style), by reference'),
    downstream: HttpDownstreamSchema.default({ strategy: 'none' }).describe(
      'How the upstream learns the user: token-exchange, user-assertion, service-account (declared), or none',
    ),
    inbound: z
      .array(z.enum(['token', 'token-exchange', 'signed-context']))
      .min(1)
      .default(['token', 'token-exchange'])
      .describe(
        "How callers prove the user on this route: token (the user's own bearer token), token-exchange (a token the agent obtained by RFC 8693, carrying act = the agent), signed-context (a signed assertion per message, userAuth.signedContext). HTTP upstreams only: a stdio child must never serve two users",
      ),
    requestTimeoutMs: RequestTimeoutMs,
    forwardClientRoots: ForwardClientRoots,
  })
  .strict();

export const UpstreamSchema = z.discriminatedUnion('transport', [StdioUpstreamSchema, HttpUpstreamSchema]);
