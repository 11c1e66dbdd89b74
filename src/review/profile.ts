import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { formatIssues } from '../config/issues.js';
import { readYamlFile } from '../config/yaml-file.js';
import { BehalfError } from '../errors.js';

/**
 * How the review acts as someone: fixed headers, or a command printing fresh
 * ones (JSON `{ headers }`, a JSON headers object, `{ access_token }`,
 * `Name: value` lines, or a bare token sent as `Authorization: Bearer`).
 */
const credentialSource = z.object({
  headers: z.record(z.string(), z.string()).optional(),
  command: z.string().min(1).optional(),
}).strict().refine((c) => Boolean(c.headers) !== Boolean(c.command), { message: 'give exactly one of headers or command' });

const identity = credentialSource;

const call = z.object({
  tool: z.string().min(1),
  arguments: z.record(z.string(), z.unknown()).default({}),
}).strict();

export const profileSchema = z.object({
  /** The people (and the bare client) the review acts as. */
  identities: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), identity).default({}),
  /** An identity that is a valid client with no user (BND-03): an API key alone, a client-credentials token. */
  clientOnly: z.string().optional(),
  /** A credential for this client that was revoked or is wrong in a realistic way (BND-02). */
  revoked: credentialSource.optional(),
  /** What is known of the user-token issuer, so forged tokens look real (BND-04). */
  issuer: z.object({
    issuer: z.string().url().optional(),
    jwksUri: z.string().url().optional(),
    /** The audience this target expects; read from the valid token when absent. */
    audience: z.string().optional(),
    /** Test and dev issuers only: the issuer's private JWK (a file), so expired/wrong-issuer/wrong-audience tokens carry a valid signature and prove the claim itself is checked. */
    signingKeyFile: z.string().optional(),
  }).strict().default({}),
  /** A valid token of the same issuer for another resource (audience): must be refused with 401 (BND-04). */
  otherResource: credentialSource.optional(),
  /** A valid token with a short life (≤ limits.streamWaitSeconds) to open a stream with (BND-08). */
  shortLived: credentialSource.optional(),
  /** How to revoke a user on the target (BND-08): a shell command, `{sub}` replaced by the subject of `user`'s token (a credential of its own: that user is cut off). */
  revoke: z.object({ command: z.string().min(1), user: credentialSource, waitSeconds: z.number().positive().max(30).default(2) }).strict().optional(),
  crossUser: z.array(z.object({ as: z.string(), call, owner: z.string() }).strict()).default([]),
  /** Arguments to call a listed tool with, per tool, when checking that what is listed is callable (BND-06). */
  examples: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  /** The only tools the review will ever call. */
  safeToCall: z.array(z.string()).default([]),
  /** A downstream observer (the reviewer's canary): GET returns `{ seen: [{ fingerprint, claims? }] }` for credentials the downstream received (BND-09). */
  downstream: z.object({
    observer: z.object({ url: z.string().url(), headers: z.record(z.string(), z.string()).optional() }).strict(),
    /** The safe call that makes the target reach that downstream; as each identity. */
    call: call,
  }).strict().optional(),
  /** Repo-scan findings the owner has looked at and accepted (BND-10), by fingerprint. */
  acceptedFindings: z.array(z.object({ fingerprint: z.string().min(8), reason: z.string().min(1) }).strict()).default([]),
  limits: z.object({
    maxRequests: z.number().int().positive().max(2000).default(400),
    timeSeconds: z.number().positive().max(600).default(90),
    requestTimeoutMs: z.number().int().positive().max(60_000).default(5000),
    /** The longest the review waits for a stream to end after its token expired (BND-08). */
    streamWaitSeconds: z.number().positive().max(120).default(20),
  }).strict().default({ maxRequests: 400, timeSeconds: 90, requestTimeoutMs: 5000, streamWaitSeconds: 20 }),
}).strict();

export type Profile = z.infer<typeof profileSchema>;
export type CredentialSource = z.infer<typeof credentialSource>;

export const EMPTY_PROFILE: Profile = profileSchema.parse({});

export interface LoadedProfile {
  profile: Profile;
  /** Commands run and relative files resolve from here. */
  dir: string;
  path?: string;
}

export function loadProfile(path: string): LoadedProfile {
  const raw = readYamlFile(path, 'review profile');
  const parsed = profileSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new BehalfError('profile_invalid', `review profile ${path} is invalid:\n${formatIssues(parsed.error.issues)}`);
  const p = parsed.data;
  const names = new Set(Object.keys(p.identities));
  const unknown = [
    ...(p.clientOnly && !names.has(p.clientOnly) ? [`clientOnly: ${p.clientOnly}`] : []),
    ...p.crossUser.flatMap((c, i) => [c.as, c.owner].filter((n) => !names.has(n)).map((n) => `crossUser[${i}]: ${n}`)),
  ];
  if (unknown.length) throw new BehalfError('profile_invalid', `review profile ${path} names identities it does not define: ${unknown.join(', ')}`);
  const unsafe = [...p.crossUser.map((c) => c.call.tool), ...(p.downstream ? [p.downstream.call.tool] : [])].filter((t) => !p.safeToCall.includes(t));
  if (unsafe.length) throw new BehalfError('profile_invalid', `review profile ${path} asks to call tools not in safeToCall: ${[...new Set(unsafe)].join(', ')}`);
  const dir = dirname(resolve(path));
  if (p.issuer.signingKeyFile) p.issuer.signingKeyFile = resolve(dir, p.issuer.signingKeyFile);
  return { profile: p, dir, path: resolve(path) };
}
