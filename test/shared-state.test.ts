import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../src/config/load.js';
import { BehalfError } from '../src/errors.js';
import { compileRateLimit, MemoryRateLimiter } from '../src/policy/rate-limit.js';
import { RedisExchangeLock } from '../src/state/exchange-lock.js';
import { RedisRateLimiter } from '../src/state/redis-rate-limiter.js';
import { MemoryReplayCache, RedisReplayCache } from '../src/state/replay-cache.js';
import { checkRedisUrl, SharedRedis } from '../src/state/shared-redis.js';
import { dropPrefix, REDIS_PORT, REDIS_URL, testPrefix } from './helpers/redis-test.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { tempDir } from './helpers/tmp.js';

/** Two gateway instances' views of one Redis: what one records, the other sees. */
describe('shared single-use state on Redis (units, the machine Redis under a prefix of their own)', () => {
  const prefix = testPrefix();
  const lines: string[] = [];
  const cfg = { keyPrefix: prefix, commandTimeoutMs: 1000, url: 'env:UNUSED' };
  let a: SharedRedis;
  let b: SharedRedis;

  before(async () => {
    a = new SharedRedis(REDIS_URL, cfg, (l) => lines.push(l));
    b = new SharedRedis(REDIS_URL, cfg, (l) => lines.push(l));
    assert.ok(await a.ready(5000));
    assert.ok(await b.ready(5000));
  });
  after(async () => {
    a?.close();
    b?.close();
    await dropPrefix(prefix);
  });

  it('a jti used on one instance is refused on another; a fresh one passes (memory caches, by contrast, do not share)', async () => {
    const exp = Date.now() / 1000 + 30;
    const ra = new RedisReplayCache(a);
    const rb = new RedisReplayCache(b);
    assert.equal(await ra.firstUse('["iss","jti-1"]', exp), true);
    assert.equal(await rb.firstUse('["iss","jti-1"]', exp), false, 'replayed through the other instance');
    assert.equal(await ra.firstUse('["iss","jti-1"]', exp), false, 'replayed on the same instance');
    assert.equal(await rb.firstUse('["iss","jti-2"]', exp), true, 'positive control: a fresh jti');
    // What one process's memory does: each instance would take the same jti once.
    const [m1, m2] = [new MemoryReplayCache(), new MemoryReplayCache()];
    assert.equal(await m1.firstUse('x', exp), true);
    assert.equal(await m2.firstUse('x', exp), true);
  });

  it('of concurrent first uses of one jti across instances, exactly one wins', async () => {
    const exp = Date.now() / 1000 + 30;
    const caches = [new RedisReplayCache(a), new RedisReplayCache(b)];
    const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => caches[i % 2]!.firstUse('race', exp)));
    assert.equal(wins.filter(Boolean).length, 1);
  });

  it('a rate limit of 5 is 5 for the instances together, and a refused call drains no other bucket', async () => {
    const limit = compileRateLimit({ id: 'five', per: ['user'], capacity: 5, refillPerSecond: 0.001 });
    const other = compileRateLimit({ id: 'wide', per: ['client'], capacity: 100, refillPerSecond: 0.001 });
    const limiters = [new RedisRateLimiter(a), new RedisRateLimiter(b)];
    const verdicts = [];
    for (let i = 0; i < 8; i++)
      verdicts.push(
        await limiters[i % 2]!.take([
          { limit, key: 'five\u0001u:alice' },
          { limit: other, key: 'wide\u0001c:agent' },
        ]),
      );
    assert.deepEqual(
      verdicts.map((v) => v.ok),
      [true, true, true, true, true, false, false, false],
    );
    const refused = verdicts[5]!;
    assert.ok(!refused.ok && refused.limitId === 'five' && refused.retryAfterMs > 1000);
    // The wide bucket lost 5 tokens, not 8: 95 left, so 95 more single-bucket takes pass and the 96th does not.
    let passed = 0;
    for (let i = 0; i < 96; i++)
      if ((await limiters[i % 2]!.take([{ limit: other, key: 'wide\u0001c:agent' }])).ok) passed++;
    assert.equal(passed, 95);
    // Positive control: another user's bucket is full.
    assert.equal((await limiters[1]!.take([{ limit, key: 'five\u0001u:bob' }])).ok, true);
    // The memory limiter, same inputs, same answer on one instance.
    const mem = new MemoryRateLimiter();
    const local = Array.from({ length: 6 }, () => mem.take([{ limit, key: 'k' }]).ok);
    assert.deepEqual(local, [true, true, true, true, true, false]);
  });

  it('the token-exchange lock: two instances never exchange for one key at once; other keys do not wait', async () => {
    const locks = [new RedisExchangeLock(a, { pollMs: 10 }), new RedisExchangeLock(b, { pollMs: 10 })];
    let active = 0;
    let most = 0;
    const exchange = async () => {
      active++;
      most = Math.max(most, active);
      await sleep(30);
      active--;
      return 'token';
    };
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => locks[i % 2]!.around('alice/tool', exchange)),
    );
    assert.deepEqual(results, Array(6).fill('token'));
    assert.equal(most, 1, 'one exchange at a time for one user and tool');
    // Different keys in parallel: both run at once.
    most = 0;
    await Promise.all([locks[0]!.around('alice/x', exchange), locks[1]!.around('bob/x', exchange)]);
    assert.equal(most, 2);
    // A failed exchange releases the lock: the next one does not wait for its expiry.
    await assert.rejects(
      locks[0]!.around('alice/tool', () => Promise.reject(new Error('idp said no'))),
      /idp said no/,
    );
    const t0 = performance.now();
    await locks[1]!.around('alice/tool', exchange);
    assert.ok(performance.now() - t0 < 5000);
  });

  it('configuration: the URL is a secret reference, and what it resolves to must be a redis URL', () => {
    const base = {
      server: { allowUnauthenticated: true },
      userAuth: { issuers: [{ issuer: 'https://idp.example' }] },
      upstreams: { up: { transport: 'streamable-http', url: 'http://127.0.0.1:1/mcp' } },
    };
    assert.throws(
      () => parseConfig({ ...base, state: { redis: { url: 'redis://:hunter2@10.0.0.1:6379' } } }, tempDir()),
      /state\.redis\.url/,
    );
    const ok = parseConfig({ ...base, state: { redis: { url: 'env:BEHALF_REDIS_URL' } } }, tempDir());
    assert.equal(ok.config.state.redis?.keyPrefix, 'behalf:');
    assert.equal(parseConfig(base, tempDir()).config.state.redis, undefined, 'absent: memory, as before');
    assert.throws(
      () => checkRedisUrl('http://x:secret@h/', 'env:R'),
      (e: BehalfError) => {
        assert.equal(e.code, 'config_invalid');
        assert.ok(!e.message.includes('secret'), 'the URL is not quoted');
        return true;
      },
    );
  });
});

describe('Redis unreachable: 503 (state_unavailable), a loud line per interval, and recovery by itself', () => {
  const prefix = testPrefix();
  const lines: string[] = [];
  let proxy: TcpProxy;
  let redis: SharedRedis;

  before(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: REDIS_PORT });
    redis = new SharedRedis(
      `redis://127.0.0.1:${proxy.port}`,
      { keyPrefix: prefix, commandTimeoutMs: 500, url: 'env:X' },
      (l) => lines.push(l),
    );
    assert.ok(await redis.ready(5000));
  });
  after(async () => {
    redis?.close();
    await proxy?.close();
    await dropPrefix(prefix);
  });

  it('refuses while Redis is away (never falls back to memory) and serves again once it is back', async () => {
    const cache = new RedisReplayCache(redis);
    const limiter = new RedisRateLimiter(redis);
    const limit = compileRateLimit({ id: 'l', per: ['user'], capacity: 100, refillPerSecond: 1 });
    const exp = Date.now() / 1000 + 60;
    assert.equal(await cache.firstUse('before', exp), true, 'positive control');
    await proxy.stop();
    for (let i = 0; i < 5; i++) {
      await assert.rejects(cache.firstUse(`during-${i}`, exp), (e: BehalfError) => e.code === 'state_unavailable');
      await assert.rejects(
        Promise.resolve(limiter.take([{ limit, key: 'u' }])),
        (e: BehalfError) => e.code === 'state_unavailable',
      );
    }
    const loud = lines.filter((l) => l.startsWith('SHARED STATE UNAVAILABLE'));
    assert.ok(loud.length >= 1, 'the outage is logged');
    assert.ok(loud.length <= 4, `once per interval and kind, not per request: ${loud.length}`);
    assert.ok(loud.every((l) => !/password|hunter/.test(l)));
    await proxy.start();
    const deadline = Date.now() + 10_000;
    let back = false;
    while (!back && Date.now() < deadline) {
      back = await cache.firstUse(`after-${Date.now()}`, exp).catch(() => false);
      if (!back) await sleep(100);
    }
    assert.ok(back, 'serves again by itself');
    assert.equal(await cache.firstUse('before', exp), false, 'and remembers what it saw before the outage');
  });
});
