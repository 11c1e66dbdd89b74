import type { AuditQuery } from './event.js';

/** The SQL a store runs for `AuditQuery`: both stores share the same columns, they differ only in how a parameter is written. */
export interface QuerySql {
  sql: string;
  params: unknown[];
}

const CONDITIONS: ReadonlyArray<[keyof AuditQuery, string]> = [
  ['kind', 'kind ='],
  ['subject', 'user_subject ='],
  ['issuer', 'user_issuer ='],
  ['clientId', 'client_id ='],
  ['method', 'method ='],
  ['target', 'target ='],
  ['decision', 'decision ='],
  ['since', 'ts >='],
  ['until', 'ts <='],
  ['afterSeq', 'seq >'],
];

/**
 * The newest `limit` matching records, newest first (callers reverse them).
 * `placeholder(n)` writes the n-th parameter (1-based): `?` for SQLite, `$n` for PostgreSQL.
 */
export function auditQuerySql(filter: AuditQuery, placeholder: (n: number) => string): QuerySql {
  const where: string[] = [];
  const params: unknown[] = [];
  for (const [field, condition] of CONDITIONS) {
    const value = filter[field];
    if (value === undefined) continue;
    params.push(value);
    where.push(`${condition} ${placeholder(params.length)}`);
  }
  params.push(Math.max(0, Math.trunc(filter.limit ?? 100)));
  const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
  return { sql: `SELECT * FROM audit_events ${clause} ORDER BY seq DESC LIMIT ${placeholder(params.length)}`, params };
}
