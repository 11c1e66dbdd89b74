import { z } from 'zod';

/** Value shapes every part of the configuration uses. */

/** A secret is never written inline: `env:NAME` or `file:PATH` (docs/architecture.md §9: secrets by reference). */
export const SecretRef = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'must be a secret reference: env:NAME or file:PATH')
  .describe('Secret by reference: env:NAME or file:PATH');

export const Sha256Hash = z
  .string()
  .regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 lowercase hex digits> (use `behalf keys hash`)');

export const Identifier = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, - and _ only');

/** ISO 8601: a date (midnight UTC) or a date-time with its offset. */
export const Timestamp = z.union([z.iso.datetime({ offset: true }), z.iso.date()]);
