import type pg from 'pg';
import { linkHash } from './chain.js';
import type { Link, Prepared } from './chain-writer.js';
import { INSERT_ROWS, pgRow } from './pg-schema.js';

/** A record on its way into the fleet's chain. */
export interface PgPending {
  prepared: Prepared;
  /** Random id kept with the row (not hashed): finds the record again after a COMMIT that got no answer. */
  rid: string;
  /** Tried before in a transaction whose end is unknown: looked up by rid before it is chained. */
  retried: boolean;
  /** False once its caller was refused (budget spent): it is then not written. */
  open: boolean;
}

/**
 * Appends a batch to the one chain of the fleet in one transaction:
 *
 *   BEGIN; SET LOCAL lock_timeout; SELECT the head row FOR UPDATE   (one round trip)
 *   INSERT every record, UPDATE the head                             (one round trip)
 *   COMMIT
 *
 * The head row lock serialises appends across instances: whoever holds it
 * chains seq+1 on the hash it read, so no two instances ever chain on the
 * same head. Under the lock, records whose caller was already refused are
 * dropped, and retried records already stored are answered with their
 * stored link instead of being chained again. Returns each written or found
 * record's link; a record dropped has none. Throws when the transaction
 * fails; the caller discards the connection (its state is unknown).
 */
export async function appendBatch(
  client: pg.ClientBase,
  batch: PgPending[],
  lockTimeoutMs: number,
): Promise<Map<PgPending, Link>> {
  const begun = (await client.query(
    `BEGIN; SET LOCAL lock_timeout = ${Math.max(1, Math.trunc(lockTimeoutMs))}; SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`,
  )) as unknown as pg.QueryResult[];
  const headRow = begun[begun.length - 1]!.rows[0] as { seq: string; hash: string } | undefined;
  if (!headRow) throw new Error('audit_head has no row: the trail was not created by behalf');
  const links = new Map<PgPending, Link>();
  const retried = batch.filter((p) => p.retried);
  if (retried.length) {
    const found = await client.query('SELECT rid, seq, prev_hash, hash FROM audit_events WHERE rid = ANY($1)', [
      retried.map((p) => p.rid),
    ]);
    const byRid = new Map(found.rows.map((r: Record<string, string>) => [r.rid, r]));
    for (const p of retried) {
      const r = byRid.get(p.rid);
      if (r) links.set(p, [Number(r.seq), r.prev_hash!, r.hash!]);
    }
  }
  let seq = Number(headRow.seq);
  let prev = headRow.hash;
  const rows: Array<Record<string, string | number | null>> = [];
  for (const p of batch) {
    if (!p.open || links.has(p)) continue;
    seq++;
    const hash = linkHash(seq, prev, p.prepared.tail);
    rows.push(pgRow(p.prepared.values, { seq, prevHash: prev, hash }, p.rid));
    links.set(p, [seq, prev, hash]);
    prev = hash;
  }
  if (rows.length)
    await client.query(`WITH ins AS (${INSERT_ROWS}) UPDATE audit_head SET seq = $2, hash = $3 WHERE id = 1`, [
      JSON.stringify(rows),
      seq,
      prev,
    ]);
  await client.query('COMMIT');
  return links;
}
