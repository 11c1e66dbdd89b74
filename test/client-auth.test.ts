import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startCrmHttp, type CrmHttpServer, type CrmRequestInfo } from '../demo/crm/http.js';
import { parseConfig } from '../src/config/load.js';
import { generateApiKey, hashApiKey } from '../src/identity/api-keys.js';
import { connectStreamable, toolJson } from './helpers/clients.js';
import { AGENT, OTHER_AGENT, startFixture, type Fixture } from './helpers/fixture.js';
import {
  assertChallenge,
  assertInitializes,
  assertNoSecrets,
  httpRequestLines,
  initialize,
  INIT_BODY,
  JSON_HEADERS,
  metadataUrlOf,
  rawRequest,
  type RawResponse,
} from './helpers/auth-http.js';
import { fixtureIdpOptions, STRANGER, strangerClient } from './helpers/auth-idp.js';
import { hasOpenssl, httpsRequest, makeCa, makeLeaf, tlsFetch, type CertFiles } from './helpers/auth-tls.js';
import { tempDir } from './helpers/tmp.js';

/**
 * Client authentication (docs/architecture.md §2 step 3, review checks BND-01/02): every
 * client-authentication method, on every endpoint, against a real gateway and
 * a real dev IdP. Each refusal sits next to its positive control.
 */

const REQUIRED = 'Client authentication required';
const FAILED = 'Client authentication failed';
const INVALID_USER = 'User token is invalid';
const NOT_DELEGATED = 'User token was not issued to this client';

interface Refusal {
  name: string;
  headers: () => Promise<Record<string, string>> | Record<string, string>;
  /** undefined: nothing usable was presented, so a plain challenge. */
  error?: 'invalid_token';
  message: string;
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** The last auth-failure audit record: it names the reason and carries no secret. */
async function lastAuthFailure(fx: Fixture, secrets: string[]): Promise<string> {
  const [last] = await fx.gateway.runtime.audit.query({ kind: 'auth-failure', limit: 1 });
  assert.ok(last, 'the refusal is audited');
  const text = JSON.stringify(last);
  for (const s of secrets) assert.ok(!text.includes(s), 'the audit record carries no secret');
  return last.reason ?? '';
}

/** A refusal answers with the expected challenge, leaks none of the credentials sent, and is audited with its reason. */
async function assertRefusal(
  fx: Fixture,
  res: RawResponse,
  r: Pick<Refusal, 'error' | 'message'> & { reason: RegExp },
  headers: Record<string, string>,
  alsoSecret: string[] = [],
): Promise<void> {
  assertChallenge(res, { error: r.error, metadataUrl: metadataUrlOf(fx.gateway), message: r.message });
  const secrets = Object.values(headers).map((v) => v.replace(/^Bearer /, ''));
  assertNoSecrets(res, [...secrets, ...alsoSecret]);
  assert.match(await lastAuthFailure(fx, secrets), r.reason);
}

async function sdkCallsAsAlice(url: string, headers: Record<string, string>): Promise<void> {
  const client = await connectStreamable(url, headers);
  try {
    const res = await client.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } });
    assert.equal(toolJson(res).owner, 'alice');
  } finally {
    await client.close();
  }
}

describe('client auth: API keys (dual mode)', () => {
  let fx: Fixture;
  let url: string;
  let alice: string;
  before(async () => {
    fx = await startFixture();
    url = fx.gateway.urlFor('crm');
    alice = await fx.userToken('alice');
  });
  after(async () => fx?.close());

  it("the right key plus alice's token initializes and calls a tool (positive control)", async () => {
    await assertInitializes(url, { 'x-api-key': fx.apiKey, ...bearer(alice) });
    await sdkCallsAsAlice(url, { 'x-api-key': fx.apiKey, ...bearer(alice) });
  });

  const refusals: Refusal[] = [
    { name: 'no key at all', headers: () => bearer(alice), message: REQUIRED },
    {
      name: 'the key under another header name',
      headers: () => ({ 'api-key': fx.apiKey, 'x-api-token': fx.apiKey, ...bearer(alice) }),
      message: REQUIRED,
    },
    { name: 'the key as the bearer token and no key header', headers: () => bearer(fx.apiKey), message: REQUIRED },
    {
      name: 'an empty key',
      headers: () => ({ 'x-api-key': '', ...bearer(alice) }),
      error: 'invalid_token',
      message: FAILED,
    },
    {
      name: 'a wrong key',
      headers: () => ({ 'x-api-key': 'wrong', ...bearer(alice) }),
      error: 'invalid_token',
      message: FAILED,
    },
    {
      name: 'a key of the right shape that is unknown',
      headers: () => ({ 'x-api-key': generateApiKey(), ...bearer(alice) }),
      error: 'invalid_token',
      message: FAILED,
    },
    {
      name: 'the right key with its last character changed',
      headers: () => ({
        'x-api-key': fx.apiKey.slice(0, -1) + (fx.apiKey.endsWith('A') ? 'B' : 'A'),
        ...bearer(alice),
      }),
      error: 'invalid_token',
      message: FAILED,
    },
    {
      name: 'the right key with a suffix',
      headers: () => ({ 'x-api-key': `${fx.apiKey}x`, ...bearer(alice) }),
      error: 'invalid_token',
      message: FAILED,
    },
    {
      name: 'the configured hash instead of the key',
      headers: () => ({ 'x-api-key': hashApiKey(fx.apiKey), ...bearer(alice) }),
      error: 'invalid_token',
      message: FAILED,
    },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name}: 401${r.error ? ' invalid_token' : ', plain challenge'}`, async () => {
      const headers = await r.headers();
      const res = await initialize(url, headers);
      assertChallenge(res, { error: r.error, metadataUrl: metadataUrlOf(fx.gateway), message: r.message });
      assertNoSecrets(res, [fx.apiKey, alice, headers['x-api-key']]);
      assert.equal(res.headers.get('mcp-session-id'), null);
      await lastAuthFailure(fx, [fx.apiKey, alice]);
    });
  }

  const repeated: Array<{ name: string; values: () => string[] }> = [
    { name: 'the right key and an unknown one', values: () => [fx.apiKey, generateApiKey()] },
    { name: 'an unknown key and the right one', values: () => [generateApiKey(), fx.apiKey] },
    { name: 'the keys of two different clients', values: () => [fx.apiKey, fx.otherApiKey] },
    { name: 'the right key twice', values: () => [fx.apiKey, fx.apiKey] },
  ];
  for (const r of repeated) {
    it(`refuses the key header sent twice: ${r.name}`, async () => {
      const values = r.values();
      const res = await httpRequestLines(url, {
        method: 'POST',
        headers: { ...JSON_HEADERS, 'x-api-key': values, ...bearer(alice) },
        body: INIT_BODY,
      });
      assertChallenge(res, { error: 'invalid_token', metadataUrl: metadataUrlOf(fx.gateway), message: FAILED });
      assertNoSecrets(res, [...values, alice]);
    });
  }
  it('a single key header sent the same raw way is accepted (control for the repeated-header cases)', async () => {
    const res = await httpRequestLines(url, {
      method: 'POST',
      headers: { ...JSON_HEADERS, 'x-api-key': fx.apiKey, ...bearer(alice) },
      body: INIT_BODY,
    });
    assert.equal(res.status, 200);
    assert.ok(res.headers.get('mcp-session-id'));
  });

  const repeatedAuthorization: Array<{ name: string; values: () => Promise<string[]> }> = [
    { name: 'a valid token, then garbage', values: async () => [`Bearer ${alice}`, 'Bearer not-a-jwt'] },
    { name: 'garbage, then a valid token', values: async () => ['Bearer not-a-jwt', `Bearer ${alice}`] },
    {
      name: "alice's valid token, then bob's",
      values: async () => [`Bearer ${alice}`, `Bearer ${await fx.userToken('bob')}`],
    },
  ];
  for (const r of repeatedAuthorization) {
    it(`refuses two Authorization headers: ${r.name} (Node would silently keep only the first)`, async () => {
      const values = await r.values();
      const res = await httpRequestLines(url, {
        method: 'POST',
        headers: { ...JSON_HEADERS, 'x-api-key': fx.apiKey, authorization: values },
        body: INIT_BODY,
      });
      assertChallenge(res, { error: 'invalid_token', metadataUrl: metadataUrlOf(fx.gateway), message: INVALID_USER });
      assertNoSecrets(res, [fx.apiKey, ...values.map((v) => v.slice(7))]);
    });
  }

  it('a key only in the query string is not accepted', async () => {
    for (const param of ['x-api-key', 'api_key', 'apiKey', 'key']) {
      const res = await initialize(`${url}?${param}=${encodeURIComponent(fx.apiKey)}`, bearer(alice));
      assertChallenge(res, { metadataUrl: metadataUrlOf(fx.gateway), message: REQUIRED });
      assertNoSecrets(res, [fx.apiKey, alice]);
    }
  });

  it('the audit record of a bad key names the reason and not the key', async () => {
    const bad = generateApiKey();
    await initialize(url, { 'x-api-key': bad, ...bearer(alice) });
    assert.match(await lastAuthFailure(fx, [bad, alice, fx.apiKey]), /client_auth_invalid: unknown API key/);
  });
});

describe('client auth: configured credential header names', () => {
  let fx: Fixture;
  before(async () => {
    // Written as an operator might; Node lower-cases incoming header names.
    fx = await startFixture({ clientAuth: { methods: ['api-key'], apiKeyHeader: 'X-Agent-Key' } });
  });
  after(async () => fx?.close());

  it('the key is read from the configured header, whatever its case in the config (positive control)', async () => {
    await assertInitializes(fx.gateway.urlFor('crm'), {
      'x-agent-key': fx.apiKey,
      ...bearer(await fx.userToken('alice')),
    });
  });
  it('the default header is no longer read', async () => {
    const res = await initialize(fx.gateway.urlFor('crm'), {
      'x-api-key': fx.apiKey,
      ...bearer(await fx.userToken('alice')),
    });
    assertChallenge(res, { metadataUrl: metadataUrlOf(fx.gateway), message: REQUIRED });
  });
});

describe('client auth: delegation check (dual mode)', () => {
  let fx: Fixture;
  let url: string;
  before(async () => {
    fx = await startFixture();
    url = fx.gateway.urlFor('crm');
  });
  after(async () => fx?.close());

  const cases: Array<{ name: string; key: () => string; issuedTo: typeof AGENT; ok: boolean }> = [
    { name: "agent's key + alice's token issued to agent", key: () => fx.apiKey, issuedTo: AGENT, ok: true },
    {
      name: "other-agent's key + alice's token issued to other-agent",
      key: () => fx.otherApiKey,
      issuedTo: OTHER_AGENT,
      ok: true,
    },
    {
      name: "agent's key + alice's token issued to other-agent",
      key: () => fx.apiKey,
      issuedTo: OTHER_AGENT,
      ok: false,
    },
    {
      name: "other-agent's key + alice's token issued to agent",
      key: () => fx.otherApiKey,
      issuedTo: AGENT,
      ok: false,
    },
  ];
  for (const c of cases) {
    it(`${c.ok ? 'accepts' : 'refuses (delegation mismatch)'}: ${c.name}`, async () => {
      const token = await fx.userToken('alice', { client: c.issuedTo });
      const headers = { 'x-api-key': c.key(), ...bearer(token) };
      if (c.ok) return assertInitializes(url, headers);
      const res = await initialize(url, headers);
      assertChallenge(res, { error: 'invalid_token', metadataUrl: metadataUrlOf(fx.gateway), message: NOT_DELEGATED });
      assertNoSecrets(res, [c.key(), token]);
      assert.match(await lastAuthFailure(fx, [c.key(), token]), /^delegation_mismatch/);
    });
  }
});

describe('client auth: client-credentials JWTs (dual mode, x-client-token)', () => {
  let fx: Fixture;
  let url: string;
  const cc = (client: { clientId: string; clientSecret: string }, resource?: string) =>
    fx.idp.clientCredentialsToken({ ...client, resource: resource ?? url }).then((t) => t.accessToken);
  before(async () => {
    fx = await startFixture({
      idp: fixtureIdpOptions({ extraClients: [strangerClient] }),
      clientAuth: { methods: ['api-key', 'client-credentials'] },
    });
    url = fx.gateway.urlFor('crm');
  });
  after(async () => fx?.close());

  it('a client_credentials token for the gateway resource authenticates the client (positive control)', async () => {
    const clientToken = await cc(AGENT);
    const alice = await fx.userToken('alice');
    await assertInitializes(url, { 'x-client-token': clientToken, ...bearer(alice) });
    await assertInitializes(url, { 'x-client-token': `Bearer ${clientToken}`, ...bearer(alice) });
    await sdkCallsAsAlice(url, { 'x-client-token': clientToken, ...bearer(alice) });
    const [session] = await fx.gateway.runtime.audit.query({ kind: 'session', limit: 1 });
    assert.equal(session?.clientId, 'agent');
    assert.equal(session?.clientMethod, 'client-credentials');
  });

  it("other-agent's client token with a user token issued to other-agent (positive control)", async () => {
    await assertInitializes(url, {
      'x-client-token': await cc(OTHER_AGENT),
      ...bearer(await fx.userToken('alice', { client: OTHER_AGENT })),
    });
  });

  const refusals: Array<Refusal & { reason: RegExp }> = [
    {
      name: "a user's own token in the client slot (it names a user, not the client)",
      headers: async () => ({ 'x-client-token': await fx.userToken('alice'), ...bearer(await fx.userToken('alice')) }),
      error: 'invalid_token',
      message: FAILED,
      reason: /not a client-credentials token/,
    },
    {
      name: 'a client token for another audience',
      headers: async () => ({
        'x-client-token': await cc(AGENT, 'http://127.0.0.1:1/mcp/other'),
        ...bearer(await fx.userToken('alice')),
      }),
      error: 'invalid_token',
      message: FAILED,
      reason: /client token invalid/,
    },
    {
      name: 'a client token whose client_id the gateway does not know',
      headers: async () => ({
        'x-client-token': await cc(STRANGER),
        ...bearer(await fx.userToken('alice', { client: STRANGER })),
      }),
      error: 'invalid_token',
      message: FAILED,
      reason: /unknown client/,
    },
    {
      name: 'a garbage client token',
      headers: async () => ({ 'x-client-token': 'not-a-jwt', ...bearer(await fx.userToken('alice')) }),
      error: 'invalid_token',
      message: FAILED,
      reason: /client token invalid/,
    },
    {
      name: "agent's client token with other-agent's API key (two clients)",
      headers: async () => ({
        'x-client-token': await cc(AGENT),
        'x-api-key': fx.otherApiKey,
        ...bearer(await fx.userToken('alice')),
      }),
      error: 'invalid_token',
      message: FAILED,
      reason: /different clients/,
    },
    {
      name: "other-agent's client token with alice's token issued to agent",
      headers: async () => ({ 'x-client-token': await cc(OTHER_AGENT), ...bearer(await fx.userToken('alice')) }),
      error: 'invalid_token',
      message: NOT_DELEGATED,
      reason: /delegation_mismatch/,
    },
    {
      name: 'a client token as the user token (API key client)',
      headers: async () => ({ 'x-api-key': fx.apiKey, ...bearer(await cc(AGENT)) }),
      error: 'invalid_token',
      message: INVALID_USER,
      reason: /identifies a client/,
    },
    {
      name: 'a client token in both slots',
      headers: async () => {
        const t = await cc(AGENT);
        return { 'x-client-token': t, ...bearer(t) };
      },
      error: 'invalid_token',
      message: INVALID_USER,
      reason: /identifies a client/,
    },
    {
      name: 'a client token and no user token',
      headers: async () => ({ 'x-client-token': await cc(AGENT) }),
      message: 'User authentication required',
      reason: /user_token_required/,
    },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name}`, async () => {
      const headers = await r.headers();
      await assertRefusal(fx, await initialize(url, headers), r, headers, [fx.apiKey, fx.otherApiKey]);
    });
  }
});

describe('client auth: oauth mode (one bearer token; the client is its client_id)', () => {
  let fx: Fixture;
  let url: string;
  before(async () => {
    fx = await startFixture({
      idp: fixtureIdpOptions({ extraClients: [strangerClient] }),
      userAuth: { mode: 'oauth' },
      clientAuth: { methods: [] },
      clients: [
        { id: 'agent', oauthClientIds: [AGENT.clientId] },
        { id: 'other-agent', oauthClientIds: [OTHER_AGENT.clientId] },
      ],
    });
    url = fx.gateway.urlFor('crm');
  });
  after(async () => fx?.close());

  for (const issuedTo of [AGENT, OTHER_AGENT]) {
    it(`alice's token issued to configured client ${issuedTo.clientId} is accepted, and names that client (positive control)`, async () => {
      const token = await fx.userToken('alice', { client: issuedTo });
      await assertInitializes(url, bearer(token));
      const [session] = await fx.gateway.runtime.audit.query({ kind: 'session', limit: 1 });
      assert.equal(session?.clientId, issuedTo.clientId);
      assert.equal(session?.clientMethod, 'oauth-token');
      assert.equal(session?.userSubject, 'alice');
    });
  }

  it('the SDK client calls a tool with only the bearer token (positive control)', async () => {
    await sdkCallsAsAlice(url, bearer(await fx.userToken('alice')));
  });

  const refusals: Array<Refusal & { reason: RegExp }> = [
    { name: 'no token', headers: () => ({}), message: REQUIRED, reason: /client_auth_required/ },
    {
      name: 'an API key instead of a token (not a method here)',
      headers: () => ({ 'x-api-key': fx.apiKey }),
      message: REQUIRED,
      reason: /client_auth_required/,
    },
    {
      name: 'a token issued to a client the gateway does not know',
      headers: async () => bearer(await fx.userToken('alice', { client: STRANGER })),
      error: 'invalid_token',
      message: FAILED,
      reason: /unknown client/,
    },
    {
      name: 'a client_credentials token (sub = client_id: no user)',
      headers: async () => bearer((await fx.idp.clientCredentialsToken({ ...AGENT, resource: url })).accessToken),
      error: 'invalid_token',
      message: INVALID_USER,
      reason: /identifies a client/,
    },
    {
      name: 'a token for another resource',
      headers: async () => bearer(await fx.userToken('alice', { resource: 'http://127.0.0.1:1/mcp/other' })),
      error: 'invalid_token',
      message: INVALID_USER,
      reason: /claim aud/,
    },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name}`, async () => {
      const headers = await r.headers();
      await assertRefusal(fx, await initialize(url, headers), r, headers);
    });
  }
});

describe(
  'client auth: mTLS',
  { skip: hasOpenssl() ? false : 'the openssl CLI is not installed: cannot generate test certificates' },
  () => {
    let fx: Fixture;
    let url: string;
    let ca: CertFiles;
    let agentCert: CertFiles;
    let otherAgentCert: CertFiles;
    let unmapped: CertFiles;
    let foreign: CertFiles;
    let selfSignedTwin: CertFiles;

    before(async () => {
      const dir = tempDir('behalf-mtls-');
      ca = makeCa(dir, 'test-ca');
      const server = makeLeaf(dir, ca, 'server', 'server');
      agentCert = makeLeaf(dir, ca, 'agent', 'client');
      otherAgentCert = makeLeaf(dir, ca, 'other-agent', 'client');
      unmapped = makeLeaf(dir, ca, 'unmapped', 'client');
      const otherCa = makeCa(dir, 'other-ca');
      foreign = makeLeaf(dir, otherCa, 'foreign', 'client');
      // Same subject as the mapped agent certificate, but issued by the other CA.
      selfSignedTwin = makeLeaf(dir, otherCa, 'agent-twin', 'client');
      fx = await startFixture({
        server: {
          tls: {
            cert: `file:${server.certPath}`,
            key: `file:${join(dir, 'server.key')}`,
            clientCa: `file:${ca.certPath}`,
          },
        },
        clientAuth: { methods: ['mtls'] },
        clients: [
          {
            id: 'agent',
            certificates: [{ fingerprint256: agentCert.fingerprint256 }],
            oauthClientIds: [AGENT.clientId],
          },
          {
            id: 'other-agent',
            certificates: [{ fingerprint256: otherAgentCert.fingerprint256 }],
            oauthClientIds: [OTHER_AGENT.clientId],
          },
        ],
      });
      url = fx.gateway.urlFor('crm');
    });
    after(async () => fx?.close());

    const post = (client: CertFiles | undefined, headers: Record<string, string>): Promise<RawResponse> =>
      httpsRequest(url, {
        ca: ca.cert,
        client: client && { cert: client.cert, key: client.key },
        method: 'POST',
        headers: { ...JSON_HEADERS, ...headers },
        body: INIT_BODY,
      });

    it('the gateway serves TLS with the configured certificate and an https resource', () => {
      assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\/mcp\/crm$/);
    });

    const positives: Array<{ name: string; cert: () => CertFiles; issuedTo: typeof AGENT; clientId: string }> = [
      {
        name: "agent's certificate + alice's token issued to agent",
        cert: () => agentCert,
        issuedTo: AGENT,
        clientId: 'agent',
      },
      {
        name: "other-agent's certificate + alice's token issued to other-agent",
        cert: () => otherAgentCert,
        issuedTo: OTHER_AGENT,
        clientId: 'other-agent',
      },
    ];
    for (const p of positives) {
      it(`accepts ${p.name} (positive control)`, async () => {
        const res = await post(p.cert(), bearer(await fx.userToken('alice', { client: p.issuedTo })));
        assert.equal(res.status, 200, res.text);
        const sessionId = res.headers.get('mcp-session-id');
        assert.ok(sessionId);
        const [session] = await fx.gateway.runtime.audit.query({ kind: 'session', limit: 1 });
        assert.equal(session?.clientId, p.clientId);
        assert.equal(session?.clientMethod, 'mtls');
      });
    }

    it('the SDK 1.x client, given a custom fetch with the client certificate, calls a tool (positive control)', async () => {
      const client = new McpClient({ name: 'behalf-test', version: '0.0.0' });
      const transport = new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: bearer(await fx.userToken('alice')) },
        fetch: tlsFetch({ ca: ca.cert, client: { cert: agentCert.cert, key: agentCert.key } }),
      });
      await client.connect(transport);
      try {
        const res = await client.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } });
        assert.equal(toolJson(res).owner, 'alice');
      } finally {
        await client.close();
      }
    });

    const refusals: Array<{
      name: string;
      cert: () => CertFiles | undefined;
      headers?: () => Promise<Record<string, string>>;
      error?: 'invalid_token';
      message: string;
      reason: RegExp;
    }> = [
      { name: 'no client certificate', cert: () => undefined, message: REQUIRED, reason: /client_auth_required/ },
      { name: 'a certificate from another CA', cert: () => foreign, message: REQUIRED, reason: /client_auth_required/ },
      {
        name: "a certificate from another CA with the mapped certificate's subject",
        cert: () => selfSignedTwin,
        message: REQUIRED,
        reason: /client_auth_required/,
      },
      {
        name: 'a certificate from the right CA that is mapped to no client',
        cert: () => unmapped,
        error: 'invalid_token',
        message: FAILED,
        reason: /not mapped/,
      },
      {
        name: 'an API key (not a method here) and no certificate',
        cert: () => undefined,
        headers: async () => ({ 'x-api-key': fx.apiKey, ...bearer(await fx.userToken('alice')) }),
        message: REQUIRED,
        reason: /client_auth_required/,
      },
      {
        name: "agent's certificate + alice's token issued to other-agent",
        cert: () => agentCert,
        headers: async () => bearer(await fx.userToken('alice', { client: OTHER_AGENT })),
        error: 'invalid_token',
        message: NOT_DELEGATED,
        reason: /delegation_mismatch/,
      },
      {
        name: "agent's certificate and no user token",
        cert: () => agentCert,
        headers: async () => ({}),
        message: 'User authentication required',
        reason: /user_token_required/,
      },
    ];
    for (const r of refusals) {
      it(`refuses ${r.name}: 401`, async () => {
        const headers = r.headers ? await r.headers() : bearer(await fx.userToken('alice'));
        await assertRefusal(fx, await post(r.cert(), headers), r, headers);
      });
    }
  },
);

describe('client auth: every endpoint refuses unauthenticated requests before anything reaches the upstream', () => {
  let fx: Fixture;
  let crm: CrmHttpServer;
  const seen: CrmRequestInfo[] = [];
  before(async () => {
    crm = await startCrmHttp({ onRequest: (info) => seen.push(info) });
    fx = await startFixture({ upstreams: { crm: { transport: 'streamable-http', url: crm.url } } });
  });
  after(async () => {
    await fx?.close();
    await crm?.close();
  });

  const TOOLS_LIST = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
  const STATELESS_LIST = JSON.stringify({
    jsonrpc: '2.0',
    id: 3,
    method: 'tools/list',
    params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } },
  });
  const endpoints: Array<{
    name: string;
    method: string;
    path: string;
    headers?: Record<string, string>;
    body?: string;
  }> = [
    { name: 'POST /mcp/crm (initialize)', method: 'POST', path: '/mcp/crm', headers: JSON_HEADERS, body: INIT_BODY },
    {
      name: 'POST /mcp/crm (tools/list on a session)',
      method: 'POST',
      path: '/mcp/crm',
      headers: { ...JSON_HEADERS, 'mcp-session-id': 'x', 'mcp-protocol-version': '2025-11-25' },
      body: TOOLS_LIST,
    },
    {
      name: 'POST /mcp/crm (stateless 2026-07-28)',
      method: 'POST',
      path: '/mcp/crm',
      headers: { ...JSON_HEADERS, 'mcp-protocol-version': '2026-07-28' },
      body: STATELESS_LIST,
    },
    {
      name: 'GET /mcp/crm (stream)',
      method: 'GET',
      path: '/mcp/crm',
      headers: { accept: 'text/event-stream', 'mcp-session-id': 'x' },
    },
    { name: 'DELETE /mcp/crm', method: 'DELETE', path: '/mcp/crm', headers: { 'mcp-session-id': 'x' } },
    { name: 'GET /mcp/crm/sse', method: 'GET', path: '/mcp/crm/sse', headers: { accept: 'text/event-stream' } },
    {
      name: 'POST /mcp/crm/messages?sessionId=x',
      method: 'POST',
      path: '/mcp/crm/messages?sessionId=x',
      headers: { 'content-type': 'application/json' },
      body: TOOLS_LIST,
    },
  ];
  const credentials: Array<{
    name: string;
    headers: () => Promise<Record<string, string>>;
    error?: 'invalid_token';
    message: string;
  }> = [
    { name: 'no credentials', headers: async () => ({}), message: REQUIRED },
    {
      name: 'a user token but no client credential',
      headers: async () => bearer(await fx.userToken('alice')),
      message: REQUIRED,
    },
    {
      name: 'a wrong API key and a user token',
      headers: async () => ({ 'x-api-key': generateApiKey(), ...bearer(await fx.userToken('alice')) }),
      error: 'invalid_token',
      message: FAILED,
    },
    {
      name: 'the API key but no user token',
      headers: async () => ({ 'x-api-key': fx.apiKey }),
      message: 'User authentication required',
    },
    {
      name: 'the API key and a garbage user token',
      headers: async () => ({ 'x-api-key': fx.apiKey, authorization: 'Bearer not-a-jwt' }),
      error: 'invalid_token',
      message: INVALID_USER,
    },
  ];

  for (const e of endpoints) {
    it(`${e.name}: 401 for every incomplete credential, and the upstream sees nothing`, async () => {
      for (const c of credentials) {
        const creds = await c.headers();
        const before = seen.length;
        const res = await rawRequest(`${fx.gateway.baseUrl}${e.path}`, {
          method: e.method,
          headers: { ...e.headers, ...creds },
          body: e.body,
        });
        assertChallenge(res, { error: c.error, metadataUrl: metadataUrlOf(fx.gateway), message: c.message });
        assert.equal(res.headers.get('mcp-session-id'), null, `${c.name}: no session id`);
        assertNoSecrets(res, [fx.apiKey, ...Object.values(creds)]);
        assert.equal(seen.length, before, `${c.name}: nothing reached the upstream`);
      }
    });
  }

  it('with full credentials the same gateway does reach the upstream (positive control for the counter)', async () => {
    const before = seen.length;
    await assertInitializes(fx.gateway.urlFor('crm'), await fx.headersFor('alice'));
    assert.ok(seen.length > before, 'the upstream received the initialize');
    assert.ok(
      seen.every((r) => r.headers['x-api-key'] === undefined && r.headers.authorization === undefined),
      "neither the client's key nor the user's token is passed through",
    );
  });

  it('the RFC 9728 document named in the challenge is served without credentials', async () => {
    const res = await rawRequest(metadataUrlOf(fx.gateway));
    assert.equal(res.status, 200);
    const doc = res.json as { resource: string; authorization_servers: string[] };
    assert.equal(doc.resource, fx.gateway.urlFor('crm'));
    assert.deepEqual(doc.authorization_servers, [fx.idp.issuer]);
  });
});

describe('client auth: a configuration without client authentication', () => {
  const base = (o: Record<string, unknown>) => ({
    ...o,
    userAuth: { issuers: [{ issuer: 'http://127.0.0.1:1' }], ...(o.userAuth as object) },
    upstreams: { crm: { transport: 'stdio', command: 'node' } },
  });

  const refused: Array<{ name: string; raw: Record<string, unknown> }> = [
    { name: 'dual mode, no methods', raw: base({ clientAuth: { methods: [] } }) },
    { name: 'dual mode, defaults (no clientAuth section)', raw: base({}) },
    {
      name: 'oauth mode, no client has oauthClientIds',
      raw: base({ userAuth: { mode: 'oauth' }, clients: [{ id: 'agent' }] }),
    },
  ];
  for (const r of refused) {
    it(`refuses to load: ${r.name}`, () => {
      assert.throws(
        () => parseConfig(r.raw, tempDir()),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'config_invalid');
          assert.match(
            err.message,
            /clientAuth\.methods: no client authentication is configured; set server\.allowUnauthenticated: true/,
          );
          return true;
        },
      );
    });
  }
  it('loads with server.allowUnauthenticated: true (control)', () => {
    const loaded = parseConfig(
      base({ clientAuth: { methods: [] }, server: { allowUnauthenticated: true } }),
      tempDir(),
    );
    assert.equal(loaded.config.server.allowUnauthenticated, true);
  });

  describe('running with allowUnauthenticated', () => {
    let fx: Fixture;
    const log: string[] = [];
    before(async () => {
      fx = await startFixture({
        clientAuth: { methods: [] },
        clients: [],
        server: { allowUnauthenticated: true },
        gateway: { log: (l) => log.push(l) },
      });
    });
    after(async () => fx?.close());

    it('logs a loud warning at start', () => {
      assert.ok(
        log.some((l) => /^WARNING: server\.allowUnauthenticated is set: clients are NOT authenticated/.test(l)),
        log.join('\n'),
      );
    });
    it('serves a user token without a client credential, as client "anonymous"', async () => {
      await assertInitializes(fx.gateway.urlFor('crm'), bearer(await fx.userToken('alice')));
      const [session] = await fx.gateway.runtime.audit.query({ kind: 'session', limit: 1 });
      assert.equal(session?.clientId, 'anonymous');
      assert.equal(session?.clientMethod, 'none');
    });
    it('still requires and validates the user token', async () => {
      const none = await initialize(fx.gateway.urlFor('crm'), {});
      assertChallenge(none, { metadataUrl: metadataUrlOf(fx.gateway), message: 'User authentication required' });
      const bad = await initialize(fx.gateway.urlFor('crm'), bearer('not-a-jwt'));
      assertChallenge(bad, { error: 'invalid_token', metadataUrl: metadataUrlOf(fx.gateway), message: INVALID_USER });
    });
  });

  it('a normal configuration does not log the warning (control)', async () => {
    const log: string[] = [];
    const fx = await startFixture({ gateway: { log: (l) => log.push(l) } });
    try {
      assert.ok(!log.some((l) => /allowUnauthenticated/.test(l)));
    } finally {
      await fx.close();
    }
  });
});
