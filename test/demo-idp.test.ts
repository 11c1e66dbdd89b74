import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { generateSigningJwks, startDevIdp, TokenRequestError, type DevClient, type DevIdp } from '../demo/idp/index.js';

const RESOURCE = 'http://127.0.0.1:8931/mcp';
const AGENT = { clientId: 'agent', clientSecret: 'agent-secret' };
const SERVICE = { clientId: 'service', clientSecret: 'service-secret' };
const ALICE = { username: 'alice', password: 'alice-pw' };

const users = [
  { sub: 'alice', password: 'alice-pw', claims: { role: 'rep', customers: ['c-100', 'c-101'] } },
  { sub: 'carol', password: 'carol-pw', claims: { role: 'manager' } },
];
const clients: DevClient[] = [
  { ...AGENT, grantTypes: ['password', 'client_credentials'], scope: 'mcp:tools crm:read' },
  { ...SERVICE, grantTypes: ['client_credentials'] },
];

/** Verifies as a resource server would: keys from the IdP's JWKS, exact issuer and audience, RFC 9068 typ. */
async function verify(idp: DevIdp, token: string, audience = RESOURCE) {
  const jwks = createRemoteJWKSet(new URL(idp.jwksUri));
  return jwtVerify(token, jwks, { issuer: idp.issuer, audience, typ: 'at+jwt' });
}

/** Asserts the promise is refused by the token endpoint with this OAuth error code. */
async function refused(p: Promise<unknown>, error: string, status = 400): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TokenRequestError, `expected TokenRequestError, got ${String(err)}`);
    assert.equal(err.error, error);
    assert.equal(err.status, status);
    return true;
  });
}

describe('dev IdP', () => {
  let idp: DevIdp;
  before(async () => {
    idp = await startDevIdp({ users, clients });
  });
  after(() => idp.close());

  test('discovery names the same issuer, token endpoint and JWKS the API reports', async () => {
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    const meta = (await res.json()) as Record<string, unknown>;
    assert.equal(meta.issuer, idp.issuer);
    assert.equal(meta.token_endpoint, idp.tokenEndpoint);
    assert.equal(meta.jwks_uri, idp.jwksUri);
    assert.deepEqual(meta.grant_types_supported, ['client_credentials', 'password']);

    const published = (await (await fetch(idp.jwksUri)).json()) as { keys: Array<Record<string, unknown>> };
    assert.deepEqual(
      published.keys.map((k) => k.kid),
      idp.publicJwks.keys.map((k) => (k as { kid: string }).kid),
    );
    for (const k of [...published.keys, ...(idp.publicJwks.keys as Array<Record<string, unknown>>)]) {
      assert.equal(k.d, undefined, 'no private key material is published');
    }
  });

  test('a password token is an at+jwt for the user, audience-bound, with the user claims', async () => {
    const { accessToken, expiresIn } = await idp.passwordToken({
      ...AGENT,
      ...ALICE,
      resource: RESOURCE,
      scope: 'mcp:tools crm:read',
    });
    assert.equal(expiresIn, 7200);
    const { payload, protectedHeader } = await verify(idp, accessToken);
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(protectedHeader.alg, 'ES256');
    assert.ok(idp.publicJwks.keys.some((k) => (k as { kid: string }).kid === protectedHeader.kid));
    assert.equal(payload.iss, idp.issuer);
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.aud, RESOURCE);
    assert.equal(payload.client_id, 'agent');
    assert.equal(payload.scope, 'mcp:tools crm:read');
    assert.equal(payload.role, 'rep');
    assert.deepEqual(payload.customers, ['c-100', 'c-101']);
    assert.equal(typeof payload.jti, 'string');
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 7200);

    // The same token is refused by a verifier that expects another resource.
    await assert.rejects(verify(idp, accessToken, 'http://127.0.0.1:8931/other'), {
      code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    });
  });

  test('scope: omitted means all the client may have here; unknown dropped; not allowed for the client refused', async () => {
    const all = await idp.passwordToken({ ...AGENT, ...ALICE, resource: RESOURCE });
    assert.equal(decodeJwt(all.accessToken).scope, 'mcp:tools crm:read');
    const some = await idp.passwordToken({ ...AGENT, ...ALICE, resource: RESOURCE, scope: 'mcp:tools nonsense' });
    assert.equal(decodeJwt(some.accessToken).scope, 'mcp:tools');
    await refused(idp.passwordToken({ ...AGENT, ...ALICE, resource: RESOURCE, scope: 'crm:export' }), 'invalid_scope');
  });

  test('a wrong password or unknown user is invalid_grant; the right password succeeds', async () => {
    await refused(
      idp.passwordToken({ ...AGENT, username: 'alice', password: 'carol-pw', resource: RESOURCE }),
      'invalid_grant',
    );
    await refused(
      idp.passwordToken({ ...AGENT, username: 'mallory', password: 'alice-pw', resource: RESOURCE }),
      'invalid_grant',
    );
    const ok = await idp.passwordToken({ ...AGENT, username: 'carol', password: 'carol-pw', resource: RESOURCE });
    const { payload } = await verify(idp, ok.accessToken);
    assert.equal(payload.sub, 'carol');
    assert.equal(payload.role, 'manager');
  });

  test('the client must authenticate and be allowed the password grant', async () => {
    await refused(
      idp.passwordToken({ ...SERVICE, ...ALICE, resource: RESOURCE }),
      'invalid_request', // oidc-provider's answer for a grant type the client is not registered for
    );
    await refused(
      idp.passwordToken({ ...AGENT, clientSecret: 'wrong', ...ALICE, resource: RESOURCE }),
      'invalid_client',
      401,
    );

    const noAuth = await tokenPost({ grant_type: 'password', client_id: 'agent', ...ALICE, resource: RESOURCE });
    assert.equal(noAuth.status, 401);
    assert.equal(noAuth.body.error, 'invalid_client');

    // client_secret_post is accepted as well as client_secret_basic.
    const post = await tokenPost({
      grant_type: 'password',
      client_id: 'agent',
      client_secret: 'agent-secret',
      ...ALICE,
      resource: RESOURCE,
    });
    assert.equal(post.status, 200);
    assert.equal(decodeJwt(String(post.body.access_token)).sub, 'alice');
  });

  test('the resource is required, single, and by default on loopback only', async () => {
    const missing = await tokenPost({
      grant_type: 'password',
      client_id: 'agent',
      client_secret: 'agent-secret',
      ...ALICE,
    });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error, 'invalid_request');
    await refused(idp.passwordToken({ ...AGENT, ...ALICE, resource: 'https://crm.example.com/mcp' }), 'invalid_target');
    await refused(
      idp.clientCredentialsToken({ ...SERVICE, resource: 'https://crm.example.com/mcp' }),
      'invalid_target',
    );

    const body = new URLSearchParams({
      grant_type: 'password',
      client_id: 'agent',
      client_secret: 'agent-secret',
      ...ALICE,
    });
    body.append('resource', RESOURCE);
    body.append('resource', 'http://127.0.0.1:8931/other');
    const twice = await fetch(idp.tokenEndpoint, { method: 'POST', body });
    assert.equal(twice.status, 400);
  });

  test("ttl only shortens a password token's life (at least 1 s, never beyond the configured TTL); nonsense is invalid_request", async () => {
    const short = await idp.passwordToken({ ...AGENT, ...ALICE, resource: RESOURCE, ttlSeconds: 4 });
    assert.equal(short.expiresIn, 4);
    const { payload } = await verify(idp, short.accessToken);
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 4);
    assert.equal(payload.sub, 'alice');

    const asked = await idp.passwordToken({ ...AGENT, ...ALICE, resource: RESOURCE, ttlSeconds: 999_999 });
    assert.equal(asked.expiresIn, 7200, 'a longer ttl is capped at the configured lifetime');
    const capped = decodeJwt(asked.accessToken);
    assert.equal((capped.exp ?? 0) - (capped.iat ?? 0), 7200);

    assert.equal((await idp.passwordToken({ ...AGENT, ...ALICE, resource: RESOURCE, ttlSeconds: 1 })).expiresIn, 1);
    for (const ttl of ['0', '-5', '2.5', 'soon', '1e3']) {
      const res = await tokenPost({
        grant_type: 'password',
        client_id: 'agent',
        client_secret: 'agent-secret',
        ...ALICE,
        resource: RESOURCE,
        ttl,
      });
      assert.equal(res.status, 400, `ttl=${ttl}`);
      assert.equal(res.body.error, 'invalid_request');
      assert.equal(res.body.access_token, undefined);
    }
  });

  test('client_credentials yields a token whose sub is the client and has no user claims', async () => {
    const { accessToken, expiresIn } = await idp.clientCredentialsToken({
      ...SERVICE,
      resource: RESOURCE,
      scope: 'crm:read',
    });
    assert.equal(expiresIn, 7200);
    const { payload, protectedHeader } = await verify(idp, accessToken);
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.sub, 'service');
    assert.equal(payload.client_id, 'service');
    assert.equal(payload.aud, RESOURCE);
    assert.equal(payload.scope, 'crm:read');
    assert.equal(payload.role, undefined);
  });

  async function tokenPost(params: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(idp.tokenEndpoint, { method: 'POST', body: new URLSearchParams(params) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }
});

test('accessTokenTtlSeconds sets exp - iat and expires_in for both grants', async () => {
  const idp = await startDevIdp({ users, clients, accessTokenTtlSeconds: 120 });
  try {
    const user = await idp.passwordToken({ ...AGENT, ...ALICE, resource: RESOURCE });
    const svc = await idp.clientCredentialsToken({ ...SERVICE, resource: RESOURCE });
    for (const { accessToken, expiresIn } of [user, svc]) {
      const { payload } = await verify(idp, accessToken);
      assert.equal(expiresIn, 120);
      assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 120);
    }
  } finally {
    await idp.close();
  }
});

test('a restart on the same port with generateSigningJwks() publishes a new kid', async () => {
  const first = await startDevIdp({ users, clients });
  const oldKid = kidOf(first);
  const oldToken = (await first.passwordToken({ ...AGENT, ...ALICE, resource: RESOURCE })).accessToken;
  const port = Number(new URL(first.issuer).port);
  await first.close();

  const second = await startDevIdp({ users, clients, port, jwks: await generateSigningJwks() });
  try {
    assert.equal(second.issuer, first.issuer, 'close() released the port');
    const published = (await (await fetch(second.jwksUri)).json()) as { keys: Array<{ kid: string }> };
    assert.deepEqual(
      published.keys.map((k) => k.kid),
      [kidOf(second)],
    );
    assert.notEqual(kidOf(second), oldKid);

    const fresh = await second.passwordToken({ ...AGENT, ...ALICE, resource: RESOURCE });
    assert.equal((await verify(second, fresh.accessToken)).protectedHeader.kid, kidOf(second));
    // A token signed before the rotation no longer verifies against the issuer's keys.
    await assert.rejects(verify(second, oldToken), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
  } finally {
    await second.close();
  }
});

test('it refuses to listen anywhere but loopback, and honours acceptResource', async () => {
  await assert.rejects(startDevIdp({ host: '0.0.0.0', users, clients }), /loopback/);
  const remote = 'https://crm.example.com/mcp';
  const idp = await startDevIdp({ users, clients, acceptResource: (r) => r === remote });
  try {
    const { accessToken } = await idp.passwordToken({ ...AGENT, ...ALICE, resource: remote });
    assert.equal((await verify(idp, accessToken, remote)).payload.aud, remote);
    await refused(idp.passwordToken({ ...AGENT, ...ALICE, resource: RESOURCE }), 'invalid_target');
  } finally {
    await idp.close();
  }
});

function kidOf(idp: DevIdp): string {
  const [key] = idp.publicJwks.keys as Array<{ kid: string }>;
  assert.ok(key);
  return key.kid;
}
