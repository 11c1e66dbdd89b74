import { z } from 'zod';
import { Identifier, SecretRef, Sha256Hash, Timestamp } from './schema-common.js';
import { IssuerHygieneShape } from './schema-revocation.js';

/** Who may call: clients and their keys, the key store, trusted user-token issuers, and signed user context. */

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
    maxBodyBytes: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        'Largest request body this client may send, instead of server.maxBodyBytes (read after it authenticated)',
      ),
  })
  .strict();

export const KEY_FETCH_DEFAULTS = { timeoutMs: 3000, minRefetchSeconds: 5, unknownKidSeconds: 10, maxAgeSeconds: 600 };

/**
 * How a remote key set (JWKS) is fetched. A token with an unknown kid
 * triggers a refetch — that is how key rotation works without a restart —
 * so the refetches are bounded: one at a time, at most one per interval,
 * failed or not, and a kid found missing is refused without a fetch for a while.
 */
export const KeyFetchSchema = z
  .object({
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(30_000)
      .default(KEY_FETCH_DEFAULTS.timeoutMs)
      .describe('A discovery or key set fetch that takes longer fails'),
    minRefetchSeconds: z
      .number()
      .min(0)
      .max(3600)
      .default(KEY_FETCH_DEFAULTS.minRefetchSeconds)
      .describe(
        'At most one fetch per interval, whether it succeeded or failed; in between, an unknown kid or keys that cannot be had are refused at once (a newly published key is picked up at most this late)',
      ),
    unknownKidSeconds: z
      .number()
      .min(0)
      .max(3600)
      .default(KEY_FETCH_DEFAULTS.unknownKidSeconds)
      .describe('A kid that a fetch did not contain is refused without another fetch for this long'),
    maxAgeSeconds: z
      .number()
      .int()
      .positive()
      .default(KEY_FETCH_DEFAULTS.maxAgeSeconds)
      .describe('Keys older than this are fetched again before use; if that fails, tokens are refused (fail closed)'),
  })
  .strict();

export type KeyFetchConfig = z.infer<typeof KeyFetchSchema>;

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
    keyFetch: KeyFetchSchema.default(KEY_FETCH_DEFAULTS),
    ...IssuerHygieneShape,
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
    keyFetch: KeyFetchSchema.default(KEY_FETCH_DEFAULTS).describe('How jwksUri is fetched (not used with jwks)'),
  })
  .strict()
  .refine((s) => (s.jwksUri === undefined) !== (s.jwks === undefined), 'give exactly one of jwksUri and jwks');
