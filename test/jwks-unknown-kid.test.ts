/**
 * Unknown `kid`s are a cheap failure (issuer `keyFetch`, src/identity/remote-key-set.ts):
 * against a key set we run and count on 127.0.0.1, 100 tokens with random
 * unknown kids cost a bounded number of fetches; with the IdP hung they fail
 * fast instead of each waiting out a fetch; a token with a known kid still
 * verifies throughout (positive control); and key rotation still works once
 * the cool-down has passed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startCrmHttp, type CrmHttpServer } from '../demo/crm/http.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { newSigningKey, signToken, startJwksServer, type JwksServer, type SigningKey } from './helpers/jwks-server.js';
import { INITIALIZE, postJson } from './helpers/raw-http.js';

const ISSUER = 'https://idp.unknown-kid.test';
const KEY_FETCH = { timeoutMs: 500, minRefetchSeconds: 1, unknownKidSeconds: 2 };

describe('unknown kids: bounded JWKS fetches, fast failures, rotation intact', () => {
  let crm: CrmHttpServer;
  let jwks: JwksServer;
  let fx: Fixture;
  let k1: SigningKey;
  let url: string;

  before(async () => {
    k1 = await newSigningKey('k1');
    jwks = await startJwksServer([k1]);
    crm = await startCrmHttp();
    fx = await startFixture({
      upstreams: { crm: { transport: 'streamable-http', url: crm.url } },
      userAuth: {
        issuers: [
          {
            issuer: ISSUER,
            jwksUri: jwks.url,
            algorithms: ['ES256'],
            userClaims: ['role', 'customers'],
            keyFetch: KEY_FETCH,
          },
        ],
      },
      // The configured keyFetch, not the fixture's zero cool-down.
      gateway: { verifier: {} },
    });
    url = fx.gateway.urlFor('crm');
  });
  after(async () => {
    jwks?.hang(false);
    await fx?.close();
    await crm?.close();
    await jwks?.close();
  });

  const token = (key: SigningKey, kid?: string) =>
    signToken(key, { iss: ISSUER, aud: url, sub: 'alice', client_id: 'agent' }, kid);
  const initialize = async (t: string) => {
    const started = performance.now();
    const r = await postJson(url, { 'x-api-key': fx.apiKey, authorization: `Bearer ${t}` }, INITIALIZE);
    return { status: r.status, ms: performance.now() - started };
  };
  /** `n` requests, `width` at a time. */
  async function flood(n: number, width: number, make: () => Promise<string>) {
    const results: { status: number; ms: number }[] = [];
    for (let i = 0; i < n; i += width)
      results.push(
        ...(await Promise.all(Array.from({ length: Math.min(width, n - i) }, async () => initialize(await make())))),
      );
    return results;
  }
  const randomKid = () => randomBytes(8).toString('hex');
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('100 random unknown kids cost a bounded number of fetches; a valid token verifies before and after', async () => {
    assert.equal((await initialize(await token(k1))).status, 200, 'positive control');
    assert.equal(jwks.fetches, 1);
    const stranger = await newSigningKey();
    const started = performance.now();
    const results = await flood(100, 10, () => token(stranger, randomKid()));
    const elapsedS = (performance.now() - started) / 1000;
    assert.deepEqual([...new Set(results.map((r) => r.status))], [401]);
    // At most one fetch per minRefetchSeconds (1 s) over the flood, plus one at its start.
    const bound = 1 + Math.ceil(elapsedS / KEY_FETCH.minRefetchSeconds);
    assert.ok(jwks.fetches - 1 <= bound, `${jwks.fetches - 1} fetches for 100 unknown kids in ${elapsedS} s`);
    const failures = await fx.gateway.runtime.audit.query({ kind: 'auth-failure', limit: 200 });
    // Failures that prove no one are recorded one by one up to a bound per source and interval (20 in 10 s), the rest
    // counted into one record at the interval's end (src/gateway/limits/auth-failures.ts): every one written says why.
    assert.ok(failures.length >= 20, `${failures.length} auth-failure records`);
    assert.ok(failures.every((f) => /unknown key/.test(f.reason ?? '')));
    const fetchesBefore = jwks.fetches;
    assert.equal((await initialize(await token(k1))).status, 200, 'a fresh token with the known kid');
    assert.equal(jwks.fetches, fetchesBefore, 'a known kid needs no fetch');
  });

  it('rotation: a newly published key is refused within the cool-down and accepted once it has passed', async () => {
    const k2 = await newSigningKey('k2');
    await sleep(1100);
    assert.equal((await initialize(await token(k2))).status, 401, 'not published yet');
    jwks.publish([k1, k2]);
    const fetches = jwks.fetches;
    assert.equal((await initialize(await token(k2))).status, 401, 'k2 is remembered as unknown for a while');
    assert.equal(jwks.fetches, fetches, 'and costs no fetch meanwhile');
    await sleep(KEY_FETCH.unknownKidSeconds * 1000 + 100);
    assert.equal((await initialize(await token(k2))).status, 200, 'after the cool-down the new key is fetched');
    assert.equal(jwks.fetches, fetches + 1);
    assert.equal((await initialize(await token(k1))).status, 200, 'the old key still verifies');
  });

  it('with the IdP hung, 100 unknown kids fail fast and cost few fetches; known keys keep working', async () => {
    await sleep(1100); // past the cool-down: the first unknown kid may fetch
    jwks.hang(true);
    const fetches = jwks.fetches;
    const stranger = await newSigningKey();
    const started = performance.now();
    const results = await flood(100, 10, () => token(stranger, randomKid()));
    const elapsedMs = performance.now() - started;
    assert.deepEqual([...new Set(results.map((r) => r.status))], [401]);
    const attempts = jwks.fetches - fetches;
    assert.ok(attempts >= 1 && attempts <= 1 + Math.ceil(elapsedMs / 1000), `${attempts} fetches in ${elapsedMs} ms`);
    // Each waits at most one fetch timeout (shared with the others in flight), never one per token.
    const slowest = Math.max(...results.map((r) => r.ms));
    assert.ok(slowest < KEY_FETCH.timeoutMs + 1000, `slowest refusal ${slowest} ms`);
    assert.ok(elapsedMs < 100 * KEY_FETCH.timeoutMs * 0.2, `100 refusals took ${elapsedMs} ms`);
    const failures = await fx.gateway.runtime.audit.query({ kind: 'auth-failure', limit: 100 });
    assert.ok(failures.some((f) => /issuer keys unavailable/.test(f.reason ?? '')));
    // Positive control: a fresh token with a kid already known needs no fetch, so the hung IdP does not matter.
    const known = await initialize(await token(k1));
    assert.equal(known.status, 200);
    assert.ok(known.ms < KEY_FETCH.timeoutMs, `known kid took ${known.ms} ms`);
  });
});
