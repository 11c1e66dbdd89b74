import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { BehalfError } from '../errors.js';
import { ChainWriter, linked, prepare, type Link, type Prepared } from './chain-writer.js';
import { auditQuerySql } from './query-filter.js';
import type { AppendOptions, AuditEvent, AuditHealth, AuditQuery, AuditRecord, AuditStore } from './event.js';
import { describeChange, exposedFiles, identityOf, openWritable } from './sqlite-file.js';
import { columnNames, createSchema, fromRow, normalize, type Row } from './sqlite-schema.js';
import { WriterThread } from './writer-thread.js';

const PAGE = 1000;

/**
 * The first record a gateway writes to a database that held none: a chain
 * starts here, and a reader must not take it for the whole trail. Whether an
 * earlier file existed cannot be known from an empty one; a file moved away
 * while the gateway ran is named, with its last head, in that gateway's log.
 */
export function newChainEvent(): AuditEvent {
  return {
    ts: Date.now(),
    kind: 'lifecycle',
    outcome: 'new chain',
    reason:
      'new chain: the audit database held no records when the gateway opened it (a first start, or the previous file was moved, deleted or replaced; its last head is not known here)',
  };
}

export interface SqliteAuditStoreOptions {
  /** normal: synchronous=NORMAL (survives a process crash); full: synchronous=FULL (fsync per commit, survives power loss). */
  durability?: 'normal' | 'full';
  /** For the CLI: opens an existing store without creating or changing anything. */
  readonly?: boolean;
  /** How long an append may wait for its write before it is refused, in ms (default 200). */
  writeBudgetMs?: number;
  /** Records waiting on the writer thread at most; past it an append is refused at once (default 4096). */
  maxPendingWrites?: number;
  /** Where the store reports trouble with its file: moved, locked, failing, readable by others (default stderr). */
  log?: (line: string) => void;
}

/**
 * The embedded audit store: one SQLite file in WAL mode, each record chained
 * to the previous one (chain.ts, chain-writer.ts).
 *
 * Appends to a file go to a writer thread that owns the write connection
 * (writer-thread.ts, sqlite-worker.ts), so a lock held by another process,
 * a slow disk or a full one never blocks the event loop: each append either
 * resolves with its chained record or is refused within `writeBudgetMs`,
 * and the caller refuses its call. Records that arrive while a transaction
 * runs are written together in the next one (group commit).
 *
 * This thread keeps its own connection for reads, for `secret`, and for
 * `appendSync` (tests, benchmarks, tools: it waits on SQLite where it is
 * called). An in-memory database cannot be shared with another thread, nor
 * locked or moved by anyone else: its appends are written here, every
 * record queued in one turn of the event loop in one transaction.
 */
export class SqliteAuditStore implements AuditStore {
  private readonly db: Database.Database;
  private readonly chain?: ChainWriter;
  private readonly thread?: WriterThread;
  private readonly identity?: string;
  /** The database held no record when opened: the chain starts here (the gateway records why). */
  readonly startsNewChain: boolean = false;
  private queue: {
    fields: AuditEvent;
    prepared: Prepared;
    resolve: (r: AuditRecord) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private flushScheduled = false;

  constructor(
    private readonly path: string,
    opts: SqliteAuditStoreOptions = {},
  ) {
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
    const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    this.db = openWritable(path, { durability: opts.durability });
    this.db.transaction(() => createSchema(this.db)).immediate();
    this.chain = new ChainWriter(this.db);
    this.startsNewChain = this.chain.last.seq === 0;
    if (path === ':memory:') return;
    this.identity = identityOf(path);
    const exposed = exposedFiles(path);
    if (exposed.length)
      log(
        `audit database files readable by others: ${exposed.join(', ')}; they hold the argument-digest key: chmod 600`,
      );
    this.thread = new WriterThread({
      path,
      durability: opts.durability ?? 'normal',
      budgetMs: opts.writeBudgetMs ?? 200,
      maxPending: opts.maxPendingWrites ?? 4096,
      identity: this.identity ?? 'none',
      log,
    });
  }

  /** Starts the writer thread and waits until it has opened the file (else it starts with the first append). */
  async startWriter(): Promise<void> {
    await this.thread?.start();
  }

  /** Synchronous append on this thread (the benchmark's no-hop figure; tools). Throws when the record is not stored. */
  appendSync(event: AuditEvent): AuditRecord {
    if (!this.chain) throw new BehalfError('internal', 'audit store opened read-only');
    if (this.identity !== undefined) {
      const now = identityOf(this.path);
      if (now !== this.identity)
        throw new BehalfError('store_unavailable', `audit database ${this.path} ${describeChange(this.identity, now)}`);
    }
    const fields = normalize(event);
    return linked(fields, this.chain.write(() => [prepare(fields)])[0]!);
  }

  // async: a record that cannot be prepared rejects like one that cannot be written, and nothing is queued.
  async append(event: AuditEvent, opts: AppendOptions = {}): Promise<AuditRecord> {
    if (!this.chain) throw new BehalfError('internal', 'audit store opened read-only');
    const fields = normalize(event);
    const prepared = prepare(fields);
    if (this.thread) return this.thread.append(fields, prepared, opts.deferrable === true);
    return new Promise((resolve, reject) => {
      this.queue.push({ fields, prepared, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  health(): AuditHealth {
    if (this.thread) return this.thread.health();
    return this.db.open ? { ready: true } : { ready: false, reason: 'audit store closed' };
  }

  /** In-memory store: writes everything queued in one transaction; all of it is stored, or none and every caller is refused. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (!batch.length) return;
    let links: Link[];
    try {
      links = this.chain!.write(() => batch.map((b) => b.prepared));
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    batch.forEach((b, i) => b.resolve(linked(b.fields, links[i]!)));
  }

  /** A reader in this process sees every record already accepted (written, or refused to its caller). */
  private async settled(): Promise<void> {
    if (this.queue.length) this.flush();
    await this.thread?.drained();
  }

  async query(filter: AuditQuery = {}): Promise<AuditRecord[]> {
    await this.settled();
    const { sql, params } = auditQuerySql(filter, () => '?');
    const rows = this.db.prepare(sql).all(...params) as Row[];
    return rows.reverse().map(fromRow);
  }

  /**
   * Pages rather than one open cursor: better-sqlite3 refuses every other
   * statement on a connection while an iterator is open, and a reader that
   * pauses between records (an export to a slow pipe) must not block appends
   * or hold a read snapshot that stops WAL checkpoints.
   */
  async *records(fromSeq = 1): AsyncIterable<AuditRecord> {
    await this.settled();
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
    if (this.chain)
      this.db.prepare('INSERT OR IGNORE INTO audit_meta (name, value) VALUES (?, ?)').run(name, randomBytes(32));
    const row = this.db.prepare('SELECT value FROM audit_meta WHERE name = ?').get(name) as
      { value: Buffer } | undefined;
    if (!row) throw new BehalfError('internal', `no audit secret ${name}`);
    return row.value;
  }

  /**
   * Records already accepted are written (each within its budget) before the
   * file closes. This thread's connection closes last, so it checkpoints the
   * WAL into the file; synchronously when no writer thread ever started.
   */
  close(): Promise<void> {
    if (this.queue.length) this.flush();
    const closeDb = () => {
      if (this.db.open) this.db.close();
    };
    const thread = this.thread?.close();
    if (!thread) {
      closeDb();
      return Promise.resolve();
    }
    return thread.then(closeDb);
  }
}
