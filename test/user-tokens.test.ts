import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWTPayload } from 'jose';
import { generateSigningJwks, startDevIdp, type DevIdp } from '../demo/idp/index.js';
import { AGENT, CRM_STDIO, PASSWORD, startFixture, type Fixture } from './helpers/fixture.js';
import { connectStreamable, toolJson } from './helpers/clients.js';
import {
  assertChallenge,
  assertInitializes,
  assertNoSecrets,
  initialize,
  metadataUrlOf,
  rawRequest,
  sleep,
} from './helpers/auth-http.js';
import { freePort } from './helpers/free-port.js';
import { fixtureIdpOptions, kidOf, publicOf, rsaSigningJwk, startOtherIdp } from './helpers/auth-idp.js';
import {
  claimsOf,
  flipSignatureByte,
  headerOf,
  hmacSigned,
  freshClaims,
  nowSeconds,
  publicPem,
  signWith,
  unsigned,
  without,
  type Header,
} from './helpers/auth-tokens.js';

/**
 * Forged and invalid user tokens against a real gateway and a real dev IdP
 * (docs/architecture.md §2 step 3, review check BND-04). The IdP signs with a key this test
 * generated, so the test can also mint tokens whose signature is valid and
 * only one claim is wrong — the positive controls show such self-signed
 * tokens pass when every claim is right.
 */

const INVALID = 'User token is invalid';

async function freshEs256(): Promise<Record<string, unknown>> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'ES256' };
}

/** Asserts a 401 invalid_token refusal that leaks nothing, and that the audit log says why. */
async function assertRefused(
  fx: Fixture,
  token: string,
  auditReason: RegExp,
  o: { upstream?: string } = {},
): Promise<void> {
  const url = fx.gateway.urlFor(o.upstream ?? 'crm');
  const res = await initialize(url, { 'x-api-key': fx.apiKey, authorization: `Bearer ${token}` });
  assertChallenge(res, {
    error: 'invalid_token',
    metadataUrl: metadataUrlOf(fx.gateway, o.upstream),
    message: INVALID,
  });
  assertNoSecrets(res, [token, fx.apiKey]);
  const [last] = await fx.gateway.runtime.audit.query({ kind: 'auth-failure', limit: 1 });
  assert.ok(last, 'the refusal is audited');
  assert.match(last.reason ?? '', auditReason);
  assert.ok(!JSON.stringify(last).includes(token), 'the audit record does not carry the token');
}

describe('user tokens: forged and invalid tokens are refused with 401 invalid_token', () => {
  let fx: Fixture;
  let untrusted: DevIdp;
  let signing: Record<string, unknown>;
  let rsa: Record<string, unknown>;
  let untrustedKey: Record<string, unknown>;
  let real: string;
  let base: JWTPayload;
  let header: Header;

  before(async () => {
    signing = (await generateSigningJwks()).keys[0] as Record<string, unknown>;
    // Published by the IdP, valid, but RS256 is not on this issuer's allow-list.
    rsa = await rsaSigningJwk();
    untrustedKey = (await generateSigningJwks()).keys[0] as Record<string, unknown>;
    untrusted = await startOtherIdp({ jwks: { keys: [untrustedKey] } });
    const port = await freePort();
    fx = await startFixture({
      idp: { port, jwks: { keys: [signing, rsa] } },
      userAuth: {
        issuers: [
          {
            issuer: `http://127.0.0.1:${port}`,
            algorithms: ['ES256'],
            typ: ['at+jwt'],
            userClaims: ['role', 'customers'],
          },
        ],
      },
      upstreams: { crm: CRM_STDIO, other: CRM_STDIO },
    });
    real = await fx.userToken('alice');
    base = claimsOf(real);
    header = headerOf(real);
  });
  after(async () => {
    await fx?.close();
    await untrusted?.close();
  });

  /** Sound claims, freshly timed, as the IdP would issue them. */
  const good = (over: JWTPayload = {}): JWTPayload => freshClaims(base, over);
  const headers = (token: string) => ({ 'x-api-key': fx.apiKey, authorization: `Bearer ${token}` });

  it("the IdP token is the one the gateway expects: ES256, at+jwt, the issuer's kid, aud = the resource", () => {
    assert.deepEqual(
      { alg: header.alg, typ: header.typ, kid: header.kid },
      { alg: 'ES256', typ: 'at+jwt', kid: kidOf(signing) },
    );
    assert.equal(base.iss, fx.idp.issuer);
    assert.equal(base.aud, fx.gateway.urlFor('crm'));
    assert.equal(base.sub, 'alice');
    assert.equal(base.client_id, AGENT.clientId);
  });

  const positives: Array<{ name: string; token: () => Promise<string>; upstream?: string }> = [
    { name: "the IdP's own token", token: async () => real },
    {
      name: "a token signed with the issuer's key and sound claims (control for every self-signed case)",
      token: () => signWith(signing, header, good()),
    },
    {
      name: 'typ application/at+jwt (the long form of at+jwt)',
      token: () => signWith(signing, { ...header, typ: 'application/at+jwt' }, good()),
    },
    {
      name: 'nbf 10 s ahead, within the 30 s clock skew',
      token: () => signWith(signing, header, good({ nbf: nowSeconds() + 10 })),
    },
    {
      name: 'a token for the other upstream, on that upstream',
      token: () => fx.userToken('alice', { upstream: 'other' }),
      upstream: 'other',
    },
  ];
  for (const p of positives) {
    it(`accepts (positive control): ${p.name}`, async () => {
      await assertInitializes(fx.gateway.urlFor(p.upstream ?? 'crm'), headers(await p.token()));
    });
  }

  it('accepts the IdP token through the official SDK client and decides for alice (positive control)', async () => {
    const client = await connectStreamable(fx.gateway.urlFor('crm'), headers(real));
    try {
      const res = await client.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } });
      assert.equal(toolJson(res).owner, 'alice');
    } finally {
      await client.close();
    }
  });

  const negatives: Array<{ name: string; token: () => Promise<string> | string; reason: RegExp; upstream?: string }> = [
    { name: 'alg none, no signature', token: () => unsigned(header, good()), reason: /algorithm not allowed|alg/i },
    {
      name: 'alg none without a kid',
      token: () => unsigned({ typ: 'at+jwt' }, good()),
      reason: /algorithm not allowed|alg/i,
    },
    {
      name: "HS256 keyed with the issuer's public key PEM (key confusion)",
      token: () => hmacSigned(publicPem(publicOf(signing)), header, good()),
      reason: /algorithm not allowed/,
    },
    {
      name: "HS256 keyed with the issuer's public JWK JSON",
      token: () => hmacSigned(JSON.stringify(publicOf(signing)), header, good()),
      reason: /algorithm not allowed/,
    },
    {
      name: 'RS256 with a key the issuer publishes but whose algorithm is not allow-listed',
      token: () => signWith(rsa, { typ: 'at+jwt', kid: kidOf(rsa), alg: 'RS256' }, good()),
      reason: /algorithm not allowed/,
    },
    {
      name: 'unknown kid (signed by a fresh key)',
      token: async () => {
        const k = await freshEs256();
        return signWith(k, { ...header, kid: kidOf(k) }, good());
      },
      reason: /unknown key/,
    },
    {
      name: "a fresh key claiming the issuer's kid",
      token: async () => signWith(await freshEs256(), header, good()),
      reason: /bad signature/,
    },
    {
      name: "the IdP's token with one signature byte flipped",
      token: () => flipSignatureByte(real),
      reason: /bad signature/,
    },
    {
      name: "the IdP's token with its payload altered (sub: carol)",
      token: () => {
        const [h, , s] = real.split('.');
        return `${h}.${Buffer.from(JSON.stringify({ ...base, sub: 'carol' })).toString('base64url')}.${s}`;
      },
      reason: /bad signature/,
    },
    {
      name: 'expired an hour ago (valid signature)',
      token: () => signWith(signing, header, good({ iat: nowSeconds() - 7200, exp: nowSeconds() - 3600 })),
      reason: /expired/,
    },
    {
      name: 'not yet valid: nbf an hour ahead (valid signature)',
      token: () => signWith(signing, header, good({ nbf: nowSeconds() + 3600 })),
      reason: /claim nbf/,
    },
    {
      name: 'wrong issuer: a real token from an untrusted IdP',
      token: async () =>
        (
          await untrusted.passwordToken({
            ...AGENT,
            username: 'alice',
            password: PASSWORD,
            resource: fx.gateway.urlFor('crm'),
          })
        ).accessToken,
      reason: /untrusted issuer/,
    },
    {
      name: "names the trusted issuer, signed by the untrusted IdP's key (its kid)",
      token: () => signWith(untrustedKey, { ...header, kid: kidOf(untrustedKey) }, good()),
      reason: /unknown key/,
    },
    {
      name: "names the trusted issuer, signed by the untrusted IdP's key (trusted kid)",
      token: () => signWith(untrustedKey, header, good()),
      reason: /bad signature/,
    },
    {
      name: 'issuer with a trailing slash (iss must match exactly)',
      token: () => signWith(signing, header, good({ iss: `${base.iss}/` })),
      reason: /untrusted issuer/,
    },
    {
      name: 'no iss claim',
      token: () => signWith(signing, header, without(good(), 'iss')),
      reason: /untrusted issuer/,
    },
    {
      name: 'wrong audience: a token for another resource',
      token: () => fx.userToken('alice', { resource: 'http://127.0.0.1:1/mcp/other' }),
      reason: /claim aud/,
    },
    {
      name: 'wrong audience: a token for another upstream of this gateway',
      token: () => fx.userToken('alice', { upstream: 'other' }),
      reason: /claim aud/,
    },
    {
      name: 'audience-less token',
      token: () => signWith(signing, header, without(good(), 'aud')),
      reason: /claim aud/,
    },
    { name: 'no sub', token: () => signWith(signing, header, without(good(), 'sub')), reason: /claim sub/ },
    { name: 'empty sub', token: () => signWith(signing, header, good({ sub: '' })), reason: /no subject/ },
    { name: 'no exp', token: () => signWith(signing, header, without(good(), 'exp')), reason: /claim exp/ },
    {
      name: 'typ JWT where the issuer accepts only at+jwt',
      token: () => signWith(signing, { ...header, typ: 'JWT' }, good()),
      reason: /typ not accepted/,
    },
    {
      name: 'no typ where the issuer requires at+jwt',
      token: () => signWith(signing, { alg: 'ES256', kid: kidOf(signing) }, good()),
      reason: /typ not accepted/,
    },
    { name: 'not a JWT at all', token: () => 'not-a-jwt', reason: /malformed/ },
    { name: 'three garbage segments', token: () => 'aaaa.bbbb.cccc', reason: /malformed/ },
  ];
  for (const n of negatives) {
    it(`refuses: ${n.name}`, async () => {
      await assertRefused(fx, await n.token(), n.reason, { upstream: n.upstream });
    });
  }

  const badHeaders: Array<{ name: string; authorization: string }> = [
    { name: 'Basic scheme', authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` },
    { name: 'Bearer with no token', authorization: 'Bearer ' },
    { name: 'two tokens in one header', authorization: 'Bearer a.b.c d.e.f' },
  ];
  for (const b of badHeaders) {
    it(`refuses a malformed Authorization header: ${b.name}`, async () => {
      const res = await initialize(fx.gateway.urlFor('crm'), {
        'x-api-key': fx.apiKey,
        authorization: b.authorization,
      });
      assertChallenge(res, { error: 'invalid_token', metadataUrl: metadataUrlOf(fx.gateway), message: INVALID });
      assertNoSecrets(res, [fx.apiKey]);
    });
  }

  it('a valid token in the query string is not accepted (only the Authorization header counts)', async () => {
    const url = fx.gateway.urlFor('crm');
    for (const param of ['access_token', 'token', 'authorization']) {
      const res = await initialize(`${url}?${param}=${real}`, { 'x-api-key': fx.apiKey });
      // No token was presented where tokens count: a plain challenge, no error param.
      assertChallenge(res, { metadataUrl: metadataUrlOf(fx.gateway), message: 'User authentication required' });
      assertNoSecrets(res, [real, fx.apiKey]);
    }
    await assertInitializes(url, headers(real));
  });
});

describe('user tokens: expiry with real IdP tokens', () => {
  let fx: Fixture;
  before(async () => {
    const port = await freePort();
    fx = await startFixture({
      idp: { port, accessTokenTtlSeconds: 3 },
      userAuth: {
        issuers: [
          {
            issuer: `http://127.0.0.1:${port}`,
            algorithms: ['ES256'],
            clockSkewSeconds: 0,
            userClaims: ['role', 'customers'],
          },
        ],
      },
    });
  });
  after(async () => fx?.close());

  it('a token accepted while valid is refused once expired, although the gateway has it cached', async () => {
    const token = await fx.userToken('alice');
    const { exp } = claimsOf(token);
    await assertInitializes(fx.gateway.urlFor('crm'), { 'x-api-key': fx.apiKey, authorization: `Bearer ${token}` });
    await sleep(exp! * 1000 - Date.now() + 1100);
    await assertRefused(fx, token, /expired/);
    // A fresh token from the same IdP works (positive control after the refusal).
    await assertInitializes(fx.gateway.urlFor('crm'), await fx.headersFor('alice'));
  });
});

describe('user tokens: scopes', () => {
  let fx: Fixture;
  const REQUIRED = 'mcp:tools crm:export';
  before(async () => {
    fx = await startFixture({
      idp: fixtureIdpOptions({ agentScope: 'mcp:tools crm:read crm:write crm:export' }),
      userAuth: { scopes: ['mcp:tools', 'crm:export'] },
    });
  });
  after(async () => fx?.close());

  it('metadata lists the required scopes', async () => {
    const res = await rawRequest(metadataUrlOf(fx.gateway));
    assert.equal(res.status, 200);
    assert.deepEqual((res.json as { scopes_supported: string[] }).scopes_supported, ['mcp:tools', 'crm:export']);
  });

  for (const scope of ['mcp:tools crm:read', 'crm:export', 'mcp:tools']) {
    it(`a token with only "${scope}" gets 403 insufficient_scope naming every required scope`, async () => {
      const token = await fx.userToken('alice', { scope });
      assert.equal(claimsOf(token).scope, scope);
      const res = await initialize(fx.gateway.urlFor('crm'), {
        'x-api-key': fx.apiKey,
        authorization: `Bearer ${token}`,
      });
      assertChallenge(res, {
        status: 403,
        error: 'insufficient_scope',
        scope: REQUIRED,
        metadataUrl: metadataUrlOf(fx.gateway),
        message: 'Insufficient scope',
      });
      assertNoSecrets(res, [token, fx.apiKey]);
    });
  }

  it('a token with the required scopes is accepted (positive control)', async () => {
    const token = await fx.userToken('alice', { scope: 'mcp:tools crm:export crm:read' });
    await assertInitializes(fx.gateway.urlFor('crm'), { 'x-api-key': fx.apiKey, authorization: `Bearer ${token}` });
  });

  it('401 challenges carry the required scopes too', async () => {
    const none = await initialize(fx.gateway.urlFor('crm'), { 'x-api-key': fx.apiKey });
    assertChallenge(none, { scope: REQUIRED, metadataUrl: metadataUrlOf(fx.gateway) });
    const bad = await initialize(fx.gateway.urlFor('crm'), {
      'x-api-key': fx.apiKey,
      authorization: 'Bearer not-a-jwt',
    });
    assertChallenge(bad, { error: 'invalid_token', scope: REQUIRED, metadataUrl: metadataUrlOf(fx.gateway) });
  });
});

describe('user tokens: a gateway trusting two issuers never mixes them up (Envoy AI Gateway #2641)', () => {
  let fx: Fixture;
  let second: DevIdp;
  let secondKey: Record<string, unknown>;
  before(async () => {
    secondKey = (await generateSigningJwks()).keys[0] as Record<string, unknown>;
    second = await startOtherIdp({ jwks: { keys: [secondKey] } });
    const port = await freePort();
    fx = await startFixture({
      idp: { port },
      userAuth: {
        issuers: [
          { issuer: `http://127.0.0.1:${port}`, algorithms: ['ES256'], userClaims: ['role', 'customers'] },
          { issuer: second.issuer, algorithms: ['ES256'], userClaims: ['role', 'customers'] },
        ],
      },
    });
  });
  after(async () => {
    await fx?.close();
    await second?.close();
  });

  const secondToken = async () =>
    (
      await second.passwordToken({
        ...AGENT,
        username: 'alice',
        password: PASSWORD,
        resource: fx.gateway.urlFor('crm'),
      })
    ).accessToken;

  it('tokens of both issuers are accepted (positive controls)', async () => {
    await assertInitializes(fx.gateway.urlFor('crm'), await fx.headersFor('alice'));
    await assertInitializes(fx.gateway.urlFor('crm'), {
      'x-api-key': fx.apiKey,
      authorization: `Bearer ${await secondToken()}`,
    });
  });

  it("a token signed by the second issuer's key but naming the first issuer is refused", async () => {
    const t = await secondToken();
    const forged = await signWith(secondKey, headerOf(t), { ...claimsOf(t), iss: fx.idp.issuer });
    await assertRefused(fx, forged, /unknown key/);
  });
});

describe('user tokens: key rotation at the IdP', () => {
  let fx: Fixture;
  let rotated: DevIdp | undefined;
  before(async () => {
    fx = await startFixture({ idp: { jwks: await generateSigningJwks() } });
  });
  after(async () => {
    await fx?.close();
    await rotated?.close();
  });

  it('after a restart with a new key, new tokens are accepted (JWKS refetched on an unknown kid) and old-key tokens are refused', async () => {
    const url = fx.gateway.urlFor('crm');
    const before1 = await fx.userToken('alice');
    const before2 = await fx.userToken('alice');
    const oldKid = headerOf(before1).kid;
    await assertInitializes(url, { 'x-api-key': fx.apiKey, authorization: `Bearer ${before1}` });

    const port = Number(new URL(fx.idp.issuer).port);
    await fx.idp.close();
    rotated = await startDevIdp({ ...fixtureIdpOptions(), port, jwks: await generateSigningJwks() });
    assert.equal(rotated.issuer, fx.idp.issuer);

    const after1 = await fx.userToken('alice'); // same token endpoint URL: the rotated IdP answers
    assert.notEqual(headerOf(after1).kid, oldKid);
    await assertInitializes(url, { 'x-api-key': fx.apiKey, authorization: `Bearer ${after1}` });
    // Never verified before the rotation, signed by a key the issuer no longer publishes.
    await assertRefused(fx, before2, /unknown key/);
  });
});

describe('user tokens: the IdP is down at first verification', () => {
  let fx: Fixture;
  let again: DevIdp | undefined;
  let jwks: { keys: object[] };
  before(async () => {
    jwks = await generateSigningJwks();
    fx = await startFixture({ idp: { jwks } });
  });
  after(async () => {
    await fx?.close();
    await again?.close();
  });

  it('answers 401 (not 500) while keys cannot be fetched, keeps serving, and accepts the token once the IdP is back', async () => {
    const url = fx.gateway.urlFor('crm');
    const token = await fx.userToken('alice');
    const port = Number(new URL(fx.idp.issuer).port);
    await fx.idp.close();

    for (let i = 0; i < 2; i++) await assertRefused(fx, token, /issuer keys unavailable/);
    const health = await rawRequest(`${fx.gateway.baseUrl}/healthz`);
    assert.equal(health.status, 200);

    again = await startDevIdp({ ...fixtureIdpOptions(), port, jwks });
    await assertInitializes(url, { 'x-api-key': fx.apiKey, authorization: `Bearer ${token}` });
  });
});
