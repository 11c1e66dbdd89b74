import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { BehalfError, describeError } from '../errors.js';
import { linked, type Prepared } from './chain-writer.js';
import { DeadlineClock } from './deadline-clock.js';
import type { AuditEvent, AuditHealth, AuditRecord } from './event.js';
import { appendBatch, type PgPending } from './pg-chain.js';

/** A deferrable record waits at most this long for a record to travel with (as with SQLite's writer thread). */
const LINGER_MS = 20;
/** While PostgreSQL is unreachable, a reconnect is tried this often; while idle, the connection is probed as often. */
const TICK_MS = 500;
/** Records per transaction at most: a transaction holds the fleet's head lock, so it is kept short. */
const MAX_BATCH = 1000;

export interface PgWriterOptions {
  connectionString: string;
  /** host:port/database, for log lines (never the URL: it may hold a password). */
  where: string;
  budgetMs: number;
  maxPending: number;
  log: (line: string) => void;
}

interface Entry extends PgPending {
  due: number;
  fields: AuditEvent;
  deferrable: boolean;
  resolve: (r: AuditRecord) => void;
  reject: (e: unknown) => void;
}

/**
 * Writes records into the fleet's chain over one connection of its own
 * (pg-chain.ts does one transaction). Group commit: records that arrive
 * while a transaction runs go together in the next one.
 *
 * Fail closed, lose nothing, store nothing twice:
 * - a record something waits on (a decision) is refused when it is not
 *   committed within the budget, or at once while PostgreSQL is known to be
 *   unreachable; its call is then refused. It is never tried again: the
 *   caller has its answer. When a COMMIT got no answer, the trail may hold
 *   the decision of a call that was refused, never the reverse;
 * - a deferrable record (an outcome: its call was answered already) is kept
 *   and tried again, after a lost connection too, until written; it is
 *   looked up by its rid first, so a COMMIT that did land is not repeated.
 *   At most maxPending records wait; past that a new one is refused.
 * - the connection is replaced after any failure; while it cannot be had,
 *   a reconnect is tried every TICK_MS, and service resumes by itself.
 */
export class PgWriter {
  private client?: pg.Client;
  private queue: Entry[] = [];
  private running = false;
  private scheduled = false;
  private linger?: NodeJS.Timeout;
  private readonly ticker: NodeJS.Timeout;
  private readonly clock = new DeadlineClock<Entry>((e) => this.expire(e));
  private unreachable?: string;
  private lastTimeout = 0;
  private lastSuccess = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly o: PgWriterOptions) {
    this.ticker = setInterval(() => void this.tick(), TICK_MS);
    this.ticker.unref();
  }

  /** Connects (the gateway awaits this before it listens). */
  async start(): Promise<void> {
    await this.connection();
  }

  append(fields: AuditEvent, prepared: Prepared, deferrable: boolean): Promise<AuditRecord> {
    if (this.closed) return Promise.reject(new BehalfError('store_unavailable', 'audit store closed'));
    if (!deferrable && this.unreachable)
      return Promise.reject(
        new BehalfError('store_unavailable', `audit store PostgreSQL ${this.o.where} unreachable: ${this.unreachable}`),
      );
    if (this.queue.length >= this.o.maxPending)
      return Promise.reject(
        new BehalfError('store_unavailable', `audit write queue full: ${this.queue.length} records waiting`),
      );
    return new Promise((resolve, reject) => {
      const e: Entry = {
        fields,
        prepared,
        deferrable,
        rid: randomBytes(16).toString('base64url'),
        retried: false,
        open: true,
        // A deferrable record has no deadline: it waits until written (at most maxPending of them).
        due: deferrable ? Infinity : performance.now() + this.o.budgetMs,
        resolve,
        reject,
      };
      this.queue.push(e);
      if (!deferrable) this.clock.add(e);
      this.schedule(deferrable);
    });
  }

  private schedule(deferrable: boolean): void {
    if (this.scheduled) return;
    if (!deferrable) {
      this.scheduled = true;
      clearTimeout(this.linger);
      this.linger = undefined;
      queueMicrotask(() => void this.run());
    } else if (!this.linger) {
      this.linger = setTimeout(() => void this.run(), LINGER_MS);
    }
  }

  private expire(e: Entry): void {
    this.lastTimeout = Date.now();
    settle(
      e,
      undefined,
      new BehalfError(
        'store_unavailable',
        `audit write not confirmed within ${this.o.budgetMs} ms by PostgreSQL ${this.o.where}${this.unreachable ? ` (unreachable: ${this.unreachable})` : ''}`,
      ),
    );
  }

  /** One transaction with everything queued (a refused record leaves here unwritten); again while more waits. */
  private async run(): Promise<void> {
    this.scheduled = false;
    clearTimeout(this.linger);
    this.linger = undefined;
    if (this.running) return;
    this.queue = this.queue.filter((e) => e.open);
    if (!this.queue.length || (this.unreachable && !this.client)) return this.idle();
    this.running = true;
    const batch = this.queue.splice(0, MAX_BATCH);
    try {
      const client = await this.connection();
      const links = await appendBatch(client, batch);
      this.succeeded();
      for (const e of batch) {
        const link = links.get(e);
        if (link) settle(e, linked(e.fields, link));
      }
    } catch (err) {
      this.failed(err);
      // Outcomes go back to the front, to be looked up by rid and written once PostgreSQL answers again.
      const again = batch.filter((e) => e.deferrable && e.open);
      for (const e of again) e.retried = true;
      this.queue.unshift(...again);
      const error = new BehalfError(
        'store_unavailable',
        `audit batch not written to PostgreSQL ${this.o.where}`,
        {},
        { cause: err },
      );
      for (const e of batch) if (!e.deferrable) settle(e, undefined, error);
    } finally {
      this.running = false;
    }
    if (this.queue.length && !this.unreachable) return this.run();
    this.idle();
  }

  private idle(): void {
    if (this.running || (this.queue.length && !this.unreachable)) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = new pg.Client({
      connectionString: this.o.connectionString,
      application_name: 'behalf-audit',
      connectionTimeoutMillis: Math.max(1000, this.o.budgetMs * 5),
      // A PostgreSQL that stops answering (not refusing) must not hold the writer for ever.
      query_timeout: Math.max(2000, this.o.budgetMs * 10),
      keepAlive: true,
    });
    // An idle connection that drops emits 'error': without a listener it would end the process.
    client.on('error', (err) => this.failed(err));
    client.on('end', () => {
      if (this.client === client) this.client = undefined;
    });
    try {
      await client.connect();
      // Waiting for the fleet's head lock is bounded by the budget: past it the caller has been refused anyway.
      await client.query(`SET lock_timeout = ${Math.max(1, Math.trunc(this.o.budgetMs))}`);
    } catch (err) {
      endQuietly(client);
      throw err;
    }
    this.client = client;
    return client;
  }

  private succeeded(): void {
    this.lastSuccess = Date.now();
    if (!this.unreachable) return;
    this.unreachable = undefined;
    this.o.log(
      `audit store PostgreSQL ${this.o.where} is reachable again: calls are served; ${this.queue.length} waiting records are being written`,
    );
  }

  /** Any failure: the connection is dropped (its transaction's state is unknown) and, the first time, said loudly. */
  private failed(err: unknown): void {
    const client = this.client;
    this.client = undefined;
    if (client) endQuietly(client);
    if (this.closed) return;
    const cause = describeError(err);
    if (!this.unreachable)
      this.o.log(
        `AUDIT STORE UNREACHABLE: PostgreSQL ${this.o.where} (${cause}): every call is refused until it answers again; ${this.queue.filter((e) => e.deferrable).length} outcome records wait to be written`,
      );
    this.unreachable = cause;
    // Decisions still queued are refused now rather than at their budget: nothing can write them.
    const error = new BehalfError('store_unavailable', `audit store PostgreSQL ${this.o.where} unreachable: ${cause}`);
    for (const e of this.queue) if (!e.deferrable) settle(e, undefined, error);
  }

  /** Reconnects while unreachable, probes while idle: readiness and recovery do not wait for a call. */
  private async tick(): Promise<void> {
    if (this.running || this.closed) return;
    if (!this.unreachable && this.client && Date.now() - this.lastSuccess < TICK_MS) return;
    this.running = true;
    try {
      const client = await this.connection();
      await client.query('SELECT 1');
      this.succeeded();
    } catch (err) {
      this.failed(err);
    } finally {
      this.running = false;
    }
    if (this.queue.length && !this.unreachable) void this.run();
  }

  health(): AuditHealth {
    if (this.closed) return { ready: false, reason: 'audit store closed' };
    if (this.unreachable) return { ready: false, reason: 'audit store unreachable' };
    if (this.lastTimeout > this.lastSuccess) return { ready: false, reason: 'audit store too slow' };
    return { ready: true };
  }

  /** Resolves when nothing accepted is waiting to be tried (written, refused, or waiting for PostgreSQL to return). */
  drained(): Promise<void> {
    void this.run();
    if (!this.running && (!this.queue.length || this.unreachable)) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Writes what waits (within `graceMs`), then closes; records still unwritten are refused and counted in the log. */
  async close(graceMs: number): Promise<void> {
    if (!this.closed) {
      const timer = new Promise<void>((r) => setTimeout(r, graceMs).unref());
      await Promise.race([this.drained(), timer]);
    }
    this.closed = true;
    clearInterval(this.ticker);
    clearTimeout(this.linger);
    this.clock.stop();
    const left = this.queue.filter((e) => e.open);
    if (left.length)
      this.o.log(
        `audit store PostgreSQL ${this.o.where}: ${left.length} records could not be written before shutdown (PostgreSQL unreachable)`,
      );
    const closed = new BehalfError('store_unavailable', 'audit store closed');
    for (const e of left) settle(e, undefined, closed);
    this.queue = [];
    const client = this.client;
    this.client = undefined;
    if (client) await endQuietly(client);
  }
}

/** Ends a connection already given up on: its failure was reported where it happened, and there is nothing left to tell. */
function endQuietly(client: pg.Client): Promise<void> {
  // best effort: the connection is dropped either way
  return client.end().catch(() => undefined);
}

function settle(e: Entry, rec?: AuditRecord, err?: unknown): void {
  if (!e.open) return;
  e.open = false;
  if (rec) e.resolve(rec);
  else e.reject(err);
}
