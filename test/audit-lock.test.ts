/**
 * An audit store in trouble fails fast and loud (issue 11, "Lock"), with the
 * gateway as its own process: while an outside process holds the SQLite
 * write lock (as a backup tool would), each of alice's calls is refused
 * within the write budget, /healthz answers as fast as it did unloaded,
 * /readyz says not ready (without a path), the log names the cause
 * (SQLITE_BUSY); on release service resumes and `behalf audit verify`
 * passes on the file. Positive control: the same calls succeed before the
 * lock and after it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  aliceHeaders,
  gatewaySetup,
  holdWriteLock,
  percentile,
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
const LOCK_MS = 10_000;
const AUDIT_REFUSED = { code: -32603, message: 'Request refused: audit log unavailable' };

const result = (r: RawResponse) => (r.json as { result?: unknown } | undefined)?.result;
const error = (r: RawResponse) => (r.json as { error?: unknown } | undefined)?.error;

describe('an outside write lock on the audit database (gateway as its own process)', () => {
  const dir = tempDir();
  let setup: GatewaySetup;
  let gw: GatewayProcess;
  let headers: Record<string, string>;
  let session: string;

  before(async () => {
    setup = await gatewaySetup(THIS_ROOT, dir, { writeBudgetMs: BUDGET_MS });
    gw = await startGatewayProcess(setup);
    headers = await aliceHeaders(setup, gw.url);
    session = await openSession(gw.url, headers);
  });
  after(async () => {
    await gw?.stop();
    await setup?.idp.close();
  });

  it('refuses calls within the budget while /healthz stays fast, then serves again with the chain intact', async (t) => {
    // Positive control, and the unloaded figures the locked ones are compared with.
    for (let i = 0; i < 10; i++)
      assert.ok(result((await timedCall(gw.url, headers, session)).r), 'call before the lock');
    const unloaded: number[] = [];
    for (let i = 0; i < 20; i++) unloaded.push((await timedGet(`${gw.origin}/healthz`)).ms);
    const ready = await timedGet(`${gw.origin}/readyz`);
    assert.equal(ready.r.status, 200, ready.r.text);

    const lock = await holdWriteLock(setup.auditPath, LOCK_MS);
    const lockedAt = performance.now();
    const refused: number[] = [];
    const health: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        health.push((await timedGet(`${gw.origin}/healthz`)).ms);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    let notReady: RawResponse | undefined;
    // Calls for most of the lock, leaving a margin so none straddles the release.
    while (performance.now() - lockedAt < LOCK_MS - 2_000) {
      const { ms, r } = await timedCall(gw.url, headers, session);
      assert.deepEqual(error(r), AUDIT_REFUSED, `a call under the lock must be refused: ${r.text}`);
      refused.push(ms);
      if (!notReady && refused.length >= 2) notReady = (await timedGet(`${gw.origin}/readyz`)).r;
    }
    polling = false;
    await poller;

    // Each refusal within the budget plus the call's own work: a ratio, not a wall-clock guess.
    const worst = Math.max(...refused);
    assert.ok(refused.length >= 10, `only ${refused.length} calls in ${LOCK_MS - 2000} ms`);
    assert.ok(worst <= BUDGET_MS * 2, `slowest refusal ${worst.toFixed(1)} ms, budget ${BUDGET_MS} ms`);
    assert.ok(percentile(refused, 50) >= BUDGET_MS * 0.9, 'refusals come at the budget, not before it');
    const maxUnloaded = Math.max(...unloaded);
    const maxLocked = Math.max(...health);
    t.diagnostic(
      `refusals: ${refused.length}, median ${percentile(refused, 50).toFixed(1)} ms, max ${worst.toFixed(1)} ms (budget ${BUDGET_MS}); /healthz locked: median ${percentile(health, 50).toFixed(1)} max ${maxLocked.toFixed(1)} ms, unloaded: median ${percentile(unloaded, 50).toFixed(1)} max ${maxUnloaded.toFixed(1)} ms`,
    );
    assert.ok(health.length >= 40, `only ${health.length} /healthz answers during the lock`);
    assert.ok(
      maxLocked <= Math.max(50, 10 * maxUnloaded),
      `/healthz under the lock: max ${maxLocked.toFixed(1)} ms (median ${percentile(health, 50).toFixed(1)}); unloaded max ${maxUnloaded.toFixed(1)} ms`,
    );

    assert.equal(notReady?.status, 503, notReady?.text);
    const body = notReady?.json as { status: string; reason: string; checks: Record<string, { ready: boolean }> };
    assert.deepEqual([body.status, body.reason], ['not ready', 'audit store locked']);
    assert.deepEqual(body.checks.audit, { ready: false, reason: 'audit store locked' });
    assert.ok(!notReady.text.includes(dir), '/readyz names no path');
    const locked = gw.log.find((l) => l.includes('is locked by another connection'));
    assert.ok(locked?.includes(setup.auditPath) && locked.includes('SQLITE_BUSY'), gw.log.join('\n'));
    assert.ok(
      gw.log.some((l) => /^audit write failed: .*SQLITE_BUSY/.test(l)),
      'each refusal logs its cause',
    );

    await lock.released;
    const resumedBy = performance.now() + 3_000;
    let resumed = false;
    while (!resumed && performance.now() < resumedBy) resumed = !!result((await timedCall(gw.url, headers, session)).r);
    assert.ok(resumed, 'service resumes once the lock is released');
    for (let i = 0; i < 10; i++) assert.ok(result((await timedCall(gw.url, headers, session)).r), 'call after release');
    assert.equal((await timedGet(`${gw.origin}/readyz`)).r.status, 200);
    assert.ok(gw.log.some((l) => l.includes('is writable again')));

    await gw.stop();
    const v = verifyAudit(THIS_ROOT, setup.auditPath);
    assert.equal(v.status, 0, v.out);
  });
});
