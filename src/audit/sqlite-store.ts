import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { BehalfError } from '../errors.js';
import { GENESIS, recordHash } from './chain.js';
import type { AuditEvent, AuditQuery, AuditRecord, AuditStore } from './event.js';
import { columnNames, createSchema, fromRow, normalize, prepareInsert, toRow, type Row } from './sqlite-schema.js';

const PAGE = 1000;

export interface SqliteAuditStoreOptions {
  /** normal: synchronous=NORMAL (survives a process crash); full: synchronous=FULL (fsync per record, survives power loss). */
  durability?: 'normal' | 'full';
  /** For the CLI: opens an existing store without creating or changing anything. */
  readonly?: boolean;
}

interface Head {
  seq: number;
  hash: string;
}

/**
 * The embedded audit store: one SQLite file in WAL mode, each record chained
 * to the previous one (chain.ts).
 *
 * The head (last seq and hash) is kept in memory so an append is a single
 * INSERT. seq is the primary key and always head.seq + 1, so two processes
 * appending from the same head collide on it and a fork is impossible; the
 * loser re-reads the head and retries once under the write lock, where it
 * cannot conflict again. Every other failure is thrown, and the gateway
 * refuses the call.
 *
 * Group commit: `append` queues the record and every record queued in the
 * same turn of the event loop is written in one transaction, whose promise
 * each caller awaits before forwarding. Concurrent calls share one commit
 * (and, with durability full, one fsync); a lone call pays one commit.
 */
export class SqliteAuditStore implements AuditStore {
  private readonly db: Database.Database;
  private readonly insert?: Database.Statement;
  private head: Head = { seq: 0, hash: GENESIS };
  private queue: { fields: AuditEvent; resolve: (r: AuditRecord) => void; reject: (e: unknown) => void }[] = [];
  private flushScheduled = false;
  private writeBatch?: (batch: AuditEvent[]) => AuditRecord[];

  constructor(path: string, opts: SqliteAuditStoreOptions = {}) {
    if (opts.readonly) {
      // fileMustExist: a mistyped path is an error, not a new empty database.
      try {
        this.db = new Database(path, { readonly: true, fileMustExist: true });
      } catch (err) {
        throw new BehalfError('store_unavailable', `cannot open audit database ${path}`, {}, { cause: err });
      }
      const columns = columnNames(this.db);
      const problem = !columns.size
        ? 'holds no audit records'
        : !columns.has('hash')
          ? 'holds audit records of an older version, without a hash chain'
          : undefined;
      if (problem) {
        this.db.close();
        throw new BehalfError('store_unavailable', `${path} ${problem}`);
      }
      return;
    }
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.transaction(() => createSchema(this.db)).immediate();
    this.insert = prepareInsert(this.db);
    this.head = this.readHead();
  }

  private readHead(): Head {
    const row = this.db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as
      Head | undefined;
    return row ?? { seq: 0, hash: GENESIS };
  }

  /** Synchronous append of one record (the benchmark's no-event-loop-hop figure). Throws when the record is not stored. */
  appendSync(event: AuditEvent): AuditRecord {
    if (!this.insert) throw new BehalfError('internal', 'audit store opened read-only');
    return this.writeRecords([normalize(event)])[0]!;
  }

  append(event: AuditEvent): Promise<AuditRecord> {
    if (!this.insert) return Promise.reject(new BehalfError('internal', 'audit store opened read-only'));
    let fields: AuditEvent;
    try {
      fields = normalize(event);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ fields, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Chains and inserts records in one transaction, then moves the head. If
   * another writer moved the head, it is re-read under the write lock, where
   * it cannot move again, and the records are written after it.
   */
  private writeRecords(events: AuditEvent[]): AuditRecord[] {
    if (!this.db.open) throw new BehalfError('internal', 'audit store closed');
    const insert = this.insert!;
    this.writeBatch ??= this.db.transaction((batch: AuditEvent[]) => {
      let head = this.head;
      return batch.map((f) => {
        const rec = chained(f, head);
        insert.run(toRow(rec));
        head = { seq: rec.seq, hash: rec.hash };
        return rec;
      });
    });
    let records: AuditRecord[];
    try {
      records = this.writeBatch(events);
    } catch (err) {
      if (!isConflict(err)) throw err;
      records = this.db
        .transaction(() => {
          this.head = this.readHead();
          return this.writeBatch!(events);
        })
        .immediate();
    }
    const last = records[records.length - 1]!;
    this.head = { seq: last.seq, hash: last.hash };
    return records;
  }

  /** Writes everything queued in one transaction; all of it is stored, or none and every caller is refused. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (!batch.length) return;
    let records: AuditRecord[];
    try {
      records = this.writeRecords(batch.map((b) => b.fields));
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    batch.forEach((b, i) => b.resolve(records[i]!));
  }

  async query(filter: AuditQuery = {}): Promise<AuditRecord[]> {
    // A reader in this process sees every record already accepted.
    if (this.queue.length) this.flush();
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: Math.max(0, Math.trunc(filter.limit ?? 100)) };
    const eq = (column: string, value: unknown) => {
      if (value === undefined) return;
      where.push(`${column} = @${column}`);
      params[column] = value;
    };
    eq('kind', filter.kind);
    eq('user_subject', filter.subject);
    eq('user_issuer', filter.issuer);
    eq('client_id', filter.clientId);
    eq('method', filter.method);
    eq('target', filter.target);
    eq('decision', filter.decision);
    if (filter.since !== undefined) {
      where.push('ts >= @since');
      params.since = filter.since;
    }
    if (filter.until !== undefined) {
      where.push('ts <= @until');
      params.until = filter.until;
    }
    if (filter.afterSeq !== undefined) {
      where.push('seq > @afterSeq');
      params.afterSeq = filter.afterSeq;
    }
    const rows = this.db
      .prepare(
        `SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT @limit`,
      )
      .all(params) as Row[];
    return rows.reverse().map(fromRow);
  }

  /**
   * Pages rather than one open cursor: better-sqlite3 refuses every other
   * statement on a connection while an iterator is open, and a reader that
   * pauses between records (an export to a slow pipe) must not block appends
   * or hold a read snapshot that stops WAL checkpoints.
   */
  async *records(fromSeq = 1): AsyncIterable<AuditRecord> {
    if (this.queue.length) this.flush();
    const page = this.db.prepare('SELECT * FROM audit_events WHERE seq >= ? ORDER BY seq LIMIT ?');
    let next = fromSeq;
    for (;;) {
      const rows: AuditRecord[] = [];
      for (const row of page.iterate(next, PAGE) as IterableIterator<Row>) rows.push(fromRow(row));
      yield* rows;
      if (rows.length < PAGE) return;
      next = rows[rows.length - 1]!.seq + 1;
    }
  }

  async secret(name: string): Promise<Buffer> {
    if (this.insert)
      this.db.prepare('INSERT OR IGNORE INTO audit_meta (name, value) VALUES (?, ?)').run(name, randomBytes(32));
    const row = this.db.prepare('SELECT value FROM audit_meta WHERE name = ?').get(name) as
      { value: Buffer } | undefined;
    if (!row) throw new BehalfError('internal', `no audit secret ${name}`);
    return row.value;
  }

  async close(): Promise<void> {
    // Records already accepted are written before the file closes.
    if (this.queue.length) this.flush();
    if (this.db.open) this.db.close();
  }
}

function chained(fields: AuditEvent, head: Head): AuditRecord {
  const rec = { ...fields, seq: head.seq + 1, prevHash: head.hash, hash: '' };
  rec.hash = recordHash(rec);
  return rec;
}

function isConflict(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
