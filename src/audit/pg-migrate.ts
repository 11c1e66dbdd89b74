import pg from 'pg';
import { BehalfError } from '../errors.js';
import { verifyChain, type ChainReport } from './chain.js';
import { createPgSchema, INSERT_ROWS, recordRow } from './pg-schema.js';
import { describePgUrl, PgAuditStore } from './pg-store.js';
import { SqliteAuditStore } from './sqlite-store.js';

const CHUNK = 1000;

export interface MigrationResult {
  /** The SQLite trail as it was read: a trail that does not verify is not copied. */
  source: ChainReport;
  /** The PostgreSQL trail read back after the copy; absent when nothing was copied. */
  target?: ChainReport;
}

/**
 * Copies an SQLite audit trail into an empty PostgreSQL trail record by
 * record, seq, prevHash and hash as they are, so the chain verifies there
 * exactly as it did in the file (and a head printed from the file is still
 * its head). One transaction, under the head lock: a gateway already
 * appending to the target is refused (its trail is not empty) and a failed
 * copy leaves nothing behind. The argument-digest key comes along, so
 * digests of old and new records can still be compared.
 */
export async function migrateSqliteToPg(sqlitePath: string, url: string): Promise<MigrationResult> {
  const where = describePgUrl(url);
  const sqlite = new SqliteAuditStore(sqlitePath, { readonly: true });
  let source: ChainReport;
  try {
    source = await verifyChain(sqlite.records());
    if (!source.ok) return { source };
    const client = new pg.Client({ connectionString: url, application_name: 'behalf-audit-migrate' });
    try {
      await client.connect();
    } catch (err) {
      throw new BehalfError('store_unavailable', `cannot connect to PostgreSQL ${where}`, {}, { cause: err });
    }
    try {
      await createPgSchema(client);
      await client.query('BEGIN');
      const at = (await client.query('SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE')).rows[0] as { seq: string };
      const held = (await client.query('SELECT count(*)::int AS n FROM audit_events')).rows[0] as { n: number };
      if (Number(at.seq) !== 0 || held.n !== 0)
        throw new BehalfError(
          'usage',
          `PostgreSQL ${where} already holds an audit trail (${held.n} records): a trail is migrated into an empty one only`,
        );
      let chunk: Array<Record<string, string | number | null>> = [];
      const flush = async () => {
        if (chunk.length) await client.query(INSERT_ROWS, [JSON.stringify(chunk)]);
        chunk = [];
      };
      for await (const r of sqlite.records()) {
        const row = recordRow(r);
        if (Object.values(row).some((v) => typeof v === 'string' && v.includes('\u0000')))
          throw new BehalfError(
            'store_unavailable',
            `record seq ${r.seq} holds a U+0000 character, which PostgreSQL text cannot store: nothing was migrated`,
          );
        chunk.push(row);
        if (chunk.length >= CHUNK) await flush();
      }
      await flush();
      const head = source.head;
      if (head) await client.query('UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1', [head.seq, head.hash]);
      // A trail written without argument digests has no key to bring.
      const key = await sqlite.secret('args-digest').catch(() => undefined);
      if (key)
        await client.query('INSERT INTO audit_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
          'args-digest',
          key,
        ]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        // The connection failed: the transaction is gone with it.
      });
      if (err instanceof BehalfError) throw err;
      throw new BehalfError(
        'store_unavailable',
        `migration into PostgreSQL ${where} failed: nothing was migrated`,
        {},
        { cause: err },
      );
    } finally {
      await client.end();
    }
  } finally {
    await sqlite.close();
  }
  const target = new PgAuditStore(url, { readonly: true });
  try {
    await target.open();
    return { source, target: await verifyChain(target.records()) };
  } finally {
    await target.close();
  }
}
