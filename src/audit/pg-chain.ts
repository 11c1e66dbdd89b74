import type pg from 'pg';
import type { Link, Prepared } from './chain-writer.js';
import { pgColumns } from './pg-schema.js';

/** A record on its way into the fleet's chain. */
export interface PgPending {
  prepared: Prepared;
  /** Random id kept with the row (not hashed): finds the record again after a COMMIT that got no answer. */
  rid: string;
  /** Tried before in a transaction whose end is unknown: looked up by rid before it is chained. */
  retried: boolean;
  /** False once its caller was refused (budget spent): it is then not sent. */
  open: boolean;
  /** performance.now() by which its caller stops waiting; Infinity (or absent) for a record nobody waits on. */
  due?: number;
}

/**
 * Appends a batch to the one chain of the fleet: one statement, one round
 * trip (pg-schema.ts, behalf_audit_append). The server locks the head row,
 * chains every record on it, and commits; whoever holds the lock chains
 * seq+1 on the hash it read, so no two instances ever chain on the same
 * head, and the lock is never held across a round trip to a client.
 * Returns each written or found record's link; a record dropped (its
 * caller gave up while the statement waited for the lock) has none.
 * Throws when the statement fails; the caller discards the connection.
 */
export async function appendBatch(client: pg.ClientBase, batch: PgPending[]): Promise<Map<PgPending, Link>> {
  const now = performance.now();
  const sent = batch.filter((p) => p.open);
  const recs = sent.map((p) => ({
    tail: p.prepared.tail,
    row: pgColumns(p.prepared.values),
    rid: p.rid,
    retried: p.retried,
    ...(p.due === undefined || p.due === Infinity ? {} : { ttl: Math.max(0, p.due - now) }),
  }));
  const links = new Map<PgPending, Link>();
  if (!recs.length) return links;
  const r = await client.query('SELECT behalf_audit_append($1::jsonb) AS links', [JSON.stringify(recs)]);
  const answered = r.rows[0].links as Array<[number | string, string, string] | null>;
  sent.forEach((p, i) => {
    const l = answered[i];
    if (l) links.set(p, [Number(l[0]), l[1], l[2]]);
  });
  return links;
}
