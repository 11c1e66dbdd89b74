import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, unlinkSync, writeFileSync } from 'node:fs';
import { calculateJwkThumbprint } from 'jose';
import { generateApiKey, hashApiKey } from '../identity/api-keys.js';
import { isoTime, type KeyKind } from './lifecycle.js';
import { privateKeyPath, type StoredKey } from './store.js';

export interface NewKeyRequest {
  kind: KeyKind;
  /** The client of an API key. */
  client?: string;
  id: string;
  now: number;
  notBefore: number;
  notAfter: number;
  /** The key this one succeeds (rotation). */
  replaces?: string;
}

export interface NewKey {
  record: StoredKey;
  /** The API key itself: printed once, never stored. */
  secret?: string;
  /** The signing key's private JWK file, written before the store names it. */
  privateFile?: string;
}

/** A fresh key and its store entry; a signing key's private half is written next to the store at once. */
export async function newKey(storePath: string, k: NewKeyRequest): Promise<NewKey> {
  const lifecycle = {
    id: k.id,
    createdAt: isoTime(k.now),
    notBefore: isoTime(k.notBefore),
    notAfter: isoTime(k.notAfter),
    status: 'active' as const,
    ...(k.replaces ? { replaces: k.replaces } : {}),
  };
  if (k.kind === 'api-key') {
    const secret = generateApiKey();
    return { secret, record: { ...lifecycle, kind: 'api-key', client: k.client!, hash: hashApiKey(secret) } };
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' }) as { kty: 'EC'; crv: 'P-256'; x: string; y: string; d: string };
  const publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  const ref = `file:${k.id}.private.jwk`;
  const privateFile = privateKeyPath(storePath, ref);
  // Exclusive create, 0600: never overwrites a key, never readable by others.
  writeFileSync(privateFile, `${JSON.stringify({ ...jwk, kid, alg: 'ES256' })}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(privateFile, 0o600);
  return { privateFile, record: { ...lifecycle, kind: 'signing', kid, alg: 'ES256', publicJwk, privateKey: ref } };
}

/** Removes what newKey wrote, for a key the store never came to name. */
export function discardNewKey(k: NewKey): void {
  if (!k.privateFile) return;
  try {
    unlinkSync(k.privateFile);
  } catch {
    /* not written */
  }
}

/** An id that sorts by date and names the client (or `sig` for a signing key). */
export function defaultKeyId(client: string | undefined, now: number): string {
  return `${client ?? 'sig'}-${isoTime(now).slice(0, 10).replace(/-/g, '')}-${randomBytes(3).toString('hex')}`;
}
