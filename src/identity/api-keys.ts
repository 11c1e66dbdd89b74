import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256Hex } from './fingerprint.js';

export interface ApiKeyEntry { clientId: string; keyId: string; digest: Buffer }

/** API keys are high-entropy random strings, so a plain SHA-256 is a safe at-rest form (no password stretching needed). */
export function hashApiKey(key: string): string {
  return `sha256:${sha256Hex(key)}`;
}

export function generateApiKey(): string {
  return `bhk_${randomBytes(32).toString('base64url')}`;
}

export function apiKeyEntry(clientId: string, keyId: string, hash: string): ApiKeyEntry {
  return { clientId, keyId, digest: Buffer.from(hash.slice('sha256:'.length), 'hex') };
}

/**
 * Compares the presented key's digest with every configured digest in constant
 * time, and visits all of them, so timing says nothing about which key or how
 * much of it matched.
 */
export function findApiKey(entries: readonly ApiKeyEntry[], presented: string): ApiKeyEntry | undefined {
  const digest = Buffer.from(sha256Hex(presented), 'hex');
  let found: ApiKeyEntry | undefined;
  for (const e of entries) {
    if (timingSafeEqual(e.digest, digest) && !found) found = e;
  }
  return found;
}
