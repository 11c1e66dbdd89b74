import { z } from 'zod';
import { Identifier, SecretRef } from './schema-common.js';
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
  })
  .strict();

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
    audit: AuditSchema.default({
      sqlitePath: '.behalf/audit.db',
      durability: 'normal',
      writeBudgetMs: 200,
      maxPendingWrites: 4096,
      arguments: { keep: [] },
    }),
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
