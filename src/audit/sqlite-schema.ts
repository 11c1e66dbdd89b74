import type Database from 'better-sqlite3';
import type { AuditEvent, AuditRecord } from './event.js';

/*
 * The audit_events table: its columns, how it is created, and how a record
 * becomes a row and back. The store (sqlite-store.ts) decides when rows are
 * written and read; this file decides what they look like.
 */

/** Event field → column. ts and latency_ms are REAL, rule_ids is a JSON array, the rest TEXT. */
export const COLUMNS = [
  ['ts', 'ts'],
  ['kind', 'kind'],
  ['callId', 'call_id'],
  ['route', 'route'],
  ['upstream', 'upstream'],
  ['transport', 'transport'],
  ['clientId', 'client_id'],
  ['clientMethod', 'client_method'],
  ['credentialId', 'credential_id'],
  ['userIssuer', 'user_issuer'],
  ['userSubject', 'user_subject'],
  ['tokenFingerprint', 'token_fingerprint'],
  ['sessionFingerprint', 'session_fingerprint'],
  ['method', 'method'],
  ['target', 'target'],
  ['args', 'args'],
  ['argsDigest', 'args_digest'],
  ['decision', 'decision'],
  ['ruleIds', 'rule_ids'],
  ['reason', 'reason'],
  ['policyVersion', 'policy_version'],
  ['outcome', 'outcome'],
  ['latencyMs', 'latency_ms'],
  ['downstreamStrategy', 'downstream_strategy'],
  ['downstreamCredentialId', 'downstream_credential_id'],
  ['refusedBy', 'refused_by'],
  ['continuationOf', 'continuation_of'],
  ['instanceId', 'instance_id'],
  ['userScopes', 'user_scopes'],
  ['userClaims', 'user_claims'],
] as const satisfies ReadonlyArray<readonly [keyof AuditEvent, string]>;
type Stored = (typeof COLUMNS)[number][0];
type Unstored = Exclude<keyof AuditEvent, Stored>;
const _everyFieldIsStored: [Unstored] extends [never] ? true : Unstored = true;

export const NUMERIC = new Set<string>(['ts', 'latency_ms']);

export type Row = Record<string, string | number | null>;

/**
 * Creates the tables on first use. A store written before the hash chain
 * existed cannot have its rows chained after the fact (that would vouch for
 * content nobody hashed), so they are kept aside, untouched, and a fresh
 * chain starts at seq 1.
 */
export function createSchema(db: Database.Database): void {
  const columns = columnNames(db);
  if (columns.size && !columns.has('hash'))
    db.exec(`ALTER TABLE audit_events RENAME TO audit_events_legacy_${Date.now()}`);
  db.exec(`CREATE TABLE IF NOT EXISTS audit_events (
      seq INTEGER PRIMARY KEY,
      ${COLUMNS.map(([, c]) => `${c} ${NUMERIC.has(c) ? 'REAL' : 'TEXT'}`).join(',\n      ')},
      prev_hash TEXT NOT NULL,
      hash TEXT NOT NULL
    )`);
  // Columns added since a store was created are added to it; its rows keep their hashes (chain.ts: LATER_FIELDS).
  const present = columnNames(db);
  for (const [, c] of COLUMNS)
    if (!present.has(c)) db.exec(`ALTER TABLE audit_events ADD COLUMN ${c} ${NUMERIC.has(c) ? 'REAL' : 'TEXT'}`);
  db.exec('CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)');
}

export function columnNames(db: Database.Database): Set<string> {
  return new Set((db.pragma('table_info(audit_events)') as Array<{ name: string }>).map((c) => c.name));
}

/** Positional parameters: binding by name costs a property lookup per column on every append. */
export function prepareInsert(db: Database.Database): Database.Statement {
  return db.prepare(`INSERT INTO audit_events (seq, ${COLUMNS.map(([, c]) => c).join(', ')}, prev_hash, hash)
      VALUES (${Array(COLUMNS.length + 3)
        .fill('?')
        .join(', ')})`);
}

/**
 * What is hashed must be exactly what reads back, whatever a caller put in
 * a field: each value is coerced to its column's type first. And SQLite
 * stores text as UTF-8, which turns a lone UTF-16 surrogate (valid in a JS
 * string, and reachable from client JSON via "\ud800") into replacement
 * characters; a record holding one would later look edited. Such strings are
 * made well-formed before hashing.
 */
export function normalize(e: AuditEvent): AuditEvent {
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

/** A record's column values, in the INSERT's order between seq and prev_hash, hash. */
export function rowValues(fields: AuditEvent): Array<string | number | null> {
  const row: Array<string | number | null> = [];
  for (const [field] of COLUMNS) {
    const v = fields[field];
    row.push(v === undefined ? null : Array.isArray(v) ? JSON.stringify(v) : v);
  }
  return row;
}

export function fromRow(row: Row): AuditRecord {
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
    // Kept as stored: the chain check then reports the record as edited.
    return v;
  }
}
