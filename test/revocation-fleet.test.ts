/**
 * Revocations in a fleet (docs/revocation.md): made on one instance, put in
 * force on another within a second through Redis pub/sub, and learned by an
 * instance started afterwards from the stored hash; expired ones are
 * forgotten. Two and then three RevocationService instances on the
 * machine's Redis, each with its own connection, under a prefix of the
 * test's own; a principal of another user is the positive control.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuditLog } from '../src/audit/audit-log.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import type { Principal } from '../src/identity/principal.js';
import type { Revocation } from '../src/revocation/entry.js';
import { RevocationService } from '../src/revocation/service.js';
import { SharedRedis } from '../src/state/shared-redis.js';
import { dropPrefix, REDIS_URL, testPrefix } from './helpers/redis-test.js';

const user = (subject: string, issuedAt: number): Principal => ({
  client: { id: 'agent', method: 'api-key', credentialId: 'k1' },
  user: {
    issuer: 'https://idp.test',
    subject,
    claims: {},
    scopes: [],
    expiresAt: issuedAt + 600,
    issuedAt,
    tokenFingerprint: `fp-${subject}`,
  },
});

describe('revocations reach every instance of a fleet through Redis', () => {
  const prefix = testPrefix();
  const cfg = { keyPrefix: prefix, commandTimeoutMs: 1000, url: 'env:UNUSED' };
  const opened: Array<{ redis: SharedRedis; service: RevocationService; audit: AuditLog }> = [];

  async function instance(name: string) {
    const redis = new SharedRedis(REDIS_URL, cfg, () => {});
    assert.ok(await redis.ready(5000));
    const audit = new AuditLog(new SqliteAuditStore(':memory:'), () => {}, name);
    const service = new RevocationService({ ttlMs: 60_000, audit, log: () => {}, instanceId: name, redis });
    opened.push({ redis, service, audit });
    return { service, audit };
  }

  after(async () => {
    for (const o of opened) {
      o.service.close();
      o.redis.close();
      await o.audit.close();
    }
    await dropPrefix(prefix);
  });

  let a: Awaited<ReturnType<typeof instance>>;
  let b: Awaited<ReturnType<typeof instance>>;
  before(async () => {
    a = await instance('gw-a');
    b = await instance('gw-b');
    await sleep(200);
  });

  it('revoked on A, in force on B within a second (and audited there), bob untouched', async () => {
    const iat = Math.floor(Date.now() / 1000) - 5;
    const heard = new Promise<Revocation>((r) => b.service.onRevoked(r));
    const at = Date.now();
    await a.service.revoke({ kind: 'user', value: 'alice', reason: 'test', actor: 'admin key k', source: 'admin' });
    const r = await Promise.race([heard, sleep(1000, undefined)]);
    assert.ok(r, 'B did not hear of the revocation within a second');
    assert.ok(Date.now() - at < 1000);
    assert.equal(r.from, 'gw-a');
    assert.ok(b.service.check(user('alice', iat)), 'alice refused on B');
    assert.equal(b.service.check(user('bob', iat)), undefined, 'bob is not');
    const records = await b.audit.query({ kind: 'revocation', limit: 5 });
    assert.equal(records.length, 1);
    assert.equal(records[0]!.instanceId, 'gw-b');
    assert.match(records[0]!.reason!, /user alice revoked by admin key k/);
  });

  it('an instance started later learns the revocations made before it; a token issued after one passes', async () => {
    const c = await instance('gw-c');
    const deadline = Date.now() + 2000;
    while (c.service.set.size === 0 && Date.now() < deadline) await sleep(20);
    assert.ok(c.service.check(user('alice', Math.floor(Date.now() / 1000) - 5)));
    assert.equal(c.service.check(user('alice', Math.floor(Date.now() / 1000) + 2)), undefined);
  });

  it('a forged note on the channel (not a revocation) is ignored', async () => {
    await opened[0]!.redis.run('PUBLISH', (r) => r.publish(`${prefix}revocations`, '{"kind":"user"}'));
    await sleep(200);
    assert.equal(b.service.list().length, 1);
  });
});
