/**
 * A key set we control, on 127.0.0.1: it serves the keys published now,
 * counts every fetch, and can hang (accept and never answer) like an IdP on a
 * bad day. Keys sign tokens the gateway verifies against it.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';

export interface SigningKey {
  kid: string;
  key: CryptoKey;
  jwk: Record<string, unknown>;
}

export async function newSigningKey(kid = randomBytes(8).toString('hex')): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

/** An ES256 user token; `kid` may name a key that is not `key`'s (an unknown kid). */
export function signToken(
  key: SigningKey,
  claims: { iss: string; aud: string; sub: string; client_id?: string },
  kid = key.kid,
): Promise<string> {
  return new SignJWT({ client_id: claims.client_id, jti: randomBytes(8).toString('hex') })
    .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
    .setIssuer(claims.iss)
    .setAudience(claims.aud)
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(key.key);
}

export interface JwksServer {
  url: string;
  /** GETs of the key set so far (answered or not). */
  readonly fetches: number;
  publish(keys: SigningKey[]): void;
  /** Accept requests and never answer them (until `hang(false)`). */
  hang(on: boolean): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: SigningKey[]): Promise<JwksServer> {
  let published = keys.map((k) => k.jwk);
  let hanging = false;
  let fetches = 0;
  const held: ServerResponse[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    fetches++;
    if (hanging) {
      held.push(res);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`,
    get fetches() {
      return fetches;
    },
    publish(next) {
      published = next.map((k) => k.jwk);
    },
    hang(on) {
      hanging = on;
      if (!on) for (const res of held.splice(0)) res.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
