import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { formatIssues } from '../config/issues.js';
import { BehalfError } from '../errors.js';
import { sha256Hex } from '../shared/hash.js';
import { parseTime, type KeyLifecycle } from './lifecycle.js';

/**
 * The key store: one JSON file, written only by `behalf keys`, read (and
 * watched) by the gateway. It holds the lifecycle of every managed key and
 * never a secret: API keys as their SHA-256, signing keys as their public JWK
 * plus a `file:` reference to the private JWK (mode 0600, next to the store).
 *
 *   { "version": 1, "keys": [
 *       { "id": "agent-20261126-3f9a", "kind": "api-key", "client": "agent", "hash": "sha256:…",
 *         "createdAt": "…", "notBefore": "…", "notAfter": "…", "status": "active" },
 *       { "id": "sig-20261126-81c2", "kind": "signing", "kid": "<RFC 7638 thumbprint>", "alg": "ES256",
 *         "publicJwk": { "kty": "EC", "crv": "P-256", "x": "…", "y": "…" }, "privateKey": "file:sig-20261126-81c2.private.jwk",
 *         "createdAt": "…", "notBefore": "…", "notAfter": "…", "status": "active" } ] }
 *
 * Writers take a lock file and replace the store by rename, so a reader sees
 * the old file or the new one, never half of one.
 */

const Iso = z.iso.datetime({ offset: true }).describe('ISO 8601 date-time');
export const KeyId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, 'letters, digits, _ . : - only (at most 64)');

const Lifecycle = {
  id: KeyId,
  createdAt: Iso,
  notBefore: Iso,
  notAfter: Iso.describe('Every managed key expires'),
  status: z.enum(['active', 'revoked']),
  revokedAt: Iso.optional(),
  revokedReason: z.string().max(500).optional(),
  replaces: KeyId.optional().describe('The key this one succeeded (rotation)'),
  replacedBy: KeyId.optional().describe('The key that succeeded this one (rotation)'),
};

export const StoredApiKeySchema = z
  .object({
    ...Lifecycle,
    kind: z.literal('api-key'),
    client: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a client id'),
    hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 lowercase hex digits>'),
  })
  .strict();

/** Strict: a private member (d, p, q, …) in the public JWK is refused, not ignored. */
const PublicEcJwk = z
  .object({
    kty: z.literal('EC'),
    crv: z.literal('P-256'),
    x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    y: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  })
  .strict();

export const StoredSigningKeySchema = z
  .object({
    ...Lifecycle,
    kind: z.literal('signing'),
    kid: z.string().min(1),
    alg: z.literal('ES256'),
    publicJwk: PublicEcJwk,
    privateKey: z.string().regex(/^file:.+$/, 'must be a file: reference (the private JWK lives in its own 0600 file)'),
  })
  .strict();

export const KeyStoreSchema = z
  .object({
    version: z.literal(1),
    keys: z.array(z.discriminatedUnion('kind', [StoredApiKeySchema, StoredSigningKeySchema])),
  })
  .strict();

export type StoredApiKey = z.infer<typeof StoredApiKeySchema>;
export type StoredSigningKey = z.infer<typeof StoredSigningKeySchema>;
export type StoredKey = StoredApiKey | StoredSigningKey;
export type KeyStoreDoc = z.infer<typeof KeyStoreSchema>;

export interface KeyStoreSnapshot {
  doc: KeyStoreDoc;
  /** SHA-256 of the file's bytes ('empty' when there is no file yet). */
  version: string;
}

/** Reads and validates a key store. A missing file is an empty store (the first `keys create` writes it). */
export function readKeyStore(path: string): KeyStoreSnapshot {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { doc: { version: 1, keys: [] }, version: 'empty' };
    throw new BehalfError('config_invalid', `key store ${path} cannot be read`, {}, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // Not kept as the cause: the parser's message quotes the file's text.
    throw new BehalfError('config_invalid', `key store ${path} is not valid JSON`);
  }
  const parsed = KeyStoreSchema.safeParse(raw);
  if (!parsed.success)
    throw new BehalfError('config_invalid', `key store ${path} is invalid:\n${formatIssues(parsed.error.issues)}`);
  const problems = storeProblems(parsed.data);
  if (problems.length)
    throw new BehalfError(
      'config_invalid',
      `key store ${path} is invalid:\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
  return { doc: parsed.data, version: sha256Hex(text).slice(0, 16) };
}

function storeProblems(doc: KeyStoreDoc): string[] {
  const out: string[] = [];
  const ids = new Set<string>();
  const hashes = new Set<string>();
  for (const [i, k] of doc.keys.entries()) {
    if (ids.has(k.id)) out.push(`keys.${i}.id: duplicate key id ${k.id}`);
    ids.add(k.id);
    if (k.kind === 'api-key') {
      if (hashes.has(k.hash)) out.push(`keys.${i}.hash: the same key is stored twice`);
      hashes.add(k.hash);
    }
    if (Date.parse(k.notAfter) <= Date.parse(k.notBefore)) out.push(`keys.${i}.notAfter: must be after notBefore`);
    if (k.status === 'revoked' && !k.revokedAt) out.push(`keys.${i}.revokedAt: a revoked key records when`);
  }
  return out;
}

/** The lifecycle view of a stored key (shared with config keys, see lifecycle.ts). */
export function storedLifecycle(k: StoredKey): KeyLifecycle {
  return {
    id: k.id,
    kind: k.kind,
    client: k.kind === 'api-key' ? k.client : undefined,
    source: 'store',
    createdAt: parseTime(k.createdAt),
    notBefore: parseTime(k.notBefore),
    notAfter: parseTime(k.notAfter),
    status: k.status,
    revokedAt: parseTime(k.revokedAt),
    replaces: k.replaces,
    replacedBy: k.replacedBy,
  };
}

/** Resolves a store entry's `file:` reference against the store's folder. */
export function privateKeyPath(storePath: string, ref: string): string {
  const p = ref.slice('file:'.length);
  return isAbsolute(p) ? p : resolve(dirname(storePath), p);
}

/** Writes the store whole, by rename: readers never see a partial file. Keeps an existing file's mode, else 0600. */
export function writeKeyStore(path: string, doc: KeyStoreDoc): void {
  const parsed = KeyStoreSchema.parse(doc);
  let mode = 0o600;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    // new store
  }
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, `${JSON.stringify(parsed, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
}

const LOCK_WAIT_MS = 5_000;
const LOCK_STALE_MS = 30_000;

/**
 * Read–modify–write under a lock file (`<store>.lock`, created exclusively),
 * so two `behalf keys` commands never lose each other's change. A lock older
 * than 30 s is taken to be left by a crashed command and removed.
 */
export async function updateKeyStore<T>(path: string, change: (doc: KeyStoreDoc) => T): Promise<T> {
  const lock = `${path}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new BehalfError('store_unavailable', `cannot lock the key store ${path}`, {}, { cause: err });
      try {
        if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) unlinkSync(lock);
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline)
        throw new BehalfError('store_locked', `the key store ${path} is locked by another command (${lock})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    const { doc } = readKeyStore(path);
    const result = change(doc);
    writeKeyStore(path, doc);
    return result;
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      /* gone */
    }
  }
}
