import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml, stringify } from 'yaml';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import type { ReplayReport } from '../src/policy/replay/report.js';
import { createTestDb } from './helpers/pg-db.js';
import { behalf, MAIN, RATE_LIMITS, replaySession, seqsOf, withRule } from './helpers/replay-trail.js';
import { lineOf, startSpawnedGateway, type SpawnedGateway } from './helpers/spawned-gateway.js';
import { tempDir } from './helpers/tmp.js';

let gw: SpawnedGateway;
let dir: string;
let auditPath: string;
let config: string;
/** The seq of each scripted call's decision, by name. */
const seq: Record<string, number> = {};

function policyFile(name: string, rules: unknown[], rateLimits: unknown[] = RATE_LIMITS): string {
  const path = join(dir, name);
  writeFileSync(path, stringify({ rules, rateLimits }));
  return path;
}

async function replay(
  policy: string,
  ...more: string[]
): Promise<{ code: number | null; report: ReplayReport; stderr: string }> {
  const r = await behalf('policy', 'replay', '--policy', policy, '--config', config, '--json', ...more);
  assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stderr}`);
  return { code: r.code, report: JSON.parse(r.stdout) as ReplayReport, stderr: r.stderr };
}

async function replayDb(policy: string): Promise<{ report: ReplayReport }> {
  const r = await behalf('policy', 'replay', '--policy', policy, '--db', auditPath, '--upstreams', 'crm', '--json');
  assert.equal(r.code, 0, r.stderr);
  return { report: JSON.parse(r.stdout) as ReplayReport };
}

const session = (user: string) => replaySession(gw, auditPath, seq, user);

describe('behalf policy replay', () => {
  before(async () => {
    auditPath = join(tempDir('behalf-replay-'), 'audit.db');
    gw = await startSpawnedGateway({
      config: {
        policy: { rules: DEMO_POLICY, rateLimits: RATE_LIMITS },
        audit: {
          sqlitePath: auditPath,
          arguments: { keep: [{ upstreams: ['crm'], args: ['customer_id', 'owner'] }] },
        },
      },
    });
    // The helper's folder holds the gateway's config (its own audit path there is unused: the config above names ours).
    dir = dirname(gw.auditPath);
    config = join(dir, 'gateway.yaml');
    const alice = await session('alice');
    const bob = await session('bob');
    const carol = await session('carol');
    try {
      assert.match(await alice.call('alice-own', 'get_customer', { customer_id: 'c-100' }), / allow /);
      assert.match(await alice.call('alice-bobs', 'get_customer', { customer_id: 'c-200' }), / deny /);
      assert.match(await bob.call('bob-own', 'get_customer', { customer_id: 'c-200' }), / allow /);
      assert.match(await bob.call('bob-alices', 'get_customer', { customer_id: 'c-100' }), / deny /);
      assert.match(await carol.call('carol-read', 'get_customer', { customer_id: 'c-100' }), / allow /);
      assert.match(await alice.call('alice-list', 'list_customers', { owner: 'alice' }), / allow /);
      assert.match(await alice.call('alice-export', 'export_all_customers', {}), / deny /);
      // The agent's tokens carry no crm:write: updates are step-up refusals.
      assert.match(
        await alice.call('alice-update', 'update_customer', { customer_id: 'c-100', notes: 'called' }),
        /deny insufficient scope/,
      );
      assert.match(
        await bob.call('bob-update', 'update_customer', { customer_id: 'c-200', name: 'B' }),
        /deny insufficient scope/,
      );
      const uri = { uri: 'crm://customers/c-200' };
      assert.match(await alice.request('alice-resource', 'resources/read', uri), / deny /);
      const prompt = { name: 'account_summary', arguments: { customer_id: 'c-100' } };
      assert.match(await bob.request('bob-prompt', 'prompts/get', prompt), / deny /);
      assert.match(await carol.call('carol-export', 'export_all_customers', {}), / allow /);
      assert.match(await carol.call('carol-export-again', 'export_all_customers', {}), /deny rate limited/);
    } finally {
      alice.close();
      bob.close();
      carol.close();
    }
  });
  after(() => gw?.close());

  it('records the scopes and the claims the policy read with each decision, and the chain still verifies', async () => {
    const store = new SqliteAuditStore(auditPath, { readonly: true });
    const rec = (await store.query({ kind: 'decision', method: 'tools/call', target: 'update_customer' }))[0]!;
    await store.close();
    assert.equal(rec.userScopes, 'mcp:tools');
    assert.deepEqual(JSON.parse(rec.userClaims!), {
      claims: { customers: ['c-100', 'c-101', 'c-102', 'c-103', 'c-104'], role: 'rep' },
      absent: [],
    });
    const v = await behalf('audit', 'verify', '--db', auditPath);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  it('the same policy: no change, and rate-limit refusals are not decided again, and say so', async () => {
    const r = await replay(policyFile('same.yaml', DEMO_POLICY));
    assert.equal(r.code, 0);
    const rep = r.report;
    assert.equal(rep.changes['deny→allow'].count + rep.changes['allow→deny'].count + rep.changes['step-up'].count, 0);
    assert.equal(rep.undecidable.count, 0);
    assert.deepEqual(rep.notReplayed.byReason, { 'rate limited': 1 });
    assert.equal(rep.unchanged, rep.decisions - 1);
    assert.ok(rep.unchanged >= 10, `${rep.unchanged} unchanged`);
    const md = await behalf('policy', 'replay', '--policy', join(dir, 'same.yaml'), '--config', config);
    assert.equal(md.code, 0, md.stderr);
    assert.match(md.stdout, /\| not re-decided \| 1 \|/);
    assert.match(md.stdout, /rate limited: 1 — rate limits depend on when calls came/);
    assert.match(md.stdout, /Gate `--fail-on new-allows`: passed/);
  });

  it('a widened policy: exactly the new allows, with their seqs, and the gate trips', async () => {
    const wide = policyFile('wide.yaml', withRule('reps-read-own', { when: 'user.claims.role == "rep"' }));
    const r = await replay(wide);
    assert.equal(r.code, 1);
    const t = r.report.changes['deny→allow'];
    assert.deepEqual(
      seqsOf(t.examples),
      [seq['alice-bobs'], seq['bob-alices']].sort((a, b) => a! - b!),
    );
    assert.equal(t.count, 2);
    assert.deepEqual(t.byUser, { alice: 1, bob: 1 });
    assert.deepEqual(t.byRule, { 'reps-read-own': 2 });
    assert.equal(r.report.newAllows, 2);
    assert.equal(r.report.changes['allow→deny'].count, 0);
    const md = await behalf('policy', 'replay', '--policy', wide, '--config', config);
    assert.equal(md.code, 1);
    assert.match(
      md.stdout,
      new RegExp(
        `\\| ${seq['alice-bobs']} \\| alice \\| agent \\| tools/call get_customer \\| deny \\| allow \\(reps-read-own\\) \\|`,
      ),
    );
    assert.match(md.stdout, /\*\*Gate `--fail-on new-allows`: failed\*\* — 2 new allow/);
    assert.equal((await behalf('policy', 'replay', '--policy', wide, '--config', config, '--fail-on', 'none')).code, 0);
  });

  it('resource reads and prompts are decided again like tool calls', async () => {
    const open = DEMO_POLICY.map((r) =>
      r.id === 'customer-resources' || r.id === 'account-summary-prompt' ? { ...r, when: 'user.authenticated' } : r,
    );
    const r = await replay(policyFile('open.yaml', open));
    assert.equal(r.code, 1);
    const t = r.report.changes['deny→allow'];
    assert.deepEqual(
      seqsOf(t.examples),
      [seq['alice-resource']!, seq['bob-prompt']!].sort((a, b) => a - b),
    );
    assert.deepEqual(t.byTarget, { 'resources/read crm://customers/c-200': 1, 'prompts/get account_summary': 1 });
  });

  it('a PostgreSQL trail replays as its SQLite original does', async () => {
    const db = await createTestDb();
    try {
      const moved = await behalf('audit', 'migrate', '--from', auditPath, '--to-postgres', db.url);
      assert.equal(moved.code, 0, moved.stderr);
      const wide = join(dir, 'wide.yaml');
      const r = await behalf(
        'policy',
        'replay',
        '--policy',
        wide,
        '--postgres',
        db.url,
        '--upstreams',
        'crm',
        '--json',
      );
      assert.equal(r.code, 1, r.stderr);
      const report = JSON.parse(r.stdout) as ReplayReport;
      assert.deepEqual(
        seqsOf(report.changes['deny→allow'].examples),
        [seq['alice-bobs']!, seq['bob-alices']!].sort((a, b) => a - b),
      );
    } finally {
      await db.drop();
    }
  });

  it('a narrowed policy: exactly the new denies and step-up changes; the default gate passes, any-change trips', async () => {
    const rules = withRule('reps-read-own', {
      when: 'user.claims.role == "rep" && args.customer_id in user.claims.customers && args.customer_id != "c-100"',
    }).map((r) => (r.id === 'managers-read-all' ? { ...r, scopes: ['crm:admin'] } : r));
    const narrow = policyFile('narrow.yaml', rules);
    const r = await replay(narrow);
    assert.equal(r.code, 0);
    assert.deepEqual(seqsOf(r.report.changes['allow→deny'].examples), [seq['alice-own']]);
    assert.equal(r.report.changes['allow→deny'].count, 1);
    // carol now needs crm:admin for what she did: an allow became a step-up (her export too).
    assert.deepEqual(seqsOf(r.report.changes['step-up'].examples), [seq['carol-read'], seq['carol-export']]);
    assert.equal(r.report.changes['deny→allow'].count, 0);
    assert.equal((await replay(narrow, '--fail-on', 'any-change')).code, 1);
  });

  it('a policy reading a redacted argument: those decisions are undecidable, none is guessed', async () => {
    const rules = [
      ...DEMO_POLICY,
      {
        id: 'no-long-notes',
        effect: 'deny',
        upstreams: ['crm'],
        tools: ['update_customer'],
        when: 'has(args.notes) && size(args.notes) > 500',
      },
    ];
    const r = await replay(policyFile('redacted.yaml', rules));
    const u = r.report.undecidable;
    // alice's update sent notes, which the trail redacted; bob's sent none (known: the trail lists every argument).
    assert.deepEqual(seqsOf(u.examples), [seq['alice-update']]);
    assert.equal(u.count, 1);
    assert.deepEqual(u.byRule, { 'no-long-notes': 1 });
    assert.deepEqual(Object.keys(u.byRead), ['args.notes of crm update_customer']);
    assert.equal(
      u.byRead['args.notes of crm update_customer']!.remedy,
      'audit.arguments.keep: { upstreams: [crm], tools: [update_customer], args: [notes] }',
    );
    const changed = r.report.changes;
    assert.equal(changed['deny→allow'].count + changed['allow→deny'].count + changed['step-up'].count, 0);
    assert.equal(r.report.unchanged, r.report.decisions - 2);
  });

  it('a policy reading a claim the trail did not record: undecidable unless the rest of the rule settles it', async () => {
    const rules = withRule('managers-read-all', {
      when: 'user.claims.department == "sales" || user.claims.role == "manager"',
    });
    // Through --db: a config would refuse a claim its issuer does not expose before anything is replayed.
    const r = await replayDb(policyFile('claims.yaml', rules));
    const u = r.report.undecidable;
    // The reps' six calls of the rule's tools hang on department (absent, it would fail the rule and deny);
    // carol's read and export are settled by role == "manager" alone.
    assert.equal(u.count, 6);
    assert.deepEqual(u.byRule, { 'managers-read-all': 6 });
    assert.equal(u.byRead['user.claims.department']!.count, 6);
    assert.match(u.byRead['user.claims.department']!.remedy, /^audit\.claims\.keep: \[department\]/);
    assert.ok(u.examples.every((e) => e.user !== 'carol'));
    assert.equal(r.report.unchanged, r.report.decisions - 7);
  });

  it('a broken proposed policy: exit 2 with the words of behalf config check', async () => {
    const broken = policyFile('broken.yaml', [
      { id: 'x', effect: 'allow', tools: ['get_customer'], when: 'user.subb == 1' },
    ]);
    const r = await behalf('policy', 'replay', '--policy', broken, '--config', config);
    assert.equal(r.code, 2);
    const checked = join(dir, 'check.yaml');
    const gateway = parseYaml(readFileSync(config, 'utf8')) as Record<string, unknown>;
    writeFileSync(checked, stringify({ ...gateway, policy: { file: broken } }));
    const c = await behalf('config', 'check', '--config', checked);
    assert.equal(c.code, 1);
    assert.match(c.stderr, /policy: rule x: invalid when expression: No such key: subb/);
    assert.equal(r.stderr, c.stderr);
    const usage = await behalf('policy', 'replay', '--policy', broken, '--config', config, '--fail-on', 'sometimes');
    assert.equal(usage.code, 2);
  });

  it('--follow decides new records as they are written and reports when stopped', async () => {
    const wide = policyFile('follow.yaml', withRule('reps-read-own', { when: 'user.claims.role == "rep"' }));
    // From the next seq on, whenever the replay gets going: what came before is not reported again.
    const store = new SqliteAuditStore(auditPath, { readonly: true });
    const next = (await store.query({ limit: 1 }))[0]!.seq + 1;
    await store.close();
    const args = ['policy', 'replay', '--policy', wide, '--config', config, '--follow', '--from-seq', String(next)];
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const closed = new Promise<number | null>((r) => child.once('close', r));
    const out: string[] = [];
    try {
      const s = await session('bob');
      try {
        await s.call('bob-follow', 'get_customer', { customer_id: 'c-101' });
      } finally {
        s.close();
      }
      const line = new RegExp(`^seq ${seq['bob-follow']} deny→allow: bob via agent: tools/call get_customer`);
      await Promise.race([
        lineOf(child, line, out),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`no live line: ${out.join('\n')}`)), 20_000)),
      ]);
    } finally {
      child.kill('SIGINT');
    }
    const code = await closed;
    assert.equal(code, 1, out.join('\n'));
    assert.ok(
      out.some((l) => /^\| deny → allow \| 1 \|$/.test(l)),
      out.join('\n'),
    );
  });
});
