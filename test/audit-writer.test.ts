/**
 * The SQLite store's writer thread, in process: the files are private, a
 * failure's SQLite code survives the thread boundary, a moved or replaced
 * file is refused (also with no traffic, within about a second), the queue
 * is bounded, and close() drains what was accepted into one verifiable
 * chain.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { verifyChain } from '../src/audit/chain.js';
import type { AuditEvent } from '../src/audit/event.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { batchError, fromWire, toWire } from '../src/audit/writer-protocol.js';
import { describeError } from '../src/errors.js';
import { holdWriteLock } from './helpers/gateway-process.js';
import { tempDir } from './helpers/tmp.js';

const ev = (i: number): AuditEvent => ({
  ts: 1_700_000_000_000 + i,
  kind: 'decision',
  target: `t${i}`,
  decision: 'allow',
});

async function opened(o: { maxPendingWrites?: number } = {}) {
  const dir = tempDir();
  const path = join(dir, 'audit.db');
  const log: string[] = [];
  const store = new SqliteAuditStore(path, { writeBudgetMs: 200, log: (l) => log.push(l), ...o });
  await store.startWriter();
  return { dir, path, log, store };
}

async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!pred() && performance.now() < end) await new Promise((r) => setTimeout(r, 20));
  return pred();
}

describe('the audit writer thread', () => {
  it('creates the database, its WAL and its shared-memory file 0600, whatever the umask lets through', async () => {
    const umask = process.umask(0o022);
    try {
      const { dir, store } = await opened();
      await store.append(ev(1));
      const files = readdirSync(dir).sort();
      assert.deepEqual(files, ['audit.db', 'audit.db-shm', 'audit.db-wal']);
      for (const f of files) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
      await store.close();
    } finally {
      process.umask(umask);
    }
  });

  it('a failure crosses the thread with its SQLite code, and the log line names it', async () => {
    const full = Object.assign(new Error('database or disk is full'), { name: 'SqliteError', code: 'SQLITE_FULL' });
    const back = batchError(toWire(full));
    assert.equal(back.code, 'store_unavailable');
    assert.match(describeError(back), /SQLITE_FULL.*cause: SqliteError: database or disk is full \(SQLITE_FULL\)/);
    assert.equal((fromWire(toWire(full)) as { code?: string }).code, 'SQLITE_FULL');

    // For real: a lock held by another process, seen by the thread as SQLITE_BUSY.
    const { path, store, log } = await opened();
    await store.append(ev(1));
    const lock = await holdWriteLock(path, 5_000);
    try {
      // Refused by the budget's clock, or by the thread's own failed wait for the lock: whichever says so first.
      await assert.rejects(store.append(ev(2)), /not confirmed within 200 ms|SQLITE_BUSY/);
      const err = await store.append(ev(3)).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.match(describeError(err), /store_locked: .*SQLITE_BUSY/);
      assert.ok(
        log.some((l) => l.includes('is locked by another connection') && l.includes('SQLITE_BUSY')),
        log.join('\n'),
      );
      assert.deepEqual(store.health(), { ready: false, reason: 'audit store locked' });
    } finally {
      await lock.release();
    }
    assert.equal((await store.append(ev(4))).seq, 2, 'refused records were not written; the chain goes on');
    assert.deepEqual(store.health(), { ready: true });
    await store.close();
  });

  it('notices a moved file within about a second with no traffic, logs it once, and refuses every append', async () => {
    const { dir, path, store, log } = await opened();
    const last = await store.append(ev(1));
    for (const f of readdirSync(dir)) renameSync(join(dir, f), join(dir, `moved-${f}`));
    assert.ok(await until(() => !store.health().ready, 2_500), 'the once-a-second check saw it');
    assert.deepEqual(store.health(), { ready: false, reason: 'audit store moved, deleted or replaced' });
    const started = performance.now();
    await assert.rejects(store.append(ev(2)), /AUDIT STORE REFUSING ALL WRITES/);
    assert.ok(performance.now() - started < 50, 'refused at once: nothing to wait for');
    const loud = log.filter((l) => l.startsWith('AUDIT STORE REFUSING ALL WRITES'));
    assert.equal(loud.length, 1);
    assert.ok(loud[0]!.includes(path) && loud[0]!.includes(`seq 1 hash ${last.hash}`), loud[0]);
    await store.close();
    assert.deepEqual(
      readdirSync(dir).filter((f) => !f.startsWith('moved-')),
      [],
    );
  });

  it('refuses to write into a file replaced by another one at the path (checked before the batch)', async () => {
    const { dir, path, store, log } = await opened();
    await store.append(ev(1));
    copyFileSync(path, join(dir, 'other.db'));
    renameSync(join(dir, 'other.db'), path);
    await assert.rejects(store.append(ev(2)), /replaced/);
    assert.ok(log.some((l) => l.includes('replaced: another file at the path')));
    assert.throws(() => store.appendSync(ev(3)), /replaced/, 'the synchronous path checks too');
    await store.close();
  });

  it('bounds what waits on a stuck writer: past maxPendingWrites an append is refused at once', async () => {
    const { path, store } = await opened({ maxPendingWrites: 4 });
    await store.append(ev(0));
    const lock = await holdWriteLock(path, 5_000);
    try {
      const waiting = [1, 2, 3, 4].map((i) => store.append(ev(i)).catch((e: unknown) => e));
      const started = performance.now();
      await assert.rejects(store.append(ev(5)), /queue full/);
      assert.ok(performance.now() - started < 50);
      for (const e of await Promise.all(waiting))
        assert.match(describeError(e), /not confirmed within 200 ms|SQLITE_BUSY/);
    } finally {
      await lock.release();
    }
    await store.close();
  });

  it('a deferrable record (an outcome) rides with the next record something waits on, or is written alone within a few ms', async () => {
    const { store } = await opened();
    const started = performance.now();
    const alone = await store.append(ev(1), { deferrable: true });
    assert.equal(alone.seq, 1);
    assert.ok(performance.now() - started < 150, 'a deferrable record waits only briefly');
    const later = store.append(ev(2), { deferrable: true });
    const now = await store.append(ev(3));
    assert.deepEqual([(await later).seq, now.seq], [2, 3], 'queued order is chain order');
    await store.close();
  });

  it('close() writes everything accepted before it, as one chain', async () => {
    const { path, store } = await opened();
    const pending = Array.from({ length: 300 }, (_, i) => store.append(ev(i)));
    await store.close();
    const records = await Promise.all(pending);
    assert.deepEqual(
      records.map((r) => r.seq),
      records.map((_, i) => i + 1),
    );
    const reader = new SqliteAuditStore(path, { readonly: true });
    const report = await verifyChain(reader.records());
    await reader.close();
    assert.equal(report.ok, true);
    assert.equal(report.count, 300);
    assert.equal(report.head?.hash, records.at(-1)!.hash);
  });
});
