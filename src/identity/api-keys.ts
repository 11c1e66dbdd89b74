import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256Hex } from '../shared/hash.js';

export interface ApiKeyEntry {
  clientId: string;
  keyId: string;
  digest: Buffer;
  /** Epoch ms: refused before notBefore and from notAfter on; a revoked key is refused at once. */
  notBefore?: number;
  notAfter?: number;
  revoked?: boolean;
}

/** API keys are high-entropy random strings, so a plain SHA-256 is a safe at-rest form (no password stretching needed). */
export function hashApiKey(key: string): string {
  return `sha256:${sha256Hex(key)}`;
}

export function generateApiKey(): string {
  return `bhk_${randomBytes(32).toString('base64url')}`;
}

export function apiKeyEntry(
  clientId: string,
  keyId: string,
  hash: string,
  validity: Pick<ApiKeyEntry, 'notBefore' | 'notAfter' | 'revoked'> = {},
): ApiKeyEntry {
  return { clientId, keyId, digest: Buffer.from(hash.slice('sha256:'.length), 'hex'), ...validity };
}

/**
 * Why a known key may not be used at `now`, or undefined when it may. The
 * reason goes to the audit trail only: the caller learns that authentication
 * failed, not whether the key was ever good.
 */
export function apiKeyRefusal(e: ApiKeyEntry, now: number): string | undefined {
  if (e.revoked) return `API key ${e.keyId} is revoked`;
  if (e.notAfter !== undefined && now >= e.notAfter) return `API key ${e.keyId} has expired`;
  if (e.notBefore !== undefined && now < e.notBefore) return `API key ${e.keyId} is not valid yet`;
  return undefined;
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
