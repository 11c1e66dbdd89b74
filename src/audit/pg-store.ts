import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { BehalfError } from '../errors.js';
import { prepare } from './chain-writer.js';
import { auditQuerySql } from './query-filter.js';
import type { AppendOptions, AuditEvent, AuditHealth, AuditQuery, AuditRecord, AuditStore } from './event.js';
import { createPgSchema, fromPgRow, hasPgSchema, normalizeForPg } from './pg-schema.js';
import { PgWriter } from './pg-writer.js';
import type { Row } from './sqlite-schema.js';

const PAGE = 1000;
/** close() waits this long beyond the budget for waiting records to be written. */
const CLOSE_GRACE_MS = 5_000;

export interface PgAuditStoreOptions {
  /** For the CLI: reads an existing trail, creating and writing nothing. */
  readonly?: boolean;
  /** How long an append may wait for its commit before it is refused, in ms (default 200). */
  writeBudgetMs?: number;
  /** Records waiting to be written at most; past it an append is refused at once (default 4096). */
  maxPendingWrites?: number;
  log?: (line: string) => void;
}

/** host:port/database of a connection URL: what log lines and errors name (a URL may hold a password). */
export function describePgUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new BehalfError('config_invalid', 'audit.postgres.url is not a URL', {}, { cause: err });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:')
    throw new BehalfError('config_invalid', 'audit.postgres.url must be a postgres:// or postgresql:// URL');
  return `${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname || '/'}`;
}

/**
 * The fleet's audit store: one hash chain in PostgreSQL that every gateway
 * instance appends to (docs/architecture.md §10). Records are prepared
 * here exactly as for SQLite (chain-writer.ts: the canonical tail and the
 * column values), chained under the head row's lock by the writer
 * (pg-writer.ts, pg-chain.ts), and read back in seq order, so `verifyChain`
 * checks them unchanged. Reads use a small pool of their own, so a reader
 * never waits behind the writer's transaction.
 */
export class PgAuditStore implements AuditStore {
  readonly where: string;
  private readonly pool: pg.Pool;
  private readonly writer?: PgWriter;
  /** This instance created the trail's tables: the chain starts here (the gateway records it). */
  startsNewChain = false;

  constructor(
    url: string,
    private readonly opts: PgAuditStoreOptions = {},
  ) {
    this.where = describePgUrl(url);
    const budgetMs = opts.writeBudgetMs ?? 200;
    this.pool = new pg.Pool({
      connectionString: url,
      max: 2,
      application_name: 'behalf-audit-read',
      connectionTimeoutMillis: Math.max(2000, budgetMs * 5),
      idleTimeoutMillis: 10_000,
    });
    // An idle pooled connection that drops is replaced on next use; without a listener the drop would end the process.
    this.pool.on('error', (err) => {
      (opts.log ?? stderr)(`audit store PostgreSQL ${this.where}: idle read connection lost (${err.message})`);
    });
    if (!opts.readonly)
      this.writer = new PgWriter({
        connectionString: url,
        where: this.where,
        budgetMs,
        maxPending: opts.maxPendingWrites ?? 4096,
        log: opts.log ?? stderr,
      });
  }

  /** Creates the tables if need be (a writer) or checks they exist (a reader), then connects the writer. */
  async open(): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new BehalfError(
        'store_unavailable',
        `cannot connect to audit store PostgreSQL ${this.where}`,
        {},
        { cause: err },
      );
    }
    try {
      if (this.opts.readonly) {
        if (!(await hasPgSchema(client)))
          throw new BehalfError('store_unavailable', `PostgreSQL ${this.where} holds no audit trail`);
      } else {
        this.startsNewChain = await createPgSchema(client);
      }
    } finally {
      client.release();
    }
    await this.writer?.start();
  }

  // async: a record that cannot be prepared rejects like one that cannot be written, and nothing is queued.
  async append(event: AuditEvent, opts: AppendOptions = {}): Promise<AuditRecord> {
    if (!this.writer) throw new BehalfError('internal', 'audit store opened read-only');
    const fields = normalizeForPg(event);
    return this.writer.append(fields, prepare(fields), opts.deferrable === true);
  }

  health(): AuditHealth {
    return this.writer?.health() ?? { ready: true };
  }

  async query(filter: AuditQuery = {}): Promise<AuditRecord[]> {
    await this.writer?.drained();
    const { sql, params } = auditQuerySql(filter, (n) => `$${n}`);
    const r = await this.read(sql, params);
    return (r.rows as Row[]).reverse().map(fromPgRow);
  }

  /** Pages by seq rather than one cursor: a slow reader (an export to a pipe) holds no snapshot or connection between pages. */
  async *records(fromSeq = 1): AsyncIterable<AuditRecord> {
    await this.writer?.drained();
    let next = fromSeq;
    for (;;) {
      const r = await this.read('SELECT * FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2', [next, PAGE]);
      const rows = (r.rows as Row[]).map(fromPgRow);
      yield* rows;
      if (rows.length < PAGE) return;
      next = rows[rows.length - 1]!.seq + 1;
    }
  }

  /** Shared by the fleet: every instance gets the same key (the first to ask creates it). */
  async secret(name: string): Promise<Buffer> {
    if (this.writer)
      await this.read('INSERT INTO audit_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
        name,
        randomBytes(32),
      ]);
    const r = await this.read('SELECT value FROM audit_meta WHERE name = $1', [name]);
    const row = r.rows[0] as { value: Buffer } | undefined;
    if (!row) throw new BehalfError('internal', `no audit secret ${name}`);
    return row.value;
  }

  private async read(sql: string, params: unknown[]): Promise<pg.QueryResult> {
    try {
      return await this.pool.query(sql, params);
    } catch (err) {
      throw new BehalfError(
        'store_unavailable',
        `audit store PostgreSQL ${this.where}: query failed`,
        {},
        { cause: err },
      );
    }
  }

  async close(): Promise<void> {
    await this.writer?.close((this.opts.writeBudgetMs ?? 200) + CLOSE_GRACE_MS);
    await this.pool.end();
  }
}

function stderr(line: string): void {
  process.stderr.write(`${line}\n`);
}
