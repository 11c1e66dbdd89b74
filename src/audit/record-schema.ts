import { z } from 'zod';
import { AUDIT_KINDS, type AuditRecord } from './event.js';

/**
 * The audit record format, versioned (docs/versioning.md): the shape of a record as `behalf audit
 * export` writes it (one JSON object per line) and `behalf audit query --json` prints it, and the
 * canonical form its hash is taken over (chain.ts). `schema/audit-record.v1.schema.json` is generated
 * from this (npm run schema). A field may be added (optional, hashed only when present, so older
 * chains still verify) within v1; removing, renaming or retyping one, or changing what is hashed,
 * makes v2.
 */
export const AUDIT_RECORD_FORMAT_VERSION = 1;
export const AUDIT_RECORD_SCHEMA_ID = 'https://behalf.dev/schema/audit-record.v1.schema.json';

const text = z.string();

export const AuditRecordSchema = z
  .object({
    seq: z.number().int().positive().describe('Position in the chain, from 1'),
    prevHash: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .describe("The previous record's hash (64 zeros for the first)"),
    hash: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .describe("SHA-256 over prevHash and the record's canonical form"),
    ts: z.number().describe('Milliseconds since the epoch'),
    // A string, not an enum: a new kind of record is an addition within v1, which readers skip.
    kind: z.string().describe(`What the record is: ${AUDIT_KINDS.join(', ')}; new kinds may be added within v1`),
    callId: text.optional().describe('Correlates a decision with its outcome'),
    route: text.optional(),
    upstream: text.optional(),
    transport: text.optional(),
    clientId: text.optional(),
    clientMethod: text.optional(),
    credentialId: text.optional().describe("The client credential's id, never the credential"),
    userIssuer: text.optional(),
    userSubject: text.optional(),
    tokenFingerprint: text.optional().describe("A fingerprint of the user's token, never the token"),
    sessionFingerprint: text.optional(),
    method: text.optional().describe('The JSON-RPC method'),
    target: text.optional().describe('The tool name, resource URI or prompt name the call reaches'),
    args: text.optional().describe('Arguments as JSON, every value not explicitly kept redacted'),
    argsDigest: text.optional().describe('HMAC-SHA256 of the canonical arguments (all values)'),
    decision: z.enum(['allow', 'deny']).optional(),
    ruleIds: z.array(text).optional(),
    reason: text.optional(),
    policyVersion: text.optional().describe('Content hash of the policy that made the decision'),
    outcome: text.optional(),
    latencyMs: z.number().optional(),
    downstreamStrategy: text
      .optional()
      .describe('Which credential the upstream received (strategy), never the credential'),
    downstreamCredentialId: text.optional().describe('Id (jti or fingerprint) of the downstream credential'),
    refusedBy: text.optional().describe('The pipeline step that refused the request or message'),
    continuationOf: text.optional().describe('The callId of the request a 2026-07-28 input-required retry continues'),
    instanceId: text.optional().describe('The gateway instance that wrote the record'),
    userScopes: text.optional().describe("The user token's scopes, space-separated (names, never the token)"),
    userClaims: text
      .optional()
      .describe(
        'JSON {"claims":{NAME:VALUE},"absent":[NAME]}: the claims the policy read, secret-looking values redacted',
      ),
  })
  .strict();

// Both directions: a field added to AuditRecord and not here (or here and not there) fails the build.
type Described = z.infer<typeof AuditRecordSchema>;
const _schemaCoversRecord: [Exclude<keyof AuditRecord, keyof Described>] extends [never] ? true : never = true;
const _recordCoversSchema: [Exclude<keyof Described, keyof AuditRecord>] extends [never] ? true : never = true;

export function auditRecordJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(AuditRecordSchema),
    $id: AUDIT_RECORD_SCHEMA_ID,
    title: `behalf audit record, v${AUDIT_RECORD_FORMAT_VERSION}`,
  };
}
