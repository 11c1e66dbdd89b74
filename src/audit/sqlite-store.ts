import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { BehalfError } from '../errors.js';
import { GENESIS, recordHash } from './chain.js';
import type { AuditEvent, AuditQuery, AuditRecord, AuditStore } from './event.js';

/** Event field → column. ts and latency_ms are REAL, rule_ids is a JSON array, the rest TEXT. */
const COLUMNS = [
  ['ts', 'ts'], ['kind', 'kind'], ['callId', 'call_id'], ['route', 'route'], ['upstream', 'upstream'],
  ['transport', 'transport'], ['clientId', 'client_id'], ['clientMethod', 'client_method'],
  ['credentialId', 'credential_id'], ['userIssuer', 'user_issuer'], ['userSubject', 'user_subject'],
  ['tokenFingerprint', 'token_fingerprint'], ['sessionFingerprint', 'session_fingerprint'], ['method', 'method'],
  ['target', 'target'], ['args', 'args'], ['argsDigest', 'args_digest'], ['decision', 'decision'],
  ['ruleIds', 'rule_ids'], ['reason', 'reason'], ['policyVersion', 'policy_version'], ['outcome', 'outcome'],
  ['latencyMs', 'latency_ms'], ['downstreamStrategy', 'downstream_strategy'],
  ['downstreamCredentialId', 'downstream_credential_id'],
] as const satisfies ReadonlyArray<readonly [keyof AuditEvent, string]>;
type Stored = (typeof COLUMNS)[number][0];
type Unstored = Exclude<keyof AuditEvent, Stored>;
const _everyFieldIsStored: [Unstored] extends [never] ? true : Unstored = true;

const NUMERIC = new Set<string>(['ts', 'latency_ms']);
const PAGE = 1000;

export interface SqliteAuditStoreOptions {
  /** normal: synchronous=NORMAL (survives a process crash); full: synchronous=FULL (fsync per record, survives power loss). */
  durability?: 'normal' | 'full';
  /** For the CLI: opens an existing store without creating or changing anything. */
  readonly?: boolean;
}

interface Head { seq: number; hash: string }

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
      } catch {
        throw new BehalfError('invalid_request', `cannot open audit database ${path}`);
      }
      const columns = this.columnNames();
      const problem = !columns.size ? 'holds no audit records' : !columns.has('hash') ? 'holds audit records of an older version, without a hash chain' : undefined;
      if (problem) {
        this.db.close();
        throw new BehalfError('invalid_request', `${path} ${problem}`);
      }
      return;
    }
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.transaction(() => this.createSchema()).immediate();
    // Positional parameters: binding by name costs a property lookup per column on every append.
    this.insert = this.db.prepare(`INSERT INTO audit_events (seq, ${COLUMNS.map(([, c]) => c).join(', ')}, prev_hash, hash)
      VALUES (${Array(COLUMNS.length + 3).fill('?').join(', ')})`);
    this.head = this.readHead();
  }

  private createSchema(): void {
    const columns = this.columnNames();
    if (columns.size && !columns.has('hash')) {
      // A store written before the hash chain existed. Its rows cannot be
      // chained after the fact (that would vouch for content nobody hashed),
      // so they are kept aside, untouched, and a fresh chain starts at seq 1.
      this.db.exec(`ALTER TABLE audit_events RENAME TO audit_events_legacy_${Date.now()}`);
    }
    this.db.exec(`CREATE TABLE IF NOT EXISTS audit_events (
      seq INTEGER PRIMARY KEY,
      ${COLUMNS.map(([, c]) => `${c} ${NUMERIC.has(c) ? 'REAL' : 'TEXT'}`).join(',\n      ')},
      prev_hash TEXT NOT NULL,
      hash TEXT NOT NULL
    )`);
    this.db.exec('CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)');
  }

  private columnNames(): Set<string> {
    return new Set((this.db.pragma('table_info(audit_events)') as Array<{ name: string }>).map((c) => c.name));
  }

  private readHead(): Head {
    const row = this.db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as Head | undefined;
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
      records = this.db.transaction(() => {
        this.head = this.readHead();
        return this.writeBatch!(events);
      }).immediate();
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
    if (filter.since !== undefined) { where.push('ts >= @since'); params.since = filter.since; }
    if (filter.until !== undefined) { where.push('ts <= @until'); params.until = filter.until; }
    if (filter.afterSeq !== undefined) { where.push('seq > @afterSeq'); params.afterSeq = filter.afterSeq; }
    const rows = this.db.prepare(`SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT @limit`)
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
    if (this.insert) this.db.prepare('INSERT OR IGNORE INTO audit_meta (name, value) VALUES (?, ?)').run(name, randomBytes(32));
    const row = this.db.prepare('SELECT value FROM audit_meta WHERE name = ?').get(name) as { value: Buffer } | undefined;
    if (!row) throw new BehalfError('internal', `no audit secret ${name}`);
    return row.value;
  }

  async close(): Promise<void> {
    // Records already accepted are written before the file closes.
    if (this.queue.length) this.flush();
    if (this.db.open) this.db.close();
  }
}

type Row = Record<string, string | number | null>;

/**
 * What is hashed must be exactly what reads back, whatever a caller put in
 * a field: each value is coerced to its column's type first. And SQLite
 * stores text as UTF-8, which turns a lone UTF-16 surrogate (valid in a JS
 * string, and reachable from client JSON via "\ud800") into replacement
 * characters; a record holding one would later look edited. Such strings are
 * made well-formed before hashing.
 */
function normalize(e: AuditEvent): AuditEvent {
  const out: Record<string, unknown> = {};
  for (const [field, column] of COLUMNS) {
    const v: unknown = e[field];
    if (v === undefined || v === null) continue;
    if (NUMERIC.has(column)) {
      const n = Number(v);
      if (Number.isFinite(n)) out[field] = n;
    } else if (field === 'ruleIds') {
      out[field] = (Array.isArray(v) ? v : [v]).map((x) => wellFormed(String(x)));
    } else {
      out[field] = wellFormed(String(v));
    }
  }
  return out as unknown as AuditEvent;
}

type WellFormedString = string & { isWellFormed(): boolean; toWellFormed(): string };

/** String.prototype.isWellFormed is in Node 20 but not in the ES2023 lib typings. */
function wellFormed(s: string): string {
  const w = s as WellFormedString;
  return w.isWellFormed() ? s : w.toWellFormed();
}

function chained(fields: AuditEvent, head: Head): AuditRecord {
  const rec = { ...fields, seq: head.seq + 1, prevHash: head.hash, hash: '' };
  rec.hash = recordHash(rec);
  return rec;
}

/** The INSERT's parameters, in its column order. */
function toRow(rec: AuditRecord): Array<string | number | null> {
  const row: Array<string | number | null> = [rec.seq];
  for (const [field] of COLUMNS) {
    const v = rec[field];
    row.push(v === undefined ? null : Array.isArray(v) ? JSON.stringify(v) : v);
  }
  row.push(rec.prevHash, rec.hash);
  return row;
}

function fromRow(row: Row): AuditRecord {
  const rec: Record<string, unknown> = { seq: row.seq, prevHash: row.prev_hash, hash: row.hash };
  for (const [field, column] of COLUMNS) {
    const v = row[column];
    if (v === null || v === undefined) continue;
    rec[field] = field === 'ruleIds' ? parseRuleIds(v) : v;
  }
  return rec as unknown as AuditRecord;
}

/** A tampered rule_ids cell must show up as an edited record, not crash the reader. */
function parseRuleIds(v: string | number): unknown {
  try {
    return JSON.parse(String(v));
  } catch {
    return v;
  }
}

function isConflict(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
