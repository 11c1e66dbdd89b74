import { hash } from 'node:crypto';

/** One-shot crypto.hash: on the request path (API key, token cache key) several times cheaper than createHash for short inputs. */
export function sha256Hex(value: string | Buffer): string {
  return hash('sha256', value, 'hex');
}

/** A short, non-reversible label for a secret, safe for logs and audit rows. */
export function fingerprint(secret: string): string {
  return sha256Hex(secret).slice(0, 16);
}
