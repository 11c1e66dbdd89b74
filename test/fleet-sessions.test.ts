import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { sessionFingerprint } from '../src/state/sessions.js';
import { auditRows, startFleet, type Fleet, type FleetInstance } from './helpers/fleet.js';
import { openSession, postJson, rawRequest, rpcResult, toolCall } from './helpers/raw-http.js';
import { dropPrefix, testPrefix } from './helpers/redis-test.js';
import { OWN_ROOT } from './helpers/spawned-gateway.js';

/** The demo policy, for the CRM over HTTP and the same CRM as a local child process (`crmlocal`). */
const POLICY = {
  rules: DEMO_POLICY.map((r) => ({
    ...r,
    upstreams: [...((r as { upstreams?: string[] }).upstreams ?? []), 'crmlocal'],
  })),
};

/** Audit appends are queued: the rows a request caused are there within a bounded wait. */
async function eventually(i: FleetInstance, where: string, ...args: unknown[]): Promise<Record<string, unknown>[]> {
  for (let n = 0; n < 50; n++) {
    const rows = auditRows(i, where, ...args);
    if (rows.length > 0) return rows;
    await new Promise((r) => setTimeout(r, 20));
  }
  return [];
}

const localRoute = (i: FleetInstance) => i.url.replace(/\/mcp\/crm$/, '/mcp/crmlocal');

describe('a fleet of three gateway processes sharing Redis: shared sessions', () => {
  const prefix = testPrefix();
  let fleet: Fleet;

  before(async () => {
    fleet = await startFleet({
      size: 3,
      prefix,
      policy: POLICY,
      upstreams: {
        crmlocal: { transport: 'stdio', command: process.execPath, args: [join(OWN_ROOT, 'demo/crm/stdio.js')] },
      },
    });
  });
  after(async () => {
    await fleet?.close();
    await dropPrefix(prefix);
  });

  const asUser = async (user: string, resource?: string) => ({
    'x-api-key': fleet.keys.main,
    authorization: `Bearer ${await fleet.tokenFor(user, resource)}`,
  });
  const listMine = () => toolCall('list_customers', { owner: 'alice' });

  it('a session opened on instance 1 is used through instances 2 and 3', async () => {
    const alice = await asUser('alice');
    const [one, two, three] = fleet.instances as [FleetInstance, FleetInstance, FleetInstance];
    const id = await openSession(one.url, alice);
    for (const i of [two, three, one, three, two]) {
      const r = await postJson(i.url, alice, listMine(), id);
      const result = rpcResult(r);
      assert.notEqual(result.isError, true, `${i.id}: ${r.text}`);
      assert.equal(r.headers['mcp-session-id'], id);
    }
    // Each instance that served it recorded where it came from.
    const fp = sessionFingerprint(id);
    assert.equal(auditRows(one, "kind = 'session' AND session_fingerprint = ? AND outcome = 'created'", fp).length, 1);
    for (const i of [two, three])
      assert.equal(
        auditRows(i, "kind = 'session' AND session_fingerprint = ? AND outcome = 'continued from the fleet'", fp)
          .length,
        1,
      );
  });

  it("bob's credentials on alice's session are refused on every instance; alice's own go through", async () => {
    const alice = await asUser('alice');
    const bob = await asUser('bob');
    const id = await openSession(fleet.instances[0]!.url, alice);
    const fp = sessionFingerprint(id);
    for (const i of fleet.instances) {
      const attack = await postJson(i.url, bob, toolCall('list_customers', { owner: 'bob' }), id);
      assert.equal(attack.status, 404, `${i.id}: ${attack.text}`);
      assert.equal((await eventually(i, "kind = 'session-mismatch' AND session_fingerprint = ?", fp)).length, 1, i.id);
      // Positive control: the rightful user's same session, same instance.
      const control = await postJson(i.url, alice, listMine(), id);
      assert.notEqual(rpcResult(control).isError, true, `${i.id}: ${control.text}`);
    }
  });

  it('DELETE on instance 2 ends the session on instances 1 and 3', async () => {
    const alice = await asUser('alice');
    const [one, two, three] = fleet.instances as [FleetInstance, FleetInstance, FleetInstance];
    const id = await openSession(one.url, alice);
    // Cached on 1 and 3 first, so their own copies have to die too.
    rpcResult(await postJson(three.url, alice, listMine(), id));
    const del = await rawRequest(two.url, { method: 'DELETE', headers: { ...alice, 'mcp-session-id': id } });
    assert.equal(del.status, 200, del.text);
    for (const i of [one, three, two]) {
      const r = await postJson(i.url, alice, listMine(), id);
      assert.equal(r.status, 404, `${i.id}: ${r.text}`);
    }
    const ended = await eventually(
      three,
      "kind = 'session' AND session_fingerprint = ? AND outcome LIKE 'ended:%'",
      sessionFingerprint(id),
    );
    assert.equal(ended[0]?.outcome, 'ended: ended in the fleet', "instance 3's cached copy ended on its next use");
  });

  it('an upstream that forgot the session is re-initialized transparently as the same user, and audited', async () => {
    const alice = await asUser('alice');
    const [one, two] = fleet.instances as [FleetInstance, FleetInstance];
    const id = await openSession(one.url, alice);
    rpcResult(await postJson(two.url, alice, listMine(), id));
    await fleet.restartCrm();
    for (const i of [two, one]) {
      const r = await postJson(i.url, alice, listMine(), id);
      const result = rpcResult(r);
      assert.notEqual(result.isError, true, `${i.id}: ${r.text}`);
      assert.match(JSON.stringify(result), /alice|customer/i);
    }
    const fp = sessionFingerprint(id);
    const reinit = await eventually(
      two,
      "kind = 'session' AND session_fingerprint = ? AND outcome = 're-initialized'",
      fp,
    );
    assert.equal(reinit.length, 1, 'instance 2 met the forgetful upstream first');
    assert.equal(reinit[0]!.user_subject, 'alice');
    // Instance 1 took the new upstream session from the record: no second re-initialization.
    assert.equal(auditRows(one, "kind = 'session' AND outcome = 're-initialized'").length, 0);
  });

  it('a notification that meets the forgotten upstream session re-initializes it and is delivered, not dropped', async () => {
    const alice = await asUser('alice');
    const [one, two] = fleet.instances as [FleetInstance, FleetInstance];
    const id = await openSession(one.url, alice);
    rpcResult(await postJson(two.url, alice, listMine(), id));
    await fleet.restartCrm();
    const from = two.output.length;
    const cancel = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'gone', reason: 'test' } };
    const r = await postJson(two.url, alice, cancel, id);
    assert.equal(r.status, 202, r.text);
    const fp = sessionFingerprint(id);
    const where = "kind = 'session' AND session_fingerprint = ? AND outcome = 're-initialized'";
    assert.equal((await eventually(two, where, fp)).length, 1, 'the notification itself re-initialized the session');
    assert.deepEqual(
      two.output.slice(from).filter((l) => /not delivered/.test(l)),
      [],
      'and was delivered to the new upstream session',
    );
    // Positive control: the next call goes on with the new upstream session, no second re-initialization.
    for (const i of [two, one]) assert.notEqual(rpcResult(await postJson(i.url, alice, listMine(), id)).isError, true);
    assert.equal(auditRows(two, where, fp).length + auditRows(one, where, fp).length, 1);
  });

  it("a stdio route's session is served by its owner instance only; elsewhere it is 404", async () => {
    const alice = await asUser('alice', fleet.resource.replace(/crm$/, 'crmlocal'));
    const [one, two, three] = fleet.instances as [FleetInstance, FleetInstance, FleetInstance];
    const id = await openSession(localRoute(one), alice);
    for (const i of [two, three]) {
      const r = await postJson(localRoute(i), alice, listMine(), id);
      assert.equal(r.status, 404, `${i.id}: ${r.text}`);
    }
    const own = await postJson(localRoute(one), alice, listMine(), id);
    assert.notEqual(rpcResult(own).isError, true, own.text);
  });

  it('Redis unreachable: a session is 503 (never a local guess), and served again once Redis is back', async () => {
    const alice = await asUser('alice');
    const [one, , three] = fleet.instances as [FleetInstance, FleetInstance, FleetInstance];
    const id = await openSession(one.url, alice);
    const marks = fleet.instances.map((i) => i.output.length);
    await fleet.proxy.stop();
    try {
      for (const [n, i] of [one, three].entries()) {
        await fleet.waitForLine(i, /SHARED STATE UNAVAILABLE/, 5000, marks[n === 0 ? 0 : 2]);
        const r = await postJson(i.url, alice, listMine(), id);
        assert.equal(r.status, 503, `${i.id}: ${r.text}`);
        assert.match(r.text, /shared gateway state unavailable/);
      }
    } finally {
      await fleet.proxy.start();
    }
    for (const i of [three, one]) {
      const deadline = Date.now() + 15_000;
      let r;
      do {
        await new Promise((resolve) => setTimeout(resolve, 100));
        r = await postJson(i.url, alice, listMine(), id);
      } while (r.status === 503 && Date.now() < deadline);
      assert.notEqual(rpcResult(r).isError, true, `${i.id} serves the session again: ${r.text}`);
    }
  });
});
