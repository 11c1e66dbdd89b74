/**
 * `behalf policy replay` throughput: a trail of 100,000 decision records of
 * the quickstart's users (reads, lists, step-up updates, exports) is written
 * to an SQLite file, then replayed against a widened quickstart policy in
 * process (the store read and the re-decision timed apart) and through the
 * CLI as a whole (process start, policy load, store read, report). Reported
 * as records per second.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { DEMO_USERS, userClaims } from '../demo/quickstart/users.js';
import type { AuditEvent, AuditRecord } from '../src/audit/event.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { compilePolicy } from '../src/policy/policy.js';
import { Replayer } from '../src/policy/replay/decide.js';
import { ReplayTally } from '../src/policy/replay/report.js';
import { tempDir } from '../test/helpers/tmp.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const WIDE = DEMO_POLICY.map((r) => (r.id === 'reps-read-own' ? { ...r, when: 'user.claims.role == "rep"' } : r));

/** The i-th record of a mixed trail: who calls is i mod 3, what is i mod 4; decisions as the demo policy made them. */
function event(i: number): AuditEvent {
  const user = DEMO_USERS[i % 3]!;
  const claims = userClaims(user);
  const customer = `c-${[100, 200][i % 2]! + (i % 5)}`;
  const calls = [
    { target: 'get_customer', args: { customer_id: customer } },
    { target: 'list_customers', args: { owner: user.name } },
    { target: 'update_customer', args: { customer_id: customer, notes: '[redacted string 12]' } },
    { target: 'export_all_customers', args: {} },
  ] as const;
  const call = calls[i % 4]!;
  const owns = (claims.customers as string[]).includes(customer);
  const manager = claims.role === 'manager';
  const allow =
    call.target === 'get_customer'
      ? owns || manager
      : call.target === 'list_customers'
        ? true
        : manager && call.target === 'export_all_customers';
  return {
    ts: 1_700_000_000_000 + i,
    kind: 'decision',
    callId: `0f8fad5b-d9cb-469f-a165-${String(i).padStart(12, '0')}`,
    route: 'crm',
    upstream: 'crm',
    transport: 'streamable-http',
    clientId: 'agent',
    clientMethod: 'api-key',
    credentialId: 'k1',
    userIssuer: 'http://127.0.0.1:9000',
    userSubject: user.name,
    tokenFingerprint: '3d5d9101dd2e2559',
    method: 'tools/call',
    target: call.target,
    args: JSON.stringify(call.args),
    decision: call.target === 'update_customer' ? 'deny' : allow ? 'allow' : 'deny',
    ruleIds: [],
    reason:
      call.target === 'update_customer' ? 'insufficient scope' : allow ? 'allowed by rule' : 'no rule allows this',
    policyVersion: '4a03f07114d8cdba',
    userScopes: 'mcp:tools',
    userClaims: JSON.stringify({ claims, absent: [] }),
  };
}

export interface ReplayThroughput {
  records: number;
  /** Reading the store alone (SQLite pages, rows to records). */
  readPerSecond: number;
  /** Re-deciding and tallying records already read. */
  decidePerSecond: number;
  cliPerSecond: number;
  cliSeconds: number;
  newAllows: number;
  undecidable: number;
}

export async function benchPolicyReplay(n = 100_000): Promise<ReplayThroughput> {
  const dir = tempDir('behalf-bench-replay-');
  const db = join(dir, 'audit.db');
  const writer = new SqliteAuditStore(db, { durability: 'normal', writeBudgetMs: 60_000 });
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    pending.push(writer.append(event(i), { deferrable: true }));
    if (pending.length >= 500) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await writer.close();
  const policy = compilePolicy({ rules: WIDE, rateLimits: [], methods: {} }, ['crm']);
  // Read and decide apart: what the store costs to read is not the replay's.
  const reader = new SqliteAuditStore(db, { readonly: true });
  const records: AuditRecord[] = [];
  const t0 = performance.now();
  for await (const r of reader.records(1)) records.push(r);
  const readMs = performance.now() - t0;
  await reader.close();
  const t1 = performance.now();
  const replayer = new Replayer(policy);
  const tally = new ReplayTally({ version: policy.version }, 'new-allows');
  for (const r of records) tally.add(r, replayer.replay(r));
  const decideMs = performance.now() - t1;
  const report = tally.result();
  const file = join(dir, 'wide.yaml');
  writeFileSync(file, stringify({ rules: WIDE }));
  const t2 = performance.now();
  const cli = spawnSync(process.execPath, [MAIN, 'policy', 'replay', '--policy', file, '--db', db, '--json'], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const cliMs = performance.now() - t2;
  if (cli.status !== 1) throw new Error(`replay CLI: exit ${cli.status}: ${cli.stderr}`);
  return {
    records: report.records,
    readPerSecond: Math.round(report.records / (readMs / 1000)),
    decidePerSecond: Math.round(report.records / (decideMs / 1000)),
    cliPerSecond: Math.round(report.records / (cliMs / 1000)),
    cliSeconds: Number((cliMs / 1000).toFixed(2)),
    newAllows: report.newAllows,
    undecidable: report.undecidable.count,
  };
}
