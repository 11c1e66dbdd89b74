import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GatewayConfig } from '../config/schema.js';
import { BehalfError } from '../errors.js';
import { apiKeyEntry, type ApiKeyEntry } from '../identity/api-keys.js';
import { keyState, parseTime, type KeyLifecycle } from './lifecycle.js';
import { privateKeyPath, readKeyStore, storedLifecycle, type StoredSigningKey } from './store.js';

/** A gateway signing key as the signer uses it: the private half is loaded only while the key may still sign. */
export interface SigningKeyMaterial {
  lifecycle: KeyLifecycle;
  kid: string;
  alg: 'ES256';
  publicJwk: StoredSigningKey['publicJwk'];
  privateKey?: KeyObject;
}

/** Every credential the gateway holds at one moment, built whole before it is swapped in. */
export interface KeyRing {
  /** Content hash of the key store ('none' without one, 'empty' before the first key). */
  version: string;
  /** Config keys first, then store keys; revoked and expired ones stay listed so a refusal can say why. */
  apiKeys: ApiKeyEntry[];
  /** Keys of the admin client (revocation.admin.client): they open the admin endpoint only, never a route. */
  adminKeys?: ApiKeyEntry[];
  signing: SigningKeyMaterial[];
  /** Lifecycle of every key, for reports. */
  lifecycles: KeyLifecycle[];
  /** Non-fatal findings (a store key for an unknown client, a private key file others can read). */
  notes: string[];
}

export function keyStorePath(config: GatewayConfig, baseDir: string): string | undefined {
  return config.keys.file === undefined ? undefined : resolve(baseDir, config.keys.file);
}

/** The static form: keys written in `clients[].apiKeys`, with the lifecycle the config gives them. */
export function configKeyLifecycles(config: GatewayConfig): { lifecycle: KeyLifecycle; hash: string }[] {
  return config.clients.flatMap((c) =>
    c.apiKeys.map((k) => ({
      hash: k.hash,
      lifecycle: {
        id: k.id,
        kind: 'api-key' as const,
        client: c.id,
        source: 'config' as const,
        status: 'active' as const,
        createdAt: parseTime(k.createdAt),
        notBefore: parseTime(k.notBefore),
        notAfter: parseTime(k.notAfter),
      },
    })),
  );
}

/**
 * Reads the config's keys and the key store into one ring. Throws (the
 * gateway refuses to start; a reload keeps the previous ring) when the store
 * is invalid, a key id is used twice, or a signing key that may still sign
 * has no readable private key matching its public half.
 */
export function loadKeyRing(config: GatewayConfig, baseDir: string, now = Date.now()): KeyRing {
  const notes: string[] = [];
  const fromConfig = configKeyLifecycles(config);
  const apiKeys = fromConfig.map(({ lifecycle: l, hash }) =>
    apiKeyEntry(l.client!, l.id, hash, { notBefore: l.notBefore, notAfter: l.notAfter }),
  );
  const lifecycles = fromConfig.map((c) => c.lifecycle);
  const signing: SigningKeyMaterial[] = [];
  const path = keyStorePath(config, baseDir);
  if (!path) return { version: 'none', apiKeys, signing, lifecycles, notes };

  const { doc, version } = readKeyStore(path);
  const ids = new Set(lifecycles.map((l) => l.id));
  const hashes = new Set(fromConfig.map((c) => c.hash));
  const clients = new Set(config.clients.map((c) => c.id));
  const adminKeys: ApiKeyEntry[] = [];
  for (const k of doc.keys) {
    if (ids.has(k.id))
      throw new BehalfError('config_invalid', `key store ${path}: key id ${k.id} is also used in the gateway config`);
    ids.add(k.id);
    const l = storedLifecycle(k);
    lifecycles.push(l);
    if (k.kind === 'api-key') {
      if (hashes.has(k.hash))
        throw new BehalfError(
          'config_invalid',
          `key store ${path}: key ${k.id} is also configured in the gateway config`,
        );
      if (k.client === config.revocation.admin?.client) {
        adminKeys.push(
          apiKeyEntry(k.client, k.id, k.hash, {
            notBefore: l.notBefore,
            notAfter: l.notAfter,
            revoked: k.status === 'revoked',
          }),
        );
        continue;
      }
      if (!clients.has(k.client)) {
        notes.push(`key ${k.id} is for client ${k.client}, which the gateway config does not declare: ignored`);
        continue;
      }
      apiKeys.push(
        apiKeyEntry(k.client, k.id, k.hash, {
          notBefore: l.notBefore,
          notAfter: l.notAfter,
          revoked: k.status === 'revoked',
        }),
      );
    } else {
      const state = keyState(l, now);
      const mayStillSign = state === 'active' || state === 'not-yet-valid';
      signing.push({
        lifecycle: l,
        kid: k.kid,
        alg: k.alg,
        publicJwk: k.publicJwk,
        privateKey: mayStillSign ? loadPrivateKey(path, k, notes) : undefined,
      });
    }
  }
  return { version, apiKeys, adminKeys, signing, lifecycles, notes };
}

function loadPrivateKey(storePath: string, k: StoredSigningKey, notes: string[]): KeyObject {
  const file = privateKeyPath(storePath, k.privateKey);
  let jwk: Record<string, unknown>;
  try {
    jwk = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    // Not kept as the cause: a parse error quotes the file, and the file is a private key.
    throw new BehalfError('config_invalid', `signing key ${k.id}: private key ${k.privateKey} cannot be read`);
  }
  if (
    jwk.kty !== 'EC' ||
    jwk.crv !== 'P-256' ||
    jwk.x !== k.publicJwk.x ||
    jwk.y !== k.publicJwk.y ||
    typeof jwk.d !== 'string'
  ) {
    throw new BehalfError(
      'config_invalid',
      `signing key ${k.id}: private key ${k.privateKey} does not match its public key`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: jwk as unknown as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch (err) {
    throw new BehalfError(
      'config_invalid',
      `signing key ${k.id}: private key ${k.privateKey} is not a valid EC private JWK`,
      {},
      { cause: err },
    );
  }
  try {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077)
      notes.push(`signing key ${k.id}: private key file ${k.privateKey} has mode ${mode.toString(8)}; make it 600`);
  } catch {
    // read above; a race is not worth a refusal
  }
  return key;
}
