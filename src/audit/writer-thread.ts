import { Worker } from 'node:worker_threads';
import { BehalfError, describeError } from '../errors.js';
import { linked, type Prepared } from './chain-writer.js';
import { DeadlineClock, type Timed } from './deadline-clock.js';
import type { AuditEvent, AuditHealth, AuditRecord } from './event.js';
import { WriterHealth } from './writer-health.js';
import { Outbox, type Queued } from './writer-outbox.js';
import { batchError, fromWire, type FromWriter, type WriterOptions } from './writer-protocol.js';

/** Time a new writer thread has to open the database before every record waiting on it is refused. */
const STARTUP_MS = 10_000;
/** close() waits this long beyond the budget for the queue to drain, then stops the thread. */
const CLOSE_GRACE_MS = 5_000;

export interface WriterThreadOptions extends WriterOptions {
  /** Records accepted and not yet answered by the thread; past it an append is refused at once. */
  maxPending: number;
  log: (line: string) => void;
}

interface Waiting extends Queued {
  fields: AuditEvent;
  prepared: Prepared;
  resolve: (r: AuditRecord) => void;
  reject: (e: unknown) => void;
  done: boolean;
}

interface Batch extends Timed {
  entries: Waiting[];
  /** drained() callers waiting for this batch. */
  onSettle?: Array<() => void>;
}

/**
 * The store's side of its writer thread (sqlite-worker.ts). An append is
 * queued, sent with others in one message (writer-outbox.ts says when),
 * and answered by the thread — or refused when its budget runs out first,
 * when too many are pending, or for good once the file was moved or the
 * thread failed. Nothing here waits on SQLite: the event loop only posts
 * and settles.
 */
export class WriterThread {
  private worker?: Worker;
  private started?: Promise<void>;
  private ready = false;
  /** performance.now() when the thread had opened the file: no budget runs before it. */
  private readyAt = 0;
  private readonly outbox = new Outbox<Waiting>((entries, since) => this.post(entries, since));
  private readonly inflight = new Map<number, Batch>();
  /** Refuses the callers of a batch the thread has not answered within the budget. */
  private readonly clock = new DeadlineClock<Batch>((b) => this.expire(b));
  private pending = 0;
  private nextId = 1;
  private failure?: BehalfError;
  private readonly condition: WriterHealth;
  private closing?: Promise<void>;
  private exited = false;

  constructor(private readonly o: WriterThreadOptions) {
    this.condition = new WriterHealth(o.path, o.budgetMs, o.log);
  }

  /** Starts the thread (once); resolves when it has opened the database. */
  start(): Promise<void> {
    this.started ??= new Promise<void>((resolve, reject) => {
      const worker = new Worker(new URL('./sqlite-worker.js', import.meta.url), {
        workerData: {
          path: this.o.path,
          durability: this.o.durability,
          budgetMs: this.o.budgetMs,
          identity: this.o.identity,
        } satisfies WriterOptions,
      });
      this.worker = worker;
      this.condition.heard();
      const startup = setTimeout(
        () => this.fail('audit writer thread did not start', 'audit writer thread did not start in time'),
        STARTUP_MS,
      );
      startup.unref();
      worker.on('message', (m: FromWriter) => {
        this.condition.heard();
        if (m.t === 'ready') {
          clearTimeout(startup);
          this.ready = true;
          this.readyAt = performance.now();
          // Held while starting (a gateway awaits it before listening); from here on only while records wait.
          if (this.pending === 0) worker.unref();
          this.outbox.flush();
          resolve();
        } else if (m.t === 'open-failed') {
          clearTimeout(startup);
          reject(this.fail('audit writer thread stopped', 'cannot open the audit database', fromWire(m.error)));
        } else this.onMessage(m);
      });
      worker.on('error', (err) => {
        clearTimeout(startup);
        reject(this.fail('audit writer thread stopped', 'the audit writer thread failed', err));
      });
      worker.on('exit', (code) => {
        clearTimeout(startup);
        this.exited = true;
        if (!this.closing) reject(this.fail('audit writer thread stopped', `the audit writer thread exited (${code})`));
      });
    });
    return this.started;
  }

  /** Queues a record; a deferrable one is one nothing waits on (writer-outbox.ts). */
  append(fields: AuditEvent, prepared: Prepared, deferrable = false): Promise<AuditRecord> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new BehalfError('store_unavailable', 'audit store closed'));
    if (this.pending >= this.o.maxPending)
      return Promise.reject(
        new BehalfError('store_unavailable', `audit write queue full: ${this.pending} records waiting on the writer`),
      );
    // Started here too for stores used without the gateway (key commands); a failed start refuses this record.
    if (!this.started)
      this.start().catch((err: unknown) =>
        this.fail('audit writer thread stopped', 'audit writer failed to start', err),
      );
    return new Promise((resolve, reject) => {
      if (this.pending++ === 0) this.worker?.ref();
      this.outbox.add({ fields, prepared, at: performance.now(), deferrable, resolve, reject, done: false });
    });
  }

  /**
   * Sends a batch, its deadline a budget after `since`. Before the thread
   * has opened the file nothing is sent: records wait for it (at most
   * STARTUP_MS), and their budgets run from when it has, so every budget
   * is spent on writing, not on starting.
   */
  private post(entries: Waiting[], since: number): boolean {
    if (!this.worker || !this.ready) return false;
    const id = this.nextId++;
    const batch: Batch = { entries, due: Math.max(since, this.readyAt) + this.o.budgetMs, open: true };
    this.inflight.set(id, batch);
    this.clock.add(batch);
    this.worker.postMessage({
      t: 'append',
      id,
      deadline: Date.now() + (batch.due - performance.now()),
      records: entries.map((e) => e.prepared),
    });
    return true;
  }

  private expire(b: Batch): void {
    const err = this.condition.timedOut();
    this.settle(b, (e) => settleEntry(e, undefined, err));
  }

  /** Answers a batch's callers once: by the thread, or by the clock, whichever comes first. */
  private settle(b: Batch, each: (e: Waiting, i: number) => void): void {
    if (!b.open) return;
    b.open = false;
    b.entries.forEach(each);
    for (const f of b.onSettle ?? []) f();
    this.outbox.settled();
  }

  /** The thread's answer: a batch stays counted as pending until here, so the thread's backlog is what is bounded. */
  private answered(id: number, each: (e: Waiting, i: number) => void): void {
    const b = this.inflight.get(id);
    if (!b) return;
    this.inflight.delete(id);
    this.settle(b, each);
    this.pending -= b.entries.length;
    if (this.pending === 0 && !this.closing) this.worker?.unref();
  }

  private onMessage(m: FromWriter): void {
    switch (m.t) {
      case 'done':
        this.condition.committed();
        this.answered(m.id, (e, i) => settleEntry(e, linked(e.fields, m.links[i]!)));
        return;
      case 'failed': {
        const err = batchError(m.error);
        this.answered(m.id, (e) => settleEntry(e, undefined, err));
        return;
      }
      case 'expired': {
        const err = new BehalfError('store_unavailable', `audit write not started within ${this.o.budgetMs} ms`);
        this.answered(m.id, (e) => settleEntry(e, undefined, err));
        return;
      }
      case 'state':
        return this.condition.state(m.state, m.error);
      case 'moved':
        this.fail(
          'audit store moved, deleted or replaced',
          `AUDIT STORE REFUSING ALL WRITES: ${this.o.path} was ${m.detail}. Last record written there: seq ${m.head.seq} hash ${m.head.hash}. Every call is refused until the gateway restarts; it then starts a new chain at ${this.o.path}`,
        );
        return;
      default:
        return;
    }
  }

  /** Permanent: every waiting and future record is refused, and the reason logged loudly, once. */
  private fail(reason: string, line: string, cause?: unknown): BehalfError {
    if (this.failure) return this.failure;
    const error = new BehalfError('store_unavailable', line, {}, cause === undefined ? undefined : { cause });
    this.failure = error;
    this.condition.stop(reason);
    this.o.log(cause === undefined ? line : `${line}: ${describeError(cause)}`);
    for (const e of this.outbox.takeAll()) settleEntry(e, undefined, error);
    for (const b of this.inflight.values()) this.settle(b, (e) => settleEntry(e, undefined, error));
    return error;
  }

  health(): AuditHealth {
    return this.closing ? { ready: false, reason: 'audit store closed' } : this.condition.report(!!this.worker);
  }

  /** Resolves when every record accepted so far is written or refused. */
  async drained(): Promise<void> {
    for (;;) {
      this.outbox.flush(true);
      const open = [...this.inflight.values()].filter((b) => b.open);
      if (!open.length) return;
      await Promise.all(open.map((b) => new Promise<void>((r) => (b.onSettle ??= []).push(r))));
    }
  }

  /** Writes what was accepted (each record still within its budget), then stops the thread; undefined when it never started. */
  close(): Promise<void> | undefined {
    const worker = this.worker;
    if (!worker) return undefined;
    this.closing ??= new Promise<void>((resolve) => {
      const done = () => {
        this.clock.stop();
        const closed = new BehalfError('store_unavailable', 'audit store closed');
        this.outbox.stop();
        for (const e of this.outbox.takeAll()) settleEntry(e, undefined, closed);
        for (const b of this.inflight.values()) this.settle(b, (e) => settleEntry(e, undefined, closed));
        this.inflight.clear();
        resolve();
      };
      if (this.exited) return done();
      this.outbox.flush(true);
      worker.ref();
      // A thread stuck in I/O must not hold the gateway's shutdown forever.
      const force = setTimeout(() => void worker.terminate(), this.o.budgetMs + CLOSE_GRACE_MS);
      worker.on('message', (m: FromWriter) => m.t === 'closed' && void worker.terminate());
      worker.once('exit', () => {
        clearTimeout(force);
        done();
      });
      worker.postMessage({ t: 'close' });
    });
    return this.closing;
  }
}

function settleEntry(e: Waiting, rec?: AuditRecord, err?: unknown): void {
  if (e.done) return;
  e.done = true;
  if (rec) e.resolve(rec);
  else e.reject(err);
}
