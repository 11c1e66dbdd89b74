import { z } from 'zod';

/**
 * The one definition of the gateway's configuration. Loading validates against
 * it and `behalf config schema` prints the JSON Schema generated from it, so
 * the documentation and the validator cannot drift apart.
 */

/** A secret is never written inline: `env:NAME` or `file:PATH` (docs/architecture.md §9: secrets by reference). */
export const SecretRef = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'must be a secret reference: env:NAME or file:PATH')
  .describe('Secret by reference: env:NAME or file:PATH');

const Sha256Hash = z
  .string()
  .regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 lowercase hex digits> (use `behalf keys hash`)');

const Identifier = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, - and _ only');

/** ISO 8601: a date (midnight UTC) or a date-time with its offset. */
const Timestamp = z.union([z.iso.datetime({ offset: true }), z.iso.date()]);

export const ApiKeySchema = z
  .object({
    id: z.string().min(1).describe('Key id, shown in audit records instead of the key'),
    hash: Sha256Hash.describe('SHA-256 of the key; the key itself is never stored'),
    createdAt: Timestamp.optional().describe('When the key was made: the max-age policy (keys.maxAgeDays) reads it'),
    notBefore: Timestamp.optional().describe('Refused before this instant'),
    notAfter: Timestamp.optional().describe(
      'Refused from this instant on (several keys may overlap: rotation without downtime)',
    ),
  })
  .strict();

/** Managed credentials: the key store written by `behalf keys`, and the max-age policy for every key. */
export const KeysSchema = z
  .object({
    file: z
      .string()
      .optional()
      .describe(
        'Key store (JSON, written by `behalf keys create|rotate|revoke`), relative to this config: managed API keys and the gateway signing keys. Watched; a revoked key is refused on the next request',
      ),
    watch: z
      .boolean()
      .default(true)
      .describe('Reload the key store when it changes (it is also checked before every use)'),
    maxAgeDays: z
      .number()
      .positive()
      .default(90)
      .describe(
        'Keys older than this are reported (keys list, gateway log, audit); new keys expire after it unless told otherwise',
      ),
    warnBeforeDays: z.number().min(0).default(14).describe('Warn this long before a key expires or reaches maxAgeDays'),
  })
  .strict();

export const ClientSchema = z
  .object({
    id: Identifier.describe('Client (agent) id used in policy and audit'),
    apiKeys: z.array(ApiKeySchema).default([]),
    certificates: z
      .array(
        z
          .object({
            fingerprint256: z
              .string()
              .regex(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/, 'must be an uppercase colon-separated SHA-256 fingerprint'),
          })
          .strict(),
      )
      .default([])
      .describe('mTLS client certificates mapped to this client'),
    oauthClientIds: z
      .array(z.string().min(1))
      .default([])
      .describe('OAuth client_id / azp values that identify this client in tokens'),
  })
  .strict();

export const IssuerSchema = z
  .object({
    issuer: z.url().describe('Exact `iss` value; discovery is fetched from it unless jwksUri is set'),
    jwksUri: z.url().optional(),
    algorithms: z
      .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
      .min(1)
      .default(['RS256', 'ES256'])
      .describe('Asymmetric algorithms only: never none, never HMAC'),
    typ: z.array(z.string()).optional().describe('Accepted JWT `typ` header values, e.g. [at+jwt]'),
    clockSkewSeconds: z.number().int().min(0).max(300).default(30),
    requiredClaims: z.array(z.string()).default(['sub', 'exp', 'iat']),
    userClaims: z.array(z.string()).default([]).describe('Claims exposed to policy as user.claims'),
  })
  .strict();

export const PolicyRuleSchema = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/, 'letters, digits, _ . : - only')
      .describe('Stable id, named in every decision it makes'),
    effect: z.enum(['allow', 'deny']),
    description: z.string().optional(),
    methods: z
      .array(z.string())
      .optional()
      .describe(
        'JSON-RPC methods (globs) the rule applies to, e.g. [tools/call]; absent = every method that reaches its tools/resources/prompts',
      ),
    upstreams: z.array(z.string()).optional().describe('Upstream names or globs; absent = all'),
    tools: z.array(z.string()).optional().describe('Tool names or globs (*); matches tools/call'),
    resources: z
      .array(z.string())
      .optional()
      .describe('Resource URI globs; matches resources/read and resources/subscribe'),
    prompts: z.array(z.string()).optional().describe('Prompt names or globs; matches prompts/get'),
    when: z
      .string()
      .optional()
      .describe('CEL expression over user, client, request, upstream, tool, args, resource, prompt; must yield bool'),
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'an OAuth scope token'))
      .optional()
      .describe(
        'Step-up: an allow takes effect only when the user token carries these scopes; otherwise 403 insufficient_scope',
      ),
  })
  .strict();

export const RateLimitSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/, 'letters, digits, _ . : - only'),
    description: z.string().optional(),
    per: z
      .array(z.enum(['user', 'client', 'tool', 'upstream']))
      .min(1)
      .describe('What one bucket is for: e.g. [user] = one bucket per user, [user, tool] = one per user and tool'),
    upstreams: z.array(z.string()).optional().describe('Upstream names or globs; absent = all'),
    tools: z
      .array(z.string())
      .optional()
      .describe('Tool names or globs; absent = every decided call (tools, resources, prompts)'),
    capacity: z.number().int().positive().describe('Bucket size: the burst allowed'),
    refillPerSecond: z.number().positive().describe('Tokens added per second: the sustained rate'),
  })
  .strict();

export const CustomMethodSchema = z
  .object({
    reason: z.string().min(1).describe('Why this method may pass; recorded with every decision'),
    decide: z
      .enum(['allow', 'rules'])
      .default('rules')
      .describe('allow: housekeeping, always passes; rules: needs an allow rule whose methods name it'),
  })
  .strict();

/** The policy proper: inline in the gateway config or in its own file (watched and hot-reloaded). */
export const PolicyDocumentSchema = z
  .object({
    rules: z.array(PolicyRuleSchema).default([]),
    rateLimits: z.array(RateLimitSchema).default([]),
    methods: z
      .record(z.string().regex(/^[A-Za-z0-9_./-]+$/, 'a JSON-RPC method name'), CustomMethodSchema)
      .default({})
      .describe('JSON-RPC methods outside the built-in table that may pass; unknown methods are denied'),
  })
  .strict();

export const PolicySchema = PolicyDocumentSchema.extend({
  file: z
    .string()
    .optional()
    .describe(
      'Policy file (YAML: rules, rateLimits, methods), relative to this config; watched and reloaded on change or SIGHUP',
    ),
  watch: z.boolean().default(true).describe('Reload the policy file when it changes (SIGHUP always reloads)'),
}).strict();

export const ArgumentKeepSchema = z
  .object({
    upstreams: z.array(z.string()).optional(),
    tools: z.array(z.string()).optional().describe('Tool or prompt names or globs; absent = all'),
    args: z.array(z.string()).min(1).describe('Top-level argument names whose values are kept in audit records'),
  })
  .strict();

export const AuditSchema = z
  .object({
    sqlitePath: z.string().default('.behalf/audit.db'),
    durability: z
      .enum(['normal', 'full'])
      .default('normal')
      .describe(
        'normal: WAL, fsync at checkpoints (survives a process crash); full: fsync every record (survives power loss)',
      ),
    arguments: z
      .object({
        keep: z
          .array(ArgumentKeepSchema)
          .default([])
          .describe(
            'Argument values kept in audit records; every other value is redacted. Secret-looking names and values are redacted always',
          ),
        digestKey: SecretRef.optional().describe(
          'HMAC key for argument digests; default: a random key kept in the audit store',
        ),
      })
      .strict()
      .default({ keep: [] }),
  })
  .strict();

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
    requestTimeoutMs: z.number().int().positive().default(60_000),
    forwardClientRoots: z
      .boolean()
      .default(false)
      .describe(
        "Let the agent's MCP roots reach this upstream. Off by default: some servers (server-filesystem) widen their sandbox to whatever roots the client offers",
      ),
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
    requestTimeoutMs: z.number().int().positive().default(60_000),
    forwardClientRoots: z
      .boolean()
      .default(false)
      .describe(
        "Let the agent's MCP roots reach this upstream. Off by default: some servers (server-filesystem) widen their sandbox to whatever roots the client offers",
      ),
  })
  .strict();

/**
 * "User context as a verified parameter" (docs/architecture.md §1): the agent platform signs
 * a short-lived assertion about the user for one call and puts it in the
 * message's `_meta` (or a header). Verified per message: signature, issuer,
 * audience = the route's resource, a short lifetime, single use (jti), and a
 * `call` claim binding it to this very call.
 */
export const SignedContextSchema = z
  .object({
    issuer: z.string().min(1).describe("Exact `iss` of the agent platform's assertions"),
    jwksUri: z.url().optional().describe("The platform's JWKS URL (refetched on an unknown kid)"),
    jwks: SecretRef.optional().describe(
      "The platform's JWKS by reference (file:PATH), instead of jwksUri; read at start",
    ),
    algorithms: z
      .array(IssuerSchema.shape.algorithms.unwrap().element)
      .min(1)
      .default(['ES256', 'EdDSA'])
      .describe('Asymmetric algorithms only: never none, never HMAC'),
    maxAgeSeconds: z
      .number()
      .int()
      .min(1)
      .max(600)
      .default(60)
      .describe('Longest lifetime (exp - iat) and age accepted'),
    clockSkewSeconds: z.number().int().min(0).max(60).default(5),
    header: z
      .string()
      .toLowerCase()
      .default('x-behalf-user')
      .describe('HTTP header that may carry the assertion instead of _meta'),
    metaKey: z
      .string()
      .min(1)
      .default('behalf/user')
      .describe('Key in params._meta carrying the assertion; removed before forwarding'),
    userClaims: z.array(z.string()).default([]).describe('Claims exposed to policy as user.claims'),
  })
  .strict()
  .refine((s) => (s.jwksUri === undefined) !== (s.jwks === undefined), 'give exactly one of jwksUri and jwks');

export const UpstreamSchema = z.discriminatedUnion('transport', [StdioUpstreamSchema, HttpUpstreamSchema]);

export const GatewayConfigSchema = z
  .object({
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        publicUrl: z.url().optional().describe('Base URL clients use; resource identifiers derive from it'),
        tls: z
          .object({
            cert: SecretRef,
            key: SecretRef,
            clientCa: SecretRef.optional().describe('CA bundle for mTLS client certificates'),
          })
          .strict()
          .optional(),
        allowedOrigins: z
          .array(z.string())
          .default([])
          .describe('Browser origins allowed to call; requests without Origin are allowed'),
        allowedHosts: z
          .array(z.string())
          .optional()
          .describe('Host header values accepted (DNS-rebinding defence); default derives from publicUrl'),
        maxBodyBytes: z.number().int().positive().default(1_048_576),
        bodyTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(30_000)
          .describe('A request body must arrive within this time (slow-body defence)'),
        allowUnauthenticated: z
          .boolean()
          .default(false)
          .describe('Development only: run with no client authentication'),
      })
      .strict()
      .default({
        host: '127.0.0.1',
        port: 8080,
        allowedOrigins: [],
        maxBodyBytes: 1_048_576,
        bodyTimeoutMs: 30_000,
        allowUnauthenticated: false,
      }),
    clientAuth: z
      .object({
        methods: z.array(z.enum(['api-key', 'mtls', 'client-credentials'])).default([]),
        // Node lower-cases incoming header names: `X-Api-Key` in a config must still match.
        apiKeyHeader: z.string().toLowerCase().default('x-api-key'),
        clientTokenHeader: z
          .string()
          .toLowerCase()
          .default('x-client-token')
          .describe('dual mode: header carrying a client-credentials JWT'),
      })
      .strict()
      .default({ methods: [], apiKeyHeader: 'x-api-key', clientTokenHeader: 'x-client-token' }),
    clients: z.array(ClientSchema).default([]),
    userAuth: z
      .object({
        mode: z
          .enum(['oauth', 'dual'])
          .default('dual')
          .describe(
            'oauth: one bearer token, sub = user, client_id/azp = client. dual: client credential plus user token',
          ),
        required: z.boolean().default(true),
        issuers: z.array(IssuerSchema).min(1),
        delegation: z
          .enum(['require-match', 'off'])
          .default('require-match')
          .describe("The token's client_id/azp/act.sub must name the authenticated client"),
        scopes: z
          .array(z.string())
          .default([])
          .describe('Scopes every request needs; missing → 403 insufficient_scope'),
        signedContext: SignedContextSchema.optional().describe(
          "Trust an agent platform's signed per-call user assertions on routes whose inbound includes signed-context",
        ),
      })
      .strict(),
    upstreams: z
      .record(Identifier, UpstreamSchema)
      .refine((u) => Object.keys(u).length > 0, 'at least one upstream is required'),
    policy: PolicySchema.default({ rules: [], rateLimits: [], methods: {}, watch: true }),
    audit: AuditSchema.default({ sqlitePath: '.behalf/audit.db', durability: 'normal', arguments: { keep: [] } }),
    keys: KeysSchema.default({ watch: true, maxAgeDays: 90, warnBeforeDays: 14 }),
    sessions: z
      .object({
        idleTtlSeconds: z.number().int().positive().default(3600),
        maxSessions: z.number().int().positive().default(10_000),
      })
      .strict()
      .default({ idleTtlSeconds: 3600, maxSessions: 10_000 }),
  })
  .strict();

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
export type UpstreamConfig = z.infer<typeof UpstreamSchema>;
export type StdioUpstreamConfig = z.infer<typeof StdioUpstreamSchema>;
export type HttpUpstreamConfig = z.infer<typeof HttpUpstreamSchema>;
export type IssuerConfig = z.infer<typeof IssuerSchema>;
export type SignedContextConfig = z.infer<typeof SignedContextSchema>;
export type HttpDownstreamConfig = z.infer<typeof HttpDownstreamSchema>;
export type ClientConfig = z.infer<typeof ClientSchema>;
export type PolicyRuleConfig = z.infer<typeof PolicyRuleSchema>;
export type RateLimitConfig = z.infer<typeof RateLimitSchema>;
export type PolicyDocument = z.infer<typeof PolicyDocumentSchema>;
export type AuditConfig = z.infer<typeof AuditSchema>;
export type KeysConfig = z.infer<typeof KeysSchema>;

export function gatewayJsonSchema(): unknown {
  return z.toJSONSchema(GatewayConfigSchema, { io: 'input' });
}
