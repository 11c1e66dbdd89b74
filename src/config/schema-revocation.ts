import { z } from 'zod';
import { Identifier, SecretRef } from './schema-common.js';

/**
 * Revocation and continuous verification (docs/revocation.md): the admin
 * endpoint, the Shared Signals receiver, and per-issuer token hygiene and
 * introspection.
 */

export const IntrospectionSchema = z
  .object({
    endpoint: z.url().describe("The issuer's RFC 7662 introspection endpoint"),
    clientId: z.string().min(1).describe("The gateway's client id at the issuer (HTTP Basic)"),
    clientSecret: SecretRef.describe('Its client secret, by reference'),
    cacheMs: z
      .number()
      .int()
      .min(100)
      .max(300_000)
      .default(30_000)
      .describe(
        'An answer is reused this long; open sessions and streams are introspected again at this interval, so a token made inactive ends them this late at most',
      ),
    timeoutMs: z.number().int().min(100).max(30_000).default(2000),
    onFailure: z
      .enum(['closed', 'open'])
      .default('closed')
      .describe(
        'When the endpoint cannot answer: closed refuses the request (503); open serves a token whose signature and claims were verified here (logged loudly)',
      ),
  })
  .strict();

export const ClientCredentialsDetectionSchema = z
  .object({
    claims: z
      .record(z.string(), z.union([z.string(), z.array(z.string())]))
      .default({})
      .describe(
        'A token with any of these claim values is a client-credentials token, e.g. { gty: client-credentials }',
      ),
    subjectSuffixes: z
      .array(z.string().min(1))
      .default([])
      .describe('A token whose sub ends with one of these is a client-credentials token, e.g. "@clients"'),
  })
  .strict();

/** Fields added to every issuer (spread into IssuerSchema). */
export const IssuerHygieneShape = {
  maxTokenAgeSeconds: z
    .number()
    .int()
    .positive()
    .optional()
    .describe('A token issued (iat) longer ago than this is refused, whatever its exp'),
  clientCredentials: ClientCredentialsDetectionSchema.optional().describe(
    'How this issuer marks client-credentials tokens (beyond sub == client_id): such a token never proves a user',
  ),
  introspection: IntrospectionSchema.optional().describe('RFC 7662 token introspection (optional)'),
  keyRefreshSeconds: z
    .number()
    .min(0.1)
    .max(86_400)
    .optional()
    .describe(
      'Fetch the key set at this interval: a key no longer published ends the tokens it signed (cached or not, their sessions and streams) within it',
    ),
};

export const SharedSignalsSchema = z
  .object({
    issuer: z.string().min(1).describe("Exact `iss` of the transmitter's Security Event Tokens"),
    audience: z.string().min(1).describe('The `aud` every SET must name (this receiver)'),
    jwksUri: z.url().optional().describe("The transmitter's JWKS"),
    jwks: SecretRef.optional().describe("The transmitter's JWKS by reference (file:PATH), instead of jwksUri"),
    algorithms: z
      .array(z.enum(['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA']))
      .min(1)
      .default(['RS256', 'ES256']),
    issuerOfSubjects: z
      .string()
      .optional()
      .describe(
        'The user-token issuer whose subjects the events name (when a subject gives none); default the only issuer',
      ),
  })
  .strict()
  .refine((s) => (s.jwksUri === undefined) !== (s.jwks === undefined), 'give exactly one of jwksUri and jwks');

export const RevocationSchema = z
  .object({
    ttlSeconds: z
      .number()
      .int()
      .positive()
      .max(90 * 86_400)
      .default(86_400)
      .describe('How long a revocation is kept when nothing shorter is known (then it is forgotten)'),
    admin: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65_535).describe('A port of its own (0: any free one)'),
        client: Identifier.default('behalf-admin').describe(
          'Key-store API keys of this client authenticate admin calls; it must not be an agent client',
        ),
      })
      .strict()
      .optional()
      .describe('The admin endpoint (off unless given): POST /revocations, and the Shared Signals receiver'),
    sharedSignals: SharedSignalsSchema.optional().describe(
      'OpenID Shared Signals / CAEP receiver (push, RFC 8935) at POST /ssf/events on the admin port',
    ),
  })
  .strict();

export type RevocationConfig = z.infer<typeof RevocationSchema>;
export type IntrospectionConfig = z.infer<typeof IntrospectionSchema>;
export type SharedSignalsConfig = z.infer<typeof SharedSignalsSchema>;
