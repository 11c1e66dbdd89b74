/**
 * /readyz (issue 17): ready only when the IdP keys are loaded, the audit
 * store accepts writes, and Redis answers when configured; each part is in
 * the body. It flips to not ready while an outside process holds the audit
 * database's write lock and back once the store is writable again, and
 * likewise while Redis is cut off (a TCP proxy, never the machine's Redis).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { holdWriteLock } from './helpers/gateway-process.js';
import { openSession, postJson, rawRequest, toolCall, type RawResponse } from './helpers/raw-http.js';
import { freePort } from './helpers/free-port.js';
import { REDIS_PORT, testPrefix, dropPrefix } from './helpers/redis-test.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { tempDir } from './helpers/tmp.js';

interface Readiness {
  status: string;
  reason?: string;
  checks: Record<string, { ready: boolean; reason?: string; issuers?: Record<string, boolean> }>;
}

async function readyz(fx: Fixture): Promise<{ r: RawResponse; body: Readiness }> {
  const r = await rawRequest(`${fx.gateway.baseUrl}/readyz`);
  return { r, body: r.json as Readiness };
}

/** Polls /readyz until its status is `status`, within `ms`. */
async function until(fx: Fixture, status: number, ms: number, poke?: () => Promise<unknown>): Promise<Readiness> {
  const by = Date.now() + ms;
  for (;;) {
    await poke?.();
    const { r, body } = await readyz(fx);
    if (r.status === status || Date.now() > by) {
      assert.equal(r.status, status, r.text);
      return body;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe('/readyz and the audit store', () => {
  let fx: Fixture;
  const dir = tempDir();
  const db = join(dir, 'audit.db');

  before(async () => {
    fx = await startFixture({ audit: { sqlitePath: db, writeBudgetMs: 200 } });
  });
  after(() => fx?.close());

  it('lists every part, flips to not ready while the store is locked, and back once it is writable', async () => {
    const ready = await until(fx, 200, 5000);
    assert.equal(ready.status, 'ready');
    assert.deepEqual(ready.checks.audit, { ready: true });
    assert.deepEqual(ready.checks.shutdown, { ready: true });
    assert.deepEqual(ready.checks.idpKeys, { ready: true, issuers: { [fx.idp.issuer]: true } });
    assert.equal(ready.checks.redis, undefined, 'no Redis configured, no Redis part');

    const headers = await fx.headersFor('alice');
    const url = fx.gateway.urlFor('crm');
    const session = await openSession(url, headers);
    const call = () => postJson(url, headers, toolCall('get_customer', { customer_id: 'c-100' }), session);
    assert.equal((await call()).status, 200, 'positive control: a call before the lock');
    const lock = await holdWriteLock(db, 10_000);
    try {
      const locked = await until(fx, 503, 5000, call);
      assert.equal(locked.status, 'not ready');
      assert.equal(locked.checks.audit!.ready, false);
      assert.match(String(locked.reason), /^audit store/);
      assert.ok(!JSON.stringify(locked).includes(dir), 'no path in the body');
      assert.deepEqual(locked.checks.idpKeys!.ready, true, 'the other parts stay ready');
    } finally {
      await lock.release();
    }
    const back = await until(fx, 200, 5000, call);
    assert.equal(back.checks.audit!.ready, true);
  });
});

describe('/readyz and the identity provider keys', () => {
  let fx: Fixture;
  let missing: string;

  before(async () => {
    missing = `http://127.0.0.1:${await freePort()}`;
    // An IdP of its own, so the gateway under test can trust it next to one that does not exist.
    fx = await startFixture({ noGateway: true });
  });
  after(() => fx?.close());

  it('is not ready while an issuer has no keys, and names which one', async () => {
    const g = await startFixture({
      userAuth: {
        issuers: [
          { issuer: fx.idp.issuer, algorithms: ['ES256'], userClaims: ['role', 'customers'] },
          { issuer: missing, algorithms: ['ES256'], keyFetch: { timeoutMs: 500 } },
        ],
      },
    });
    try {
      const { r, body } = await readyz(g);
      assert.equal(r.status, 503, r.text);
      assert.equal(body.reason, 'identity provider keys not loaded');
      assert.deepEqual(body.checks.idpKeys!.issuers, { [fx.idp.issuer]: true, [missing]: false });
      assert.deepEqual(body.checks.audit, { ready: true }, 'the audit part is ready');
    } finally {
      await g.close();
    }
  });
});

describe('/readyz and Redis (state.redis through a proxy)', () => {
  let fx: Fixture;
  let proxy: TcpProxy;
  const prefix = testPrefix();

  before(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: REDIS_PORT });
    process.env.BEHALF_TEST_READY_REDIS = `redis://127.0.0.1:${proxy.port}`;
    fx = await startFixture({
      state: { redis: { url: 'env:BEHALF_TEST_READY_REDIS', keyPrefix: prefix, commandTimeoutMs: 300 } },
    });
  });
  after(async () => {
    await fx?.close();
    await proxy?.close();
    await dropPrefix(prefix);
  });

  it('says not ready while Redis does not answer, and ready again when it does', async () => {
    const ready = await until(fx, 200, 5000);
    assert.deepEqual(ready.checks.redis, { ready: true });
    await proxy.stop();
    const down = await until(fx, 503, 5000);
    assert.equal(down.checks.redis!.ready, false);
    assert.deepEqual(down.checks.audit, { ready: true });
    await proxy.start();
    const back = await until(fx, 200, 10_000);
    assert.deepEqual(back.checks.redis, { ready: true });
  });
});
