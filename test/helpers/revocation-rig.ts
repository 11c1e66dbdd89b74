/**
 * A rig for revocation tests: one gateway trusting two issuers whose key
 * sets we control (issuer A introspects and fails closed, issuer B fails
 * open), a real RFC 7662 introspection server, a raw MCP server over HTTP
 * (streams, a slow tool for streamed POST responses) and the same server as
 * a stdio child per session (the per-user process), the admin endpoint with
 * an admin key in the key store, and a Shared Signals receiver trusting a
 * transmitter key of the test's.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { randomBytes } from 'node:crypto';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway/server.js';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys.js';
import { isoTime } from '../../src/keys/lifecycle.js';
import { updateKeyStore } from '../../src/keys/store.js';
import { newSigningKey, startJwksServer, type JwksServer, type SigningKey } from './jwks-server.js';
import { startRawHttpServer, type RawHttpServer } from './raw-mcp-http.js';
import { RAW_SERVER_STDIO } from './raw-mcp-server.js';
import { tempDir } from './tmp.js';

export const ISS_A = 'https://idp-a.test';
export const ISS_B = 'https://idp-b.test';
export const SSF_ISS = 'https://transmitter.test';
export const SSF_AUD = 'https://gateway.test/ssf';

/** A real introspection endpoint: active unless the token's subject is listed, down on request. */
export interface IntrospectionServer {
  url: string;
  inactive: Set<string>;
  down: boolean;
  calls: number;
  close(): Promise<void>;
}

export async function startIntrospection(clientId: string, secret: string): Promise<IntrospectionServer> {
  const state = { inactive: new Set<string>(), down: false, calls: 0 };
  const basic = `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.calls++;
      if (state.down) return void res.writeHead(503).end();
      if (req.headers.authorization !== basic) return void res.writeHead(401).end();
      const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('token') ?? '';
      const sub = String(decodeJwt(token).sub);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(state.inactive.has(sub) ? { active: false } : { active: true, sub }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
  return Object.assign(state, {
    url,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}

export interface Rig {
  gw: Gateway;
  raw: RawHttpServer;
  jwksA: JwksServer;
  jwksB: JwksServer;
  keyA1: SigningKey;
  keyA2: SigningKey;
  keyB: SigningKey;
  intro: IntrospectionServer;
  apiKey: string;
  /** The agent's second API key, a managed one in the key store. */
  storeKey: string;
  adminKey: string;
  adminKeyFile: string;
  dir: string;
  transmitter: { key: CryptoKey; kid: string };
  /** An ES256 user token issued to the agent for `route`. */
  token(
    sub: string,
    route: string,
    o?: { key?: SigningKey; iss?: string; claims?: Record<string, unknown>; iat?: number },
  ): Promise<string>;
  headers(
    sub: string,
    route: string,
    o?: { key?: SigningKey; iss?: string; apiKey?: string },
  ): Promise<Record<string, string>>;
  close(): Promise<void>;
}

export async function startRig(): Promise<Rig> {
  const dir = tempDir('behalf-revocation-');
  const [keyA1, keyA2, keyB] = await Promise.all([newSigningKey(), newSigningKey(), newSigningKey()]);
  const jwksA = await startJwksServer([keyA1, keyA2]);
  const jwksB = await startJwksServer([keyB]);
  const introSecret = randomBytes(12).toString('hex');
  writeFileSync(join(dir, 'intro-secret'), introSecret, { mode: 0o600 });
  const intro = await startIntrospection('gateway', introSecret);
  const raw = await startRawHttpServer();
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = 'transmitter-1';
  writeFileSync(
    join(dir, 'ssf.jwks.json'),
    JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256' }] }),
  );
  const apiKey = generateApiKey();
  const storeKey = generateApiKey();
  const adminKey = generateApiKey();
  const adminKeyFile = join(dir, 'admin-key');
  writeFileSync(adminKeyFile, adminKey, { mode: 0o600 });
  const now = Date.now();
  await updateKeyStore(join(dir, 'keys.json'), (doc) => {
    doc.keys.push({
      id: 'agent-store-1',
      kind: 'api-key',
      client: 'agent',
      hash: hashApiKey(storeKey),
      status: 'active',
      createdAt: isoTime(now),
      notBefore: isoTime(now - 1000),
      notAfter: isoTime(now + 86_400_000),
    });
    doc.keys.push({
      id: 'admin-1',
      kind: 'api-key',
      client: 'behalf-admin',
      hash: hashApiKey(adminKey),
      status: 'active',
      createdAt: isoTime(now),
      notBefore: isoTime(now - 1000),
      notAfter: isoTime(now + 86_400_000),
    });
  });
  const introspection = (onFailure: string) => ({
    endpoint: intro.url,
    clientId: 'gateway',
    clientSecret: 'file:intro-secret',
    cacheMs: 300,
    onFailure,
  });
  const issuer = (iss: string, jwksUri: string, onFailure: string) => ({
    issuer: iss,
    jwksUri,
    algorithms: ['ES256'],
    keyFetch: { minRefetchSeconds: 0, unknownKidSeconds: 0 },
    keyRefreshSeconds: 0.3,
    maxTokenAgeSeconds: 600,
    clientCredentials: { claims: { gty: 'client-credentials' }, subjectSuffixes: ['@clients'] },
    introspection: introspection(onFailure),
  });
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    clientAuth: { methods: ['api-key'] },
    clients: [{ id: 'agent', apiKeys: [{ id: 'k1', hash: hashApiKey(apiKey) }], oauthClientIds: ['agent'] }],
    userAuth: { mode: 'dual', issuers: [issuer(ISS_A, jwksA.url, 'closed'), issuer(ISS_B, jwksB.url, 'open')] },
    keys: { file: 'keys.json' },
    upstreams: {
      raw: { transport: 'streamable-http', url: raw.url },
      proc: RAW_SERVER_STDIO,
    },
    policy: { rules: [{ id: 'all', effect: 'allow', upstreams: ['raw', 'proc'], tools: ['*'] }] },
    audit: { sqlitePath: ':memory:' },
    revocation: {
      admin: { port: 0 },
      sharedSignals: { issuer: SSF_ISS, audience: SSF_AUD, jwks: 'file:ssf.jwks.json', algorithms: ['ES256'] },
    },
  };
  const gw = await startGateway(parseConfig(config, dir), { log: () => {} });
  const token: Rig['token'] = (sub, route, o = {}) => {
    const key = o.key ?? keyA1;
    const iat = o.iat ?? Math.floor(Date.now() / 1000);
    return new SignJWT({ client_id: 'agent', jti: randomBytes(8).toString('hex'), ...o.claims })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })
      .setIssuer(o.iss ?? ISS_A)
      .setAudience(gw.urlFor(route))
      .setSubject(sub)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 600)
      .sign(key.key);
  };
  return {
    gw,
    raw,
    jwksA,
    jwksB,
    keyA1,
    keyA2,
    keyB,
    intro,
    apiKey,
    storeKey,
    adminKey,
    adminKeyFile,
    dir,
    transmitter: { key: privateKey, kid },
    token,
    headers: async (sub, route, o) => ({
      'x-api-key': o?.apiKey ?? apiKey,
      authorization: `Bearer ${await token(sub, route, o)}`,
    }),
    async close() {
      await gw.close();
      await raw.close();
      await intro.close();
      await jwksA.close();
      await jwksB.close();
    },
  };
}
