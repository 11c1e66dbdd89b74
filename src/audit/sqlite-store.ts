import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { AuditEvent, AuditStore } from './event.js';

const COLUMNS = [
  'ts', 'kind', 'call_id', 'route', 'upstream', 'transport', 'client_id', 'client_method', 'credential_id',
  'user_issuer', 'user_subject', 'token_fingerprint', 'session_fingerprint', 'method', 'target', 'decision',
  'rule_ids', 'reason', 'outcome', 'latency_ms', 'downstream_strategy',
] as const;

/**
 * The embedded audit store. WAL with synchronous=NORMAL: each append is one
 * transaction that survives a process crash; the last moments before a power
 * loss may be lost (fsync happens at checkpoints), which we accept for an
 * embedded default. Appends are synchronous, so a failure surfaces before the
 * call is forwarded.
 */
export class SqliteAuditStore implements AuditStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS audit_events (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      ${COLUMNS.map((c) => `${c} ${c === 'ts' || c === 'latency_ms' ? 'REAL' : 'TEXT'}`).join(',\n      ')}
    )`);
    this.insert = this.db.prepare(`INSERT INTO audit_events (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => `@${c}`).join(', ')})`);
  }

  append(e: AuditEvent): void {
    this.insert.run({
      ts: e.ts, kind: e.kind, call_id: e.callId ?? null, route: e.route ?? null, upstream: e.upstream ?? null,
      transport: e.transport ?? null, client_id: e.clientId ?? null, client_method: e.clientMethod ?? null,
      credential_id: e.credentialId ?? null, user_issuer: e.userIssuer ?? null, user_subject: e.userSubject ?? null,
      token_fingerprint: e.tokenFingerprint ?? null, session_fingerprint: e.sessionFingerprint ?? null,
      method: e.method ?? null, target: e.target ?? null, decision: e.decision ?? null,
      rule_ids: e.ruleIds ? JSON.stringify(e.ruleIds) : null, reason: e.reason ?? null, outcome: e.outcome ?? null,
      latency_ms: e.latencyMs ?? null, downstream_strategy: e.downstreamStrategy ?? null,
    });
  }

  query(filter: { limit?: number; kind?: AuditEvent['kind']; subject?: string } = {}): AuditEvent[] {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: filter.limit ?? 100 };
    if (filter.kind) { where.push('kind = @kind'); params.kind = filter.kind; }
    if (filter.subject) { where.push('user_subject = @subject'); params.subject = filter.subject; }
    const rows = this.db.prepare(`SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT @limit`).all(params) as Record<string, unknown>[];
    return rows.reverse().map(rowToEvent);
  }

  close(): void {
    this.db.close();
  }
}

function rowToEvent(r: Record<string, unknown>): AuditEvent {
  const s = (k: string) => (r[k] === null ? undefined : (r[k] as string));
  return {
    ts: r.ts as number, kind: r.kind as AuditEvent['kind'], callId: s('call_id'), route: s('route'), upstream: s('upstream'),
    transport: s('transport'), clientId: s('client_id'), clientMethod: s('client_method'), credentialId: s('credential_id'),
    userIssuer: s('user_issuer'), userSubject: s('user_subject'), tokenFingerprint: s('token_fingerprint'),
    sessionFingerprint: s('session_fingerprint'), method: s('method'), target: s('target'),
    decision: s('decision') as AuditEvent['decision'], ruleIds: r.rule_ids ? (JSON.parse(r.rule_ids as string) as string[]) : undefined,
    reason: s('reason'), outcome: s('outcome'), latencyMs: r.latency_ms === null ? undefined : (r.latency_ms as number),
    downstreamStrategy: s('downstream_strategy'),
  };
}
