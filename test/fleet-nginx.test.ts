import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { sessionFingerprint } from '../src/state/sessions.js';
import { PUBLIC_URL, startFleet, type Fleet } from './helpers/fleet.js';
import { nginxBinary, startNginx, type Nginx } from './helpers/nginx.js';
import { createTestDb, type TestDb } from './helpers/pg-db.js';
import { openSession, postJson, rpcResult, toolCall } from './helpers/raw-http.js';
import { dropPrefix, testPrefix } from './helpers/redis-test.js';
import { OWN_ROOT } from './helpers/spawned-gateway.js';

/*
 * examples/fleet as it runs: three gateway processes behind real nginx
 * (the example's template, round robin, no affinity), sessions in Redis, one
 * audit trail in PostgreSQL. The client only ever talks to nginx.
 */
const NO_NGINX = nginxBinary() ? false : 'nginx is not installed (Debian: apt-get install nginx; .ci/run installs it)';

/**
 * How many records matching `where` each instance wrote, from the fleet's one
 * audit trail. Records written after the response (a refusal's) are waited
 * for, boundedly, until all three instances have some.
 */
async function servedBy(db: TestDb, where: string, ...params: unknown[]): Promise<Map<string, number>> {
  for (let n = 0; ; n++) {
    const rows = await db.query<{ instance_id: string; n: string }>(
      `SELECT instance_id, count(*) AS n FROM audit_events WHERE ${where} GROUP BY instance_id`,
      params,
    );
    if (rows.length >= 3 || n >= 50) return new Map(rows.map((r) => [r.instance_id, Number(r.n)]));
    await new Promise((r) => setTimeout(r, 40));
  }
}

function auditVerify(db: TestDb): { status: number | null; out: string } {
  const r = spawnSync(
    process.execPath,
    [join(OWN_ROOT, 'src/cli/main.js'), 'audit', 'verify', '--postgres', 'env:BEHALF_FLEET_PG_URL'],
    { env: { ...process.env, BEHALF_FLEET_PG_URL: db.url }, encoding: 'utf8', timeout: 30_000 },
  );
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe(
  'examples/fleet: three gateways behind nginx, round robin, on Redis and PostgreSQL',
  { skip: NO_NGINX },
  () => {
    const prefix = testPrefix();
    let db: TestDb;
    let fleet: Fleet;
    let nginx: Nginx;
    let url: string;

    before(async () => {
      db = await createTestDb();
      fleet = await startFleet({
        size: 3,
        prefix,
        policy: { rules: DEMO_POLICY },
        // 2 s, not the default 200 ms: on a loaded machine a PostgreSQL append can pass 200 ms, and a refusal for that
        // would be counted as a failure after the kill; this test judges failover (the budget has its own test, audit-lock).
        audit: { postgres: { url: 'env:BEHALF_FLEET_PG_URL' }, writeBudgetMs: 2000 },
        env: { BEHALF_FLEET_PG_URL: db.url },
      });
      const addr = fleet.instances.map((i) => new URL(i.url).host) as [string, string, string];
      nginx = await startNginx(addr);
      url = `${nginx.origin}/mcp/crm`;
    });
    after(async () => {
      await nginx?.close();
      await fleet?.close();
      await db?.drop();
      await dropPrefix(prefix);
    });

    // The public name resolves to nginx: clients send it as Host, nginx passes it on, and the gateways accept it.
    const asUser = async (user: string) => ({
      host: new URL(PUBLIC_URL).host,
      'x-api-key': fleet.keys.main,
      authorization: `Bearer ${await fleet.tokenFor(user)}`,
    });

    it('one session, opened through nginx, is served by all three instances', async () => {
      const alice = await asUser('alice');
      const id = await openSession(url, alice);
      for (let n = 0; n < 12; n++) {
        const r = await postJson(url, alice, toolCall('get_customer', { customer_id: 'c-100' }), id);
        const result = rpcResult(r);
        assert.notEqual(result.isError, true, `call ${n}: ${r.text}`);
        assert.equal(r.headers['mcp-session-id'], id);
      }
      // Written before each forward: the trail already holds every call's decision.
      const calls = await servedBy(
        db,
        "kind = 'decision' AND method = 'tools/call' AND session_fingerprint = $1",
        sessionFingerprint(id),
      );
      assert.deepEqual([...calls.keys()].sort(), ['gw-1', 'gw-2', 'gw-3'], JSON.stringify([...calls]));
      assert.equal(
        [...calls.values()].reduce((a, b) => a + b, 0),
        12,
      );
    });

    it("bob's credentials on alice's session are refused, whichever instance nginx picks; alice's go through", async () => {
      const alice = await asUser('alice');
      const bob = await asUser('bob');
      const id = await openSession(url, alice);
      for (let n = 0; n < 6; n++) {
        const attack = await postJson(url, bob, toolCall('get_customer', { customer_id: 'c-200' }), id);
        assert.equal(attack.status, 404, `attempt ${n}: ${attack.text}`);
        // Positive control: the rightful user, the same session, the same way in.
        const control = await postJson(url, alice, toolCall('get_customer', { customer_id: 'c-100' }), id);
        assert.notEqual(rpcResult(control).isError, true, `control ${n}: ${control.text}`);
      }
      const refused = await servedBy(
        db,
        "kind = 'session-mismatch' AND session_fingerprint = $1",
        sessionFingerprint(id),
      );
      assert.deepEqual([...refused.keys()].sort(), ['gw-1', 'gw-2', 'gw-3'], JSON.stringify([...refused]));
    });

    it('kill -9 of one instance under load: the sessions go on through the other two; the trail still verifies', async () => {
      const alice = await asUser('alice');
      const workers = 4;
      const ids = await Promise.all(Array.from({ length: workers }, () => openSession(url, alice)));
      const killAfterMs = 1500;
      const runMs = 5000;
      const started = Date.now();
      const victim = fleet.instances[1]!.child;
      // The instance is gone (its sockets closed) when its parent sees it exit, not when kill() returns.
      const gone = new Promise<number>((resolve) => victim.once('exit', () => resolve(Date.now())));
      const kill = setTimeout(() => victim.kill('SIGKILL'), killAfterMs);
      /** Each worker keeps one call in flight on its own session. */
      const run = async (id: string) => {
        const seen: { ok: boolean; sentAt: number; text: string }[] = [];
        while (Date.now() - started < runMs) {
          const sentAt = Date.now();
          const r = await postJson(url, alice, toolCall('get_customer', { customer_id: 'c-100' }), id).catch(
            (err: Error) => ({ status: 0, text: err.message, json: undefined }),
          );
          // A success has a result: a JSON-RPC error in a 200 (a refusal) is not one, and has no decision to find.
          const result = (r.json as { result?: { isError?: boolean } } | undefined)?.result;
          const ok = r.status === 200 && result !== undefined && result.isError !== true;
          seen.push({ ok, sentAt, text: `${r.status} ${r.text.slice(0, 120)}` });
        }
        return seen;
      };
      const results = await Promise.all(ids.map(run));
      clearTimeout(kill);
      const goneAt = await gone;
      const failures = results.flat().filter((c) => !c.ok);
      assert.ok(failures.length <= 2 * workers, `${failures.length} failures`);
      for (const [w, seen] of results.entries()) {
        // Only calls that reached the dying instance fail; every call sent once it was gone landed on a survivor.
        const after = seen.filter((c) => c.sentAt >= goneAt);
        const bad = after.filter((c) => !c.ok);
        assert.equal(
          bad.length,
          0,
          `worker ${w}: ${bad.map((c) => `${c.sentAt - goneAt} ms after the exit: ${c.text}`)}\n${readFileSync(join(nginx.dir, 'error.log'), 'utf8')}`,
        );
        assert.ok(after.length >= 5, `worker ${w} kept going after the kill: ${after.length} calls`);
      }
      // Every call a client saw succeed had its decision written before its forward.
      const succeeded = results.flat().filter((c) => c.ok).length;
      const decided = await db.query<{ n: string }>(
        "SELECT count(*) AS n FROM audit_events WHERE kind = 'decision' AND method = 'tools/call' AND session_fingerprint = ANY($1)",
        [ids.map(sessionFingerprint)],
      );
      assert.ok(Number(decided[0]!.n) >= succeeded, `${decided[0]!.n} decisions for ${succeeded} successful calls`);
      const { status, out } = auditVerify(db);
      assert.equal(status, 0, out);
    });

    it("behalf audit verify passes on the fleet's PostgreSQL trail", async () => {
      const { status, out } = auditVerify(db);
      assert.equal(status, 0, out);
      assert.match(out, /^ok: \d+ records/m);
    });
  },
);
