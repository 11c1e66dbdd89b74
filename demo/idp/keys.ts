import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

/**
 * A fresh private signing key set. A new key gets a new RFC 7638 thumbprint as its kid, so an IdP
 * restarted with it publishes a kid that verifiers have not cached (key-rotation tests rely on that).
 */
export async function generateSigningJwks(): Promise<{ keys: object[] }> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { keys: [{ ...jwk, kid, alg: 'ES256', use: 'sig' }] };
}

/** The public half of each key, derived locally so nothing private can leak into the published set. */
export function publicJwksOf(jwks: { keys: object[] }): { keys: object[] } {
  return {
    keys: jwks.keys.map((k) => {
      const jwk = k as JWK;
      const pub = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({ format: 'jwk' });
      return { ...pub, kid: jwk.kid, alg: jwk.alg ?? signingAlgOf(jwk), use: 'sig' };
    }),
  };
}

const EC_ALGS: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };

/** The JWS algorithm a key signs access tokens with: its own `alg`, else the usual one for its type. */
export function signingAlgOf(jwk: JWK): string {
  if (jwk.alg) return jwk.alg;
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'OKP') return 'EdDSA';
  const alg = jwk.kty === 'EC' && jwk.crv ? EC_ALGS[jwk.crv] : undefined;
  if (!alg) throw new Error(`dev IdP: no signing algorithm for key ${jwk.kid ?? '(no kid)'}`);
  return alg;
}
