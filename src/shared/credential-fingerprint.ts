import { sha256Hex } from './hash.js';

/**
 * How a downstream observer names a credential it received (the review's
 * BND-09 contract): `sha256:` and the hex of the credential as sent, without
 * an HTTP auth scheme.
 */
export function credentialFingerprint(credential: string): string {
  const bare = /^(?:Bearer|Basic|DPoP)\s+(.+)$/i.exec(credential)?.[1] ?? credential;
  return `sha256:${sha256Hex(bare)}`;
}
