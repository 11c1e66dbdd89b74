import { z } from 'zod';
import { CHECKS, type CheckId } from '../catalog.js';
import { SEVERITIES } from '../severity.js';

/**
 * The evidence pack's shape, versioned. `schema/evidence.v1.schema.json` is
 * generated from this (npm run schema) and shipped; a test keeps the two in
 * step and validates every pack the tests write against the file. Adding an
 * optional field keeps v1; removing or retyping one makes v2.
 */
export const EVIDENCE_SCHEMA_VERSION = 1;
export const EVIDENCE_SCHEMA_ID = 'https://behalf.dev/schema/evidence.v1.schema.json';

const checkIds = CHECKS.map((c) => c.id) as [CheckId, ...CheckId[]];

/** `warn` (a SHOULD-level deviation) and the severities were added within v1: a pack written before still validates. */
export const StatusSchema = z.enum(['pass', 'fail', 'warn', 'partial', 'not-assessed', 'n/a']);
export const SeveritySchema = z.enum(SEVERITIES);

export const EvidenceItemSchema = z.object({
  outcome: z.enum(['ok', 'bad', 'warn', 'not-assessed', 'n/a', 'info']),
  severity: SeveritySchema.optional(),
  probe: z.string(),
  expected: z.string().optional(),
  observed: z.string().optional(),
  detail: z.string().optional(),
  exchanges: z.array(z.number().int().positive()).optional(),
  location: z.object({ file: z.string(), line: z.number().int().positive().optional(), path: z.string().optional() }).optional(),
  fingerprint: z.string().optional(),
  accepted: z.object({ reason: z.string() }).optional(),
});

export const CheckResultSchema = z.object({
  id: z.enum(checkIds),
  title: z.string(),
  question: z.string(),
  status: StatusSchema,
  severity: SeveritySchema.optional(),
  finding: z.string(),
  reason: z.string().optional(),
  remediation: z.string(),
  evidence: z.array(EvidenceItemSchema),
  durationMs: z.number().nonnegative(),
});

export const EvidencePackSchema = z.object({
  $schema: z.literal(EVIDENCE_SCHEMA_ID),
  schemaVersion: z.literal(EVIDENCE_SCHEMA_VERSION),
  tool: z.object({ name: z.literal('behalf'), version: z.string() }),
  review: z.object({
    startedAt: z.string(),
    finishedAt: z.string(),
    durationMs: z.number().nonnegative(),
    requests: z.number().int().nonnegative(),
    maxRequests: z.number().int().positive(),
    timeLimitSeconds: z.number().positive(),
    safeToCall: z.array(z.string()),
    identities: z.array(z.string()),
  }),
  target: z.object({
    url: z.string().optional(),
    transport: z.enum(['streamable', 'sse']).optional(),
    configFile: z.string().optional(),
    repoDir: z.string().optional(),
    command: z.string().optional(),
  }),
  /** What a re-assessment is keyed on (behalf review diff). */
  fingerprint: z.object({
    serverInfo: z.object({ name: z.string(), version: z.string() }).optional(),
    protocolVersion: z.string().optional(),
    toolListHash: z.string().optional(),
    toolsByIdentity: z.record(z.string(), z.array(z.string())),
    configHash: z.string().optional(),
    keysHash: z.string().optional(),
  }),
  summary: z.object({
    pass: z.number().int().nonnegative(),
    fail: z.number().int().nonnegative(),
    warn: z.number().int().nonnegative().optional(),
    partial: z.number().int().nonnegative(),
    'not-assessed': z.number().int().nonnegative(),
    'n/a': z.number().int().nonnegative(),
  }),
  checks: z.array(CheckResultSchema).length(CHECKS.length),
  transcripts: z.object({ file: z.string(), exchanges: z.number().int().nonnegative() }),
});

export type EvidencePack = z.infer<typeof EvidencePackSchema>;

export function evidenceJsonSchema(): Record<string, unknown> {
  return { ...z.toJSONSchema(EvidencePackSchema), $id: EVIDENCE_SCHEMA_ID, title: 'behalf review evidence pack, v1' };
}
