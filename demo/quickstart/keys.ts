import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, importJWK, SignJWT, type JWK } from 'jose';
import { callBinding } from '../../src/identity/user-context.js';
import { writeKeyStore } from '../../src/keys/store.js';

const DAY = 86_400_000;

function ecKeyPair(): {
  privateJwk: JWK & { d: string };
  publicJwk: { kty: 'EC'; crv: 'P-256'; x: string; y: string };
} {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' }) as { kty: 'EC'; crv: 'P-256'; x: string; y: string; d: string };
  return { privateJwk: jwk, publicJwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } };
}

/**
 * The quickstart's key store: one gateway signing key (user assertions to
 * the CRM), valid 30 days, its private half in a 0600 file beside the store.
 * Written afresh at every start, like every other development secret.
 */
export async function writeQuickstartKeyStore(dir: string): Promise<string> {
  const { privateJwk, publicJwk } = ecKeyPair();
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  const now = Date.now();
  writeFileSync(join(dir, 'gateway-signing.private.jwk'), `${JSON.stringify({ ...privateJwk, kid, alg: 'ES256' })}\n`, {
    mode: 0o600,
  });
  const store = join(dir, 'keys.json');
  writeKeyStore(store, {
    version: 1,
    keys: [
      {
        id: 'quickstart-signing',
        kind: 'signing',
        kid,
        alg: 'ES256',
        publicJwk,
        privateKey: 'file:gateway-signing.private.jwk',
        createdAt: new Date(now).toISOString(),
        notBefore: new Date(now).toISOString(),
        notAfter: new Date(now + 30 * DAY).toISOString(),
        status: 'active',
      },
    ],
  });
  return store;
}

export const DEV_IDP_SIGNING_KEY_FILE = 'dev-idp-signing-key.json';

/**
 * DEVELOPMENT ONLY: the dev IdP's private signing JWK, in a 0600 file, so a
 * reviewer can sign tokens that are valid in every respect but one (expired,
 * wrong issuer, wrong audience) and so show that the gateway checks that very
 * claim, not just the signature (behalf review, BND-04 issuer.signingKeyFile).
 * Never hand out a real IdP's private key; a real review uses a reviewer key.
 */
export function writeDevIdpSigningKey(dir: string, jwks: { keys: object[] }): string {
  const [key] = jwks.keys;
  if (!key) throw new Error('the dev IdP has no signing key');
  const path = join(dir, DEV_IDP_SIGNING_KEY_FILE);
  writeFileSync(path, `${JSON.stringify(key)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

/** The stand-in agent platform of the signed-context pattern: public key to the gateway, private key to dev-secrets.json. */
export const AGENT_PLATFORM_ISSUER = 'behalf-quickstart-agent-platform';

export async function writeAgentPlatformKeys(dir: string): Promise<JWK> {
  const { privateJwk, publicJwk } = ecKeyPair();
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  writeFileSync(
    join(dir, 'agent-platform.jwks.json'),
    `${JSON.stringify({ keys: [{ ...publicJwk, kid, alg: 'ES256', use: 'sig' }] })}\n`,
    { mode: 0o600 },
  );
  return { ...privateJwk, kid, alg: 'ES256' };
}

/**
 * What an agent platform puts in `params._meta["behalf/user"]`: a 60-second
 * assertion about the user for exactly this call (the `call` claim binds it
 * to the method, tool and arguments), usable once.
 */
export async function signUserContext(o: {
  privateJwk: JWK;
  resource: string;
  user: string;
  claims: Record<string, unknown>;
  clientId: string;
  call: { method: string; params: Record<string, unknown> };
}): Promise<string> {
  const key = await importJWK(o.privateJwk, 'ES256');
  return new SignJWT({ scope: 'mcp:tools', ...o.claims, client_id: o.clientId, call: callBinding(o.call) })
    .setProtectedHeader({ alg: 'ES256', kid: o.privateJwk.kid, typ: 'JWT' })
    .setIssuer(AGENT_PLATFORM_ISSUER)
    .setSubject(o.user)
    .setAudience(o.resource)
    .setIssuedAt()
    .setExpirationTime('60s')
    .setJti(randomBytes(16).toString('base64url'))
    .sign(key);
}
