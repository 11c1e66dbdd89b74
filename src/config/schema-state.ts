import { z } from 'zod';
import { SecretRef } from './schema-common.js';

/**
 * State a fleet of gateways shares (docs/architecture.md, shared state).
 * Absent: each gateway keeps it in its own memory, as a single gateway does.
 */
export const RedisStateSchema = z
  .object({
    url: SecretRef.describe(
      'redis://[user:password@]host:port[/db] or rediss:// (TLS), by reference (env:NAME or file:PATH): it may carry a password',
    ),
    keyPrefix: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits, _ . : - only')
      .default('behalf:')
      .describe('Prefix of every key and channel the gateway uses: one per fleet sharing a Redis'),
    commandTimeoutMs: z
      .number()
      .int()
      .min(50)
      .max(30_000)
      .default(1000)
      .describe('A Redis command not answered within this many ms fails, and the request that needed it gets 503'),
  })
  .strict();

export const StateSchema = z
  .object({
    redis: RedisStateSchema.optional().describe(
      'Shared single-use state (signed-context jti, rate-limit buckets, token-exchange lock) and changes in force (key revocations, policy and key-store reloads) for a fleet of gateways',
    ),
    instanceId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/, 'letters, digits, _ . : - only (at most 100)')
      .optional()
      .describe("This gateway's name in logs and fleet audit records; default host:pid"),
  })
  .strict();

export type StateConfig = z.infer<typeof StateSchema>;
export type RedisStateConfig = z.infer<typeof RedisStateSchema>;
