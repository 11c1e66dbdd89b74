import type Database from 'better-sqlite3';
import { GENESIS, recordHash } from './chain.js';
import type { AuditEvent, AuditRecord } from './event.js';
import { prepareInsert, toRow } from './sqlite-schema.js';

export interface Head {
  seq: number;
  hash: string;
}

export function readHead(db: Database.Database): Head {
  const row = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as Head | undefined;
  return row ?? { seq: 0, hash: GENESIS };
}

/**
 * Appends records to the chain over one write connection, on whichever
 * thread owns it (the writer thread, or the caller of `appendSync`).
 *
 * The head (last seq and hash) is kept in memory so an append is a single
 * INSERT. seq is the primary key and always head.seq + 1, so two writers
 * appending from the same head (two connections, two processes) collide on
 * it and a fork is impossible; the loser re-reads the head under the write
 * lock, where it cannot move again, and writes after it. Every other
 * failure is thrown and nothing of the batch is stored.
 */
export class ChainWriter {
  private head: Head;
  private readonly tx: Database.Transaction<(take: () => AuditEvent[]) => AuditRecord[]>;

  constructor(private readonly db: Database.Database) {
    const insert = prepareInsert(db);
    this.head = readHead(db);
    this.tx = db.transaction((take: () => AuditEvent[]) => {
      let head = this.head;
      return take().map((f) => {
        const rec = chained(f, head);
        insert.run(toRow(rec));
        head = { seq: rec.seq, hash: rec.hash };
        return rec;
      });
    });
  }

  /** The last record this writer knows of (written by it, or read when it last had to catch up). */
  get last(): Head {
    return this.head;
  }

  /**
   * Chains and inserts, in one transaction begun IMMEDIATE (so waiting for
   * the write lock is SQLite's busy timeout, not an error at upgrade), the
   * records `take` returns; `take` runs under the write lock, so a caller
   * can drop what has expired while it waited.
   */
  write(take: () => AuditEvent[]): AuditRecord[] {
    if (!this.db.open) throw new Error('audit database closed');
    let records: AuditRecord[];
    try {
      records = this.tx.immediate(take);
    } catch (err) {
      if (!isConflict(err)) throw err;
      records = this.db
        .transaction(() => {
          this.head = readHead(this.db);
          return this.tx(take);
        })
        .immediate();
    }
    const last = records[records.length - 1];
    if (last) this.head = { seq: last.seq, hash: last.hash };
    return records;
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
