/**
 * The audit database moved away while the gateway runs (issue 11, "Moved
 * file"), with the gateway as its own process: the next call is refused and
 * the log says so loudly, once, with the path, what changed and the last
 * head written there; /readyz says not ready. After a restart the gateway
 * starts a new chain at the configured path whose first record says why,
 * and `behalf audit verify` passes on both files. Positive control: calls
 * before the move and after the restart succeed. Also: the files are 0600.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { GENESIS } from '../src/audit/chain.js';
import {
  aliceHeaders,
  gatewaySetup,
  startGatewayProcess,
  THIS_ROOT,
  timedCall,
  timedGet,
  verifyAudit,
  type GatewayProcess,
  type GatewaySetup,
} from './helpers/gateway-process.js';
import { openSession, type RawResponse } from './helpers/raw-http.js';
import { tempDir } from './helpers/tmp.js';

const BUDGET_MS = 200;
const AUDIT_REFUSED = { code: -32603, message: 'Request refused: audit log unavailable' };
const result = (r: RawResponse) => (r.json as { result?: unknown } | undefined)?.result;

function firstRecord(db: string): Record<string, unknown> {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return d.prepare('SELECT * FROM audit_events ORDER BY seq LIMIT 1').get() as Record<string, unknown>;
  } finally {
    d.close();
  }
}

describe('the audit database moved away under a running gateway (its own process)', () => {
  const dir = tempDir();
  const away = join(dir, 'moved');
  let setup: GatewaySetup;
  let gw: GatewayProcess | undefined;
  after(async () => {
    await gw?.stop();
    await setup?.idp.close();
  });

  it('refuses calls with one loud log line, and after a restart continues in a new chain that says why', async () => {
    setup = await gatewaySetup(THIS_ROOT, dir, { writeBudgetMs: BUDGET_MS });
    gw = await startGatewayProcess(setup);
    const headers = await aliceHeaders(setup, gw.url);
    const session = await openSession(gw.url, headers);
    for (let i = 0; i < 5; i++)
      assert.ok(result((await timedCall(gw.url, headers, session)).r), 'call before the move');
    // The first chain of a new file says so (a first start here).
    assert.equal(firstRecord(setup.auditPath).outcome, 'new chain');

    const files = readdirSync(dir).filter((f) => f.startsWith('audit.db'));
    assert.deepEqual(files.sort(), ['audit.db', 'audit.db-shm', 'audit.db-wal']);
    for (const f of files) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is private`);

    mkdirSync(away);
    for (const f of files) renameSync(join(dir, f), join(away, f));
    for (let i = 0; i < 3; i++) {
      const { ms, r } = await timedCall(gw.url, headers, session);
      assert.deepEqual((r.json as { error?: unknown }).error, AUDIT_REFUSED, r.text);
      assert.ok(ms <= BUDGET_MS * 2, `refused in ${ms.toFixed(1)} ms`);
    }
    const ready = await timedGet(`${gw.origin}/readyz`);
    assert.equal(ready.r.status, 503);
    const { status, reason } = ready.r.json as { status?: string; reason?: string };
    assert.deepEqual({ status, reason }, { status: 'not ready', reason: 'audit store moved, deleted or replaced' });
    assert.ok(!ready.r.text.includes(dir), '/readyz names no path');
    const loud = gw.log.filter((l) => l.startsWith('AUDIT STORE REFUSING ALL WRITES'));
    assert.equal(loud.length, 1, gw.log.join('\n'));
    assert.ok(loud[0]!.includes(setup.auditPath) && loud[0]!.includes('moved or deleted'), loud[0]);
    const head = /seq (\d+) hash ([0-9a-f]{64})/.exec(loud[0]!);
    assert.ok(head, loud[0]);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('audit.db')),
      [],
      'nothing written at the path',
    );
    await gw.stop();

    // The moved trail is whole, and ends at the head the log named.
    const old = verifyAudit(THIS_ROOT, join(away, 'audit.db'));
    assert.equal(old.status, 0, old.out);
    assert.match(old.out, new RegExp(`head ${head[1]} ${head[2]}`));

    gw = await startGatewayProcess(setup);
    const again = await aliceHeaders(setup, gw.url);
    const next = await openSession(gw.url, again);
    for (let i = 0; i < 5; i++) assert.ok(result((await timedCall(gw.url, again, next)).r), 'call after the restart');
    assert.equal((await timedGet(`${gw.origin}/readyz`)).r.status, 200);
    await gw.stop();
    gw = undefined;
    const first = firstRecord(setup.auditPath);
    assert.equal(first.seq, 1);
    assert.equal(first.prev_hash, GENESIS);
    assert.equal(first.kind, 'lifecycle');
    assert.match(String(first.reason), /^new chain: .*moved, deleted or replaced/);
    const fresh = verifyAudit(THIS_ROOT, setup.auditPath);
    assert.equal(fresh.status, 0, fresh.out);
    assert.equal(statSync(setup.auditPath).mode & 0o777, 0o600);
  });
});
