import type pg from 'pg';
import { GENESIS } from './chain.js';
import type { AuditEvent, AuditRecord } from './event.js';
import { COLUMNS, fromRow, normalize, NUMERIC, rowValues, type Row } from './sqlite-schema.js';

/*
 * The PostgreSQL tables of a fleet's audit trail: the same columns as the
 * SQLite store (sqlite-schema.ts), so a record reads back the same and its
 * hash (chain.ts) is checked by the same code. Two more things live here:
 *
 * - audit_head, one row: the last seq and hash. An append locks it
 *   (SELECT … FOR UPDATE), so every instance of the fleet appends after the
 *   one before it and the chain cannot fork;
 * - rid, a random id per record, not part of the record: when a batch's
 *   COMMIT got no answer (the connection dropped), a record that is tried
 *   again is first looked up by its rid, so it is never stored twice.
 */

/** Any fixed number: it names the lock under which instances create the tables, so two starting at once do not race. */
const SCHEMA_LOCK = 0x6265_6861;

const pgType = (column: string) => (NUMERIC.has(column) ? 'DOUBLE PRECISION' : 'TEXT');

/** Creates the tables when missing; true when this call created them (the chain starts here). */
export async function createPgSchema(client: pg.ClientBase): Promise<boolean> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    const existed = (await client.query("SELECT to_regclass('audit_events') IS NOT NULL AS e")).rows[0].e as boolean;
    await client.query(`CREATE TABLE IF NOT EXISTS audit_events (
        seq BIGINT PRIMARY KEY,
        ${COLUMNS.map(([, c]) => `${c} ${pgType(c)}`).join(',\n        ')},
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        rid TEXT UNIQUE
      )`);
    // Columns added since a trail was created (chain.ts: LATER_FIELDS): old rows keep their hashes.
    for (const [, c] of COLUMNS)
      await client.query(`ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS ${c} ${pgType(c)}`);
    await client.query(`CREATE TABLE IF NOT EXISTS audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL
      )`);
    await client.query('INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, $1) ON CONFLICT (id) DO NOTHING', [
      GENESIS,
    ]);
    await client.query('CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value BYTEA NOT NULL)');
    await client.query(APPEND_FUNCTION);
    await client.query('COMMIT');
    return !existed;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      // The connection is gone: the transaction went with it.
    });
    throw err;
  }
}

/**
 * Chains a batch on the server, in one statement: the head row is locked
 * and released by the statement's own commit, so no client round trip — and
 * no client process that stalls or dies — ever holds the fleet's lock.
 *
 * Each element of `recs` is { tail, row, rid, retried, ttl }: `tail` the
 * record's canonical form after its link (chain.ts, canonicalTail), `row`
 * its column values, `ttl` how long its caller still waits (ms; a record
 * whose caller gave up while this statement waited for the lock is not
 * written: null in the answer). A retried record already stored (found by
 * rid) is answered with its stored link. The hash is chain.ts's linkHash:
 * SHA-256 over '{"seq":' seq ',"prevHash":"' prev '"' tail, as UTF-8;
 * `behalf audit verify` recomputes it in JavaScript for every record.
 */
const APPEND_FUNCTION = `CREATE OR REPLACE FUNCTION behalf_audit_append(recs jsonb) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  head_seq bigint;
  head_hash text;
  waited double precision;
  r jsonb;
  found_seq bigint;
  found_prev text;
  found_hash text;
  h text;
  out jsonb := '[]'::jsonb;
  rows jsonb := '[]'::jsonb;
BEGIN
  SELECT seq, hash INTO head_seq, head_hash FROM audit_head WHERE id = 1 FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'audit_head has no row: the trail was not created by behalf'; END IF;
  waited := extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000;
  FOR r IN SELECT value FROM jsonb_array_elements(recs) LOOP
    IF (r->>'retried')::boolean THEN
      SELECT e.seq, e.prev_hash, e.hash INTO found_seq, found_prev, found_hash FROM audit_events e WHERE e.rid = r->>'rid';
      IF FOUND THEN
        out := out || jsonb_build_array(jsonb_build_array(found_seq, found_prev, found_hash));
        CONTINUE;
      END IF;
    END IF;
    IF r ? 'ttl' AND waited > (r->>'ttl')::double precision THEN
      out := out || jsonb_build_array(NULL::jsonb);
      CONTINUE;
    END IF;
    head_seq := head_seq + 1;
    h := encode(sha256(convert_to('{"seq":' || head_seq || ',"prevHash":"' || head_hash || '"' || (r->>'tail'), 'UTF8')), 'hex');
    rows := rows || jsonb_build_array(
      (r->'row') || jsonb_build_object('seq', head_seq, 'prev_hash', head_hash, 'hash', h, 'rid', r->>'rid'));
    out := out || jsonb_build_array(jsonb_build_array(head_seq, head_hash, h));
    head_hash := h;
  END LOOP;
  INSERT INTO audit_events SELECT * FROM jsonb_populate_recordset(NULL::audit_events, rows);
  UPDATE audit_head SET seq = head_seq, hash = head_hash WHERE id = 1;
  RETURN out;
END
$fn$`;

/** Whether the trail's tables exist (for readers, which never create them). */
export async function hasPgSchema(client: pg.ClientBase | pg.Pool): Promise<boolean> {
  const r = await client.query(
    "SELECT to_regclass('audit_events') IS NOT NULL AND to_regclass('audit_head') IS NOT NULL AS e",
  );
  return r.rows[0].e as boolean;
}

/**
 * The SQLite normalization, plus: PostgreSQL text cannot hold U+0000, so
 * it becomes U+FFFD before the record is hashed (what is hashed is what
 * reads back).
 */
export function normalizeForPg(e: AuditEvent): AuditEvent {
  const out = normalize(e) as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(out)) {
    if (typeof v === 'string' && v.includes('\u0000')) out[k] = v.replaceAll('\u0000', '\uFFFD');
    else if (Array.isArray(v)) out[k] = v.map((x: string) => x.replaceAll('\u0000', '\uFFFD'));
  }
  return out as unknown as AuditEvent;
}

/** A record's column values as jsonb_populate_record takes them: column → value, absent ones left out. */
export function pgColumns(values: ReadonlyArray<string | number | null>): Record<string, string | number> {
  const row: Record<string, string | number> = {};
  COLUMNS.forEach(([, c], i) => {
    if (values[i] !== null && values[i] !== undefined) row[c] = values[i]!;
  });
  return row;
}

/** A stored record as a row, its link as it is (for migrating a trail with its hashes). */
export function recordRow(r: AuditRecord): Record<string, string | number | null> {
  return { ...pgColumns(rowValues(r)), seq: r.seq, prev_hash: r.prevHash, hash: r.hash };
}

/** Inserts rows given as pgRow objects, in one statement whatever their number. */
export const INSERT_ROWS =
  'INSERT INTO audit_events SELECT * FROM jsonb_populate_recordset(NULL::audit_events, $1::jsonb)';

/** node-postgres returns BIGINT as a string: seq is read back as a number. */
export function fromPgRow(row: Row): AuditRecord {
  return fromRow({ ...row, seq: Number(row.seq) });
}
