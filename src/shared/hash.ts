import { createHash } from 'node:crypto';

export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

/** A short, non-reversible label for a secret, safe for logs and audit rows. */
export function fingerprint(secret: string): string {
  return sha256Hex(secret).slice(0, 16);
}
