import { createHash } from 'node:crypto';

export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

/** A short, non-reversible label for a secret, safe for logs and audit rows. */
export function fingerprint(secret: string): string {
  return sha256Hex(secret).slice(0, 16);
}

/**
 * How a downstream observer names a credential it received (the review's
 * BND-09 contract): `sha256:` and the hex of the credential as sent, without
 * an HTTP auth scheme.
 */
export function credentialFingerprint(credential: string): string {
  const bare = /^(?:Bearer|Basic|DPoP)\s+(.+)$/i.exec(credential)?.[1] ?? credential;
  return `sha256:${sha256Hex(bare)}`;
}
