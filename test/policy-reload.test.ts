/**
 * Hot reload of a policy file through the real gateway: a broken file is
 * rejected with its errors and the old policy keeps serving; a good file
 * takes effect for the next request. Both the file watch and the explicit
 * reload (what SIGHUP triggers) are exercised.
 */
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { openSession, postJson, rpcError, rpcResult, toolCall } from './helpers/raw-http.js';
import { tempDir } from './helpers/tmp.js';

const READ_OWN = {
  id: 'reps-read-own',
  effect: 'allow',
  upstreams: ['crm'],
  tools: ['get_customer'],
  when: 'user.claims.role == "rep" && args.customer_id in user.claims.customers',
};
const LIST_OWN = {
  id: 'reps-list-own',
  effect: 'allow',
  upstreams: ['crm'],
  tools: ['list_customers'],
  when: 'user.claims.role == "rep" && has(args.owner) && args.owner == user.sub',
};

function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

for (const mode of ['file watch', 'explicit reload (SIGHUP)'] as const) {
  describe(`policy hot reload by ${mode}`, () => {
    let fx: Fixture;
    let file: string;
    let url: string;
    let headers: Record<string, string>;
    let sid: string;
    const logs: string[] = [];

    const getOwn = () => postJson(url, headers, toolCall('get_customer', { customer_id: 'c-100' }), sid);
    const listOwn = () => postJson(url, headers, toolCall('list_customers', { owner: 'alice' }), sid);
    async function reloadEvents(outcome: string) {
      const events = await fx.gateway.runtime.audit.query({ kind: 'policy', limit: 100 });
      return events.filter((e) => e.outcome === outcome);
    }
    async function reloadAndWait(outcome: string, before: number) {
      if (mode !== 'file watch') fx.gateway.runtime.policy.reload();
      return waitFor(async () => {
        const events = await reloadEvents(outcome);
        return events.length > before ? events.at(-1) : undefined;
      }, `a "${outcome}" policy event`);
    }

    before(async () => {
      file = join(tempDir(), 'policy.yaml');
      writeFileSync(file, stringify({ rules: [READ_OWN] }));
      fx = await startFixture({
        policy: { file, watch: mode === 'file watch' },
        gateway: { log: (l) => logs.push(l) },
      });
      url = fx.gateway.urlFor('crm');
      headers = await fx.headersFor('alice');
      sid = await openSession(url, headers);
    });
    after(() => fx?.close());

    it("serves the file's policy: alice reads her customer, listing is not allowed yet", async () => {
      rpcResult(await getOwn());
      assert.equal(rpcError(await listOwn()).code, -32003);
    });

    it('a broken file is rejected with its errors and the old policy keeps serving', async () => {
      const before = (await reloadEvents('reload rejected')).length;
      const oldVersion = fx.gateway.runtime.policy.current.version;
      writeFileSync(file, stringify({ rules: [READ_OWN, { ...LIST_OWN, when: 'user.sub ==' }] }));
      const rejected = await reloadAndWait('reload rejected', before);
      assert.match(rejected.reason!, /rule reps-list-own: invalid when expression/);
      assert.ok(
        logs.some(
          (l) => /policy reload rejected; the previous policy stays in force/.test(l) && /reps-list-own/.test(l),
        ),
      );
      assert.equal(fx.gateway.runtime.policy.current.version, oldVersion);
      rpcResult(await getOwn());
      assert.equal(rpcError(await listOwn()).code, -32003);
    });

    it('a file that is not even YAML is rejected the same way', async () => {
      const before = (await reloadEvents('reload rejected')).length;
      writeFileSync(file, 'rules: [ {');
      const rejected = await reloadAndWait('reload rejected', before);
      assert.match(rejected.reason!, /not valid YAML/);
      rpcResult(await getOwn());
    });

    it('a good file takes effect for the next request, on the same session, and the decision names the new version', async () => {
      const before = (await reloadEvents('reloaded')).length;
      writeAtomically(file, stringify({ rules: [READ_OWN, LIST_OWN] }));
      const reloaded = await reloadAndWait('reloaded', before);
      assert.equal(reloaded.policyVersion, fx.gateway.runtime.policy.current.version);
      rpcResult(await listOwn());
      const decision = (await fx.gateway.runtime.audit.query({ kind: 'decision', limit: 1 }))[0]!;
      assert.deepEqual(
        [decision.decision, decision.ruleIds, decision.policyVersion],
        ['allow', ['reps-list-own'], reloaded.policyVersion],
      );
      // Positive control for the boundary: the new rule still denies listing someone else's customers.
      assert.equal(
        rpcError(await postJson(url, headers, toolCall('list_customers', { owner: 'bob' }), sid)).code,
        -32003,
      );
    });
  });
}
