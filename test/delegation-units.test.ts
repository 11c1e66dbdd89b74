/**
 * Units of the delegation layer: the credential cache (pure: expiry with its
 * renewal margin, single flight, failures not cached, bounded, keys that
 * cannot collide across users), the inbound delegation rule (`delegatedTo`),
 * and the token-exchange strategy's refusals — which never carry a token,
 * even when the token endpoint echoes one back.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CredentialCache, credentialKey } from '../src/delegation/credential-cache.js';
import { rememberSubjectToken } from '../src/delegation/subject-token.js';
import { TokenExchangeStrategy } from '../src/delegation/token-exchange.js';
import { BehalfError } from '../src/errors.js';
import { delegatedTo } from '../src/identity/authenticator.js';
import type { Principal } from '../src/identity/principal.js';

interface Cred {
  id: string;
  expiresAt?: number;
}

/** A controllable clock (epoch seconds) and a fetch that counts its calls. */
function harness(o: { skew?: number; max?: number } = {}) {
  const clock = { now: 1000 };
  const cache = new CredentialCache<Cred>({
    refreshSkewSeconds: o.skew ?? 30,
    maxEntries: o.max,
    now: () => clock.now,
  });
  let calls = 0;
  const fetchOf = (id: string, lifetime?: number) => async (): Promise<Cred> => {
    calls++;
    return { id: `${id}#${calls}`, ...(lifetime === undefined ? {} : { expiresAt: clock.now + lifetime }) };
  };
  return { clock, cache, fetchOf, calls: () => calls };
}

describe('CredentialCache', () => {
  it('serves an entry until expiresAt minus the skew, then fetches anew', async () => {
    const { clock, cache, fetchOf, calls } = harness({ skew: 30 });
    const k = credentialKey('iss', 'alice', 'aud', 'crm:read');
    assert.equal((await cache.get(k, fetchOf('a', 300))).id, 'a#1');
    clock.now += 269;
    assert.equal((await cache.get(k, fetchOf('a', 300))).id, 'a#1');
    clock.now += 1; // 270 s: within 30 s of expiry
    assert.equal((await cache.get(k, fetchOf('a', 300))).id, 'a#2');
    assert.equal(calls(), 2);
  });

  it('a credential shorter-lived than twice the skew is still reused for half its lifetime', async () => {
    const { clock, cache, fetchOf } = harness({ skew: 30 });
    const k = credentialKey('k');
    assert.equal((await cache.get(k, fetchOf('a', 20))).id, 'a#1');
    clock.now += 9.9;
    assert.equal((await cache.get(k, fetchOf('a', 20))).id, 'a#1');
    clock.now += 0.1;
    assert.equal((await cache.get(k, fetchOf('a', 20))).id, 'a#2');
  });

  it('with no skew an entry is served until the second it expires, never after', async () => {
    const { clock, cache, fetchOf } = harness({ skew: 0 });
    const k = credentialKey('k');
    await cache.get(k, fetchOf('a', 10));
    clock.now += 9.999;
    assert.equal((await cache.get(k, fetchOf('a', 10))).id, 'a#1');
    clock.now += 0.001;
    assert.equal((await cache.get(k, fetchOf('a', 10))).id, 'a#2');
  });

  it('a credential without expiry stays until evicted; one already stale on arrival is returned but not kept', async () => {
    const { clock, cache, fetchOf, calls } = harness({ skew: 30 });
    await cache.get('forever', fetchOf('f'));
    clock.now += 1e6;
    assert.equal((await cache.get('forever', fetchOf('f'))).id, 'f#1');
    assert.equal((await cache.get('stale', async () => ({ id: 'old', expiresAt: clock.now - 1 }))).id, 'old');
    assert.equal(cache.size, 1);
    assert.equal(calls(), 1);
  });

  it('single flight: concurrent requests for one key share one fetch; other keys fetch on their own', async () => {
    const { cache } = harness();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let n = 0;
    const slow = (id: string) => async (): Promise<Cred> => {
      n++;
      await gate;
      return { id, expiresAt: 5000 };
    };
    const alice = Array.from({ length: 25 }, () => cache.get(credentialKey('iss', 'alice'), slow('alice')));
    const bob = Array.from({ length: 25 }, () => cache.get(credentialKey('iss', 'bob'), slow('bob')));
    await new Promise((r) => setImmediate(r));
    assert.equal(n, 2, 'one fetch per key while in flight');
    release();
    assert.deepEqual(new Set((await Promise.all(alice)).map((c) => c.id)), new Set(['alice']));
    assert.deepEqual(new Set((await Promise.all(bob)).map((c) => c.id)), new Set(['bob']));
    // Once settled, the entry serves on its own: no further fetch.
    assert.equal((await cache.get(credentialKey('iss', 'alice'), slow('x'))).id, 'alice');
    assert.equal(n, 2);
  });

  it('a failed fetch is not cached: every waiter gets the error, the next request tries again', async () => {
    const { cache } = harness();
    let n = 0;
    const failing = async (): Promise<Cred> => {
      n++;
      await new Promise((r) => setImmediate(r));
      throw new Error('idp down');
    };
    const results = await Promise.allSettled([
      cache.get('k', failing),
      cache.get('k', failing),
      cache.get('k', failing),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    );
    assert.equal(n, 1);
    assert.equal(cache.size, 0);
    assert.equal((await cache.get('k', async () => ({ id: 'ok', expiresAt: 5000 }))).id, 'ok');
    // A fetch that throws synchronously leaves nothing behind either.
    const sync = (): Promise<Cred> => {
      throw new Error('sync');
    };
    await assert.rejects(cache.get('s', sync), /sync/);
    assert.equal((await cache.get('s', async () => ({ id: 'after', expiresAt: 5000 }))).id, 'after');
  });

  it('bounded: past maxEntries the least recently used entry goes', async () => {
    const { cache, fetchOf } = harness({ max: 3 });
    for (const k of ['a', 'b', 'c']) await cache.get(k, fetchOf(k, 300));
    await cache.get('a', fetchOf('a', 300)); // a is now the most recent
    await cache.get('d', fetchOf('d', 300)); // evicts b
    assert.equal(cache.size, 3);
    assert.equal((await cache.get('a', fetchOf('a', 300))).id, 'a#1');
    assert.equal((await cache.get('b', fetchOf('b', 300))).id, 'b#5', 'b was evicted and fetched again');
    cache.delete('b');
    cache.clear();
    assert.equal(cache.size, 0);
  });

  it('keys are tuples: no choice of separator in a subject makes two users collide', () => {
    assert.notEqual(credentialKey('iss', 'alice bob', 'aud'), credentialKey('iss', 'alice', 'bob aud'));
    assert.notEqual(credentialKey('iss', 'a","b'), credentialKey('iss', 'a', 'b'));
    assert.notEqual(credentialKey('https://idp-a', 'alice'), credentialKey('https://idp-b', 'alice'));
  });
});

describe('delegatedTo (inbound delegation check)', () => {
  const agent = new Set(['agent']);
  const cases: Array<[string, Record<string, unknown>, boolean]> = [
    ['client_id names the client', { client_id: 'agent' }, true],
    ['azp names the client', { azp: 'agent' }, true],
    ['client_id names another', { client_id: 'other' }, false],
    ['no client_id, no act', {}, false],
    ['act.sub names the client', { client_id: 'agent', act: { sub: 'agent' } }, true],
    [
      'act.sub names the client, client_id another: not consistent',
      { client_id: 'idp-app', act: { sub: 'agent' } },
      false,
    ],
    ['act.sub alone, no client_id or azp', { act: { sub: 'agent' } }, false],
    ['act.sub names another though client_id matches', { client_id: 'agent', act: { sub: 'other' } }, false],
    [
      'nested act: the current actor counts',
      { client_id: 'agent', act: { sub: 'agent', act: { sub: 'other' } } },
      true,
    ],
    ['act without sub', { client_id: 'agent', act: {} }, false],
    ['act not an object', { client_id: 'agent', act: 'agent' }, false],
    ['may_act.sub names the client', { client_id: 'agent', may_act: { sub: 'agent' } }, true],
    ['may_act.client_id names the client', { client_id: 'agent', may_act: { client_id: 'agent' } }, true],
    ['may_act names another', { client_id: 'agent', may_act: { sub: 'other' } }, false],
    ['may_act malformed', { client_id: 'agent', may_act: 'agent' }, false],
  ];
  for (const [name, payload, ok] of cases) {
    it(`${ok ? 'accepts' : 'refuses'}: ${name}`, () => assert.equal(delegatedTo(payload, agent), ok));
  }
});

describe('TokenExchangeStrategy refusals', () => {
  const SECRET_TOKEN = `eyJhbGciOiJFUzI1NiJ9.${Buffer.from('{"sub":"alice"}').toString('base64url')}.c2VjcmV0LXNpZ25hdHVyZS1vZi1hbGljZQ`;
  let server: Server;
  let endpoint: string;
  let answer: { status: number; body: unknown };

  before(async () => {
    // A token endpoint that echoes the subject token back in every answer (a buggy or hostile IdP).
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const subject = new URLSearchParams(body).get('subject_token') ?? '';
        res.writeHead(answer.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer.body).replaceAll('SUBJECT', subject));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const strategy = (o: Record<string, unknown> = {}) =>
    new TokenExchangeStrategy(
      {
        strategy: 'token-exchange',
        clientId: 'gw',
        clientSecret: 'env:GW_SECRET',
        scopes: ['crm:read'],
        toolScopes: {},
        refreshSkewSeconds: 30,
        tokenEndpoint: endpoint,
        ...o,
      },
      {
        upstreamUrl: 'http://127.0.0.1:1/mcp',
        issuers: ['http://127.0.0.1:2'],
        baseDir: '/',
        env: { GW_SECRET: 'gw-secret' },
        log: () => {},
      },
    );
  const alice = (): Principal => {
    const p: Principal = {
      client: { id: 'agent', method: 'api-key', credentialId: 'k1' },
      user: {
        issuer: 'http://127.0.0.1:2',
        subject: 'alice',
        claims: {},
        scopes: [],
        expiresAt: 0,
        tokenFingerprint: 'f',
      },
    };
    rememberSubjectToken(p, SECRET_TOKEN);
    return p;
  };

  async function refusal(p: Promise<unknown>): Promise<string> {
    let caught: unknown;
    await p.catch((err: unknown) => (caught = err));
    assert.ok(caught instanceof BehalfError, 'refused with a BehalfError');
    assert.equal(caught.code, 'downstream_credential_unavailable');
    assert.ok(
      !caught.message.includes(SECRET_TOKEN) && !caught.message.includes('c2VjcmV0'),
      'the refusal carries the token',
    );
    assert.ok(!JSON.stringify(caught).includes('c2VjcmV0'));
    return caught.message;
  }

  it('no user, or no subject token: refused before any request', async () => {
    assert.match(
      await refusal(
        strategy().credentialFor({
          principal: { client: { id: 'a', method: 'api-key', credentialId: 'k' } },
          upstream: 'crm',
        }),
      ),
      /needs a user/,
    );
    const p = alice();
    const bare: Principal = { client: p.client, user: p.user };
    assert.match(
      await refusal(strategy().credentialFor({ principal: bare, upstream: 'crm' })),
      /needs the user's token/,
    );
  });

  it('an OAuth error echoing the token: the code is kept, the token is not', async () => {
    answer = { status: 400, body: { error: 'invalid_grant', error_description: 'bad subject_token SUBJECT' } };
    assert.match(
      await refusal(strategy().credentialFor({ principal: alice(), upstream: 'crm' })),
      /refused by .*: invalid_grant \(bad subject_token \[redacted\]\)/,
    );
  });

  it('a malformed success echoing the token, an unsupported token type, a token for someone else: refused, without it', async () => {
    answer = { status: 200, body: { access_token: 'SUBJECT' } };
    assert.match(
      await refusal(strategy().credentialFor({ principal: alice(), upstream: 'crm' })),
      /unusable token response/,
    );
    answer = { status: 200, body: { access_token: 'SUBJECT', token_type: 'N_A', issued_token_type: 'urn:x' } };
    assert.match(
      await refusal(strategy().credentialFor({ principal: alice(), upstream: 'crm' })),
      /unusable token response|not supported/,
    );
    const bobs = `eyJhbGciOiJFUzI1NiJ9.${Buffer.from('{"sub":"bob","exp":9999999999}').toString('base64url')}.c2ln`;
    answer = { status: 200, body: { access_token: bobs, token_type: 'Bearer', expires_in: 60 } };
    assert.match(
      await refusal(strategy().credentialFor({ principal: alice(), upstream: 'crm' })),
      /token for another subject/,
    );
  });

  it('a well-formed answer becomes a Bearer credential named by its jti, expiring as the token says', async () => {
    const exp = Math.floor(Date.now() / 1000) + 120;
    const token = `eyJhbGciOiJFUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: 'alice', jti: 'j-1', exp })).toString('base64url')}.c2ln`;
    answer = {
      status: 200,
      body: {
        access_token: token,
        token_type: 'Bearer',
        expires_in: 300,
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      },
    };
    const cred = await strategy().credentialFor({ principal: alice(), upstream: 'crm' });
    assert.deepEqual(cred, { headers: { authorization: `Bearer ${token}` }, id: 'j-1', expiresAt: exp });
  });

  it('plain HTTP to a non-loopback IdP is a configuration error', () => {
    assert.throws(() => strategy({ tokenEndpoint: 'http://idp.example.com/token' }), { code: 'config_invalid' });
    assert.throws(() => strategy({ issuer: 'http://idp.example.com' }), { code: 'config_invalid' });
  });
});
