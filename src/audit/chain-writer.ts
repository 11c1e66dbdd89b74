import type Database from 'better-sqlite3';
import { canonicalTail, GENESIS, linkHash } from './chain.js';
import type { AuditEvent, AuditRecord } from './event.js';
import { prepareInsert, rowValues } from './sqlite-schema.js';

export interface Head {
  seq: number;
  hash: string;
}

/**
 * A normalized record made ready to chain where it was made: its canonical
 * form after the link (chain.ts, canonicalTail) and its column values. Plain
 * strings and numbers, so it crosses to the writer thread cheaply, and the
 * writer only adds seq, prevHash and the hash.
 */
export interface Prepared {
  tail: string;
  values: Array<string | number | null>;
}

/** seq, prevHash, hash: what chaining adds to a record. */
export type Link = [seq: number, prevHash: string, hash: string];

export function prepare(fields: AuditEvent): Prepared {
  return { tail: canonicalTail(fields), values: rowValues(fields) };
}

/** The stored record: the fields it was made from, completed in place with its link (they are the store's own copy). */
export function linked(fields: AuditEvent, [seq, prevHash, hash]: Link): AuditRecord {
  const rec = fields as AuditRecord;
  rec.seq = seq;
  rec.prevHash = prevHash;
  rec.hash = hash;
  return rec;
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
  private readonly tx: Database.Transaction<(take: () => Prepared[]) => Link[]>;

  constructor(private readonly db: Database.Database) {
    const insert = prepareInsert(db);
    this.head = readHead(db);
    this.tx = db.transaction((take: () => Prepared[]) => {
      let head = this.head;
      return take().map((p) => {
        const seq = head.seq + 1;
        const hash = linkHash(seq, head.hash, p.tail);
        insert.run([seq, ...p.values, head.hash, hash]);
        const link: Link = [seq, head.hash, hash];
        head = { seq, hash };
        return link;
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
  write(take: () => Prepared[]): Link[] {
    if (!this.db.open) throw new Error('audit database closed');
    let links: Link[];
    try {
      links = this.tx.immediate(take);
    } catch (err) {
      if (!isConflict(err)) throw err;
      links = this.db
        .transaction(() => {
          this.head = readHead(this.db);
          return this.tx(take);
        })
        .immediate();
    }
    const last = links[links.length - 1];
    if (last) this.head = { seq: last[0], hash: last[2] };
    return links;
  }
}

function isConflict(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
