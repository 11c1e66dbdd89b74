import { z } from 'zod';
import { Identifier, SecretRef } from './schema-common.js';
import { ServerSchema } from './schema-server.js';
import { OperationsSchema } from './schema-operations.js';
import { StateSchema } from './schema-state.js';
import { RevocationSchema } from './schema-revocation.js';
import { ClientSchema, IssuerSchema, KeysSchema, SignedContextSchema } from './schema-clients.js';
import {
  PolicySchema,
  type PolicyDocumentSchema,
  type PolicyRuleSchema,
  type RateLimitSchema,
} from './schema-policy.js';
import {
  UpstreamSchema,
  type HttpDownstreamSchema,
  type HttpUpstreamSchema,
  type StdioUpstreamSchema,
} from './schema-upstreams.js';

/**
 * The one definition of the gateway's configuration. Loading validates against
 * it and `behalf config schema` prints the JSON Schema generated from it, so
 * the documentation and the validator cannot drift apart.
 */

/**
 * The configuration format's version (docs/versioning.md). Adding optional fields keeps 1; removing,
 * renaming or retyping one, or changing a default's meaning, makes 2. A file may say which version it
 * is written for (`version: 1`); one written for another version is refused rather than misread.
 */
export const CONFIG_SCHEMA_VERSION = 1;
export const CONFIG_SCHEMA_ID = 'https://behalf.dev/schema/gateway.v1.schema.json';

export const ArgumentKeepSchema = z
  .object({
    upstreams: z.array(z.string()).optional(),
    tools: z.array(z.string()).optional().describe('Tool or prompt names or globs; absent = all'),
    args: z.array(z.string()).min(1).describe('Top-level argument names whose values are kept in audit records'),
  })
  .strict();

export const AuditSchema = z
  .object({
    sqlitePath: z
      .string()
      .default('.behalf/audit.db')
      .describe('The embedded audit store: one SQLite file (ignored, and not to be given, with postgres)'),
    postgres: z
      .object({
        url: SecretRef.describe(
          'postgres:// connection URL, by reference (it may hold a password): env:NAME or file:PATH',
        ),
      })
      .strict()
      .optional()
      .describe(
        'One audit trail for a fleet of gateways, in PostgreSQL, instead of sqlitePath: every instance appends to one hash chain',
      ),
    durability: z
      .enum(['normal', 'full'])
      .default('normal')
      .describe(
        'SQLite only. normal: WAL, fsync at checkpoints (survives a process crash); full: fsync every record (survives power loss)',
      ),
    writeBudgetMs: z
      .number()
      .int()
      .min(10)
      .max(60_000)
      .default(200)
      .describe(
        'A call whose audit record is not written within this many ms is refused (audit unavailable); a locked or slow store never holds calls longer',
      ),
    maxPendingWrites: z
      .number()
      .int()
      .min(1)
      .default(4096)
      .describe('Audit records waiting to be written at most; past it calls are refused at once (audit unavailable)'),
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
    claims: z
      .object({
        keep: z
          .array(z.string().min(1))
          .default([])
          .describe(
            'User claims recorded with each decision besides those the policy reads (which always are), so `behalf policy replay` can re-decide a proposed policy that reads them. Secret-looking names and values are redacted always',
          ),
      })
      .strict()
      .default({ keep: [] }),
  })
  .strict();

/**
 * Session limits (docs/architecture.md §2 step 5). Every session, legacy SSE stream and stateless
 * connection is charged to its user (issuer, subject) across clients and routes, or — when it has no
 * user — to its client, so one user at her quota cannot lock out anyone else.
 */
export const SESSION_DEFAULTS = {
  idleTtlSeconds: 3600,
  maxSessions: 10_000,
  maxPerUser: 16,
  maxPerClient: 256,
  maxStreamsPerUser: 16,
  maxStreamsPerClient: 256,
  evictIdleAfterSeconds: 60,
  resumeEvents: 256,
  resumeBytes: 256 * 1024,
};

export const SessionsSchema = z
  .object({
    idleTtlSeconds: z.number().int().positive().default(SESSION_DEFAULTS.idleTtlSeconds),
    maxSessions: z
      .number()
      .int()
      .positive()
      .default(SESSION_DEFAULTS.maxSessions)
      .describe('Sessions and stateless connections on the whole gateway; past it: 503 with Retry-After'),
    maxPerUser: z
      .number()
      .int()
      .positive()
      .default(SESSION_DEFAULTS.maxPerUser)
      .describe(
        "Sessions of one user (issuer, subject) across clients and routes; at it her oldest idle one is evicted, else 429 with Retry-After. Keep it at least a stdio upstream's perUser.maxPerUser",
      ),
    maxPerClient: z
      .number()
      .int()
      .positive()
      .default(SESSION_DEFAULTS.maxPerClient)
      .describe('Sessions of one client that carry no user (client-only principals, signed-context agent sessions)'),
    maxStreamsPerUser: z
      .number()
      .int()
      .positive()
      .default(SESSION_DEFAULTS.maxStreamsPerUser)
      .describe('Open GET and legacy SSE streams of one user; past it: 429 with Retry-After'),
    maxStreamsPerClient: z
      .number()
      .int()
      .positive()
      .default(SESSION_DEFAULTS.maxStreamsPerClient)
      .describe('Open streams of one client that carry no user'),
    evictIdleAfterSeconds: z
      .number()
      .int()
      .positive()
      .default(SESSION_DEFAULTS.evictIdleAfterSeconds)
      .describe(
        'At a quota, a session unused this long, with no open stream and no request in flight, may be evicted for its owner',
      ),
    resumeEvents: z
      .number()
      .int()
      .min(0)
      .default(SESSION_DEFAULTS.resumeEvents)
      .describe(
        'Events a session keeps so a client can resume a stream with Last-Event-ID (oldest dropped first); 0 = no resumption',
      ),
    resumeBytes: z
      .number()
      .int()
      .min(0)
      .default(SESSION_DEFAULTS.resumeBytes)
      .describe('Bytes of event data a session keeps for resumption, all its streams together'),
  })
  .strict();

export const GatewayConfigSchema = z
  .object({
    version: z
      .literal(CONFIG_SCHEMA_VERSION, {
        error: `this behalf reads configuration format version ${CONFIG_SCHEMA_VERSION} (docs/versioning.md)`,
      })
      .optional()
      .describe('The configuration format version this file is written for (optional; docs/versioning.md)'),
    server: ServerSchema,
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
    audit: AuditSchema.default({
      sqlitePath: '.behalf/audit.db',
      durability: 'normal',
      writeBudgetMs: 200,
      maxPendingWrites: 4096,
      arguments: { keep: [] },
      claims: { keep: [] },
    }),
    keys: KeysSchema.default({ watch: true, maxAgeDays: 90, warnBeforeDays: 14 }),
    sessions: SessionsSchema.default(SESSION_DEFAULTS),
    state: StateSchema.default({}),
    revocation: RevocationSchema.default({ ttlSeconds: 86_400 }),
    operations: OperationsSchema.default({
      logs: { level: 'info', format: 'auto' },
      shutdown: { graceSeconds: 20 },
    }).describe('Metrics, traces, logs and shutdown (README, Operating behalf)'),
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
  return {
    ...z.toJSONSchema(GatewayConfigSchema, { io: 'input' }),
    $id: CONFIG_SCHEMA_ID,
    title: `behalf gateway configuration, v${CONFIG_SCHEMA_VERSION}`,
  };
}
