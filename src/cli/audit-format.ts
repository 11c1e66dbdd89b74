import type { AuditRecord } from '../audit/event.js';

/**
 * Control characters, C1 controls, line/paragraph separators and bidi
 * overrides. Tool names and reasons come from clients: printed raw, they
 * could move the cursor, rewrite earlier lines or reorder text on an
 * operator's terminal.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');

/**
 * A value as one terminal-safe word: as is when plain, else as a JSON string
 * literal (quoted, backslashes and controls escaped) with the characters
 * JSON leaves alone escaped too, so the line is unambiguous.
 */
export function safeWord(value: string | number | undefined): string {
  if (value === undefined || value === '') return '-';
  const s = String(value);
  if (!/[\s"\\]/.test(s) && !UNSAFE.test(s)) return s;
  return JSON.stringify(s).replace(UNSAFE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One line per record: when, what kind, who, through which client, what, the decision and why, and how it ended. */
export function formatRecord(r: AuditRecord): string {
  const user = r.userSubject ? `${r.userSubject}${r.userIssuer ? `@${r.userIssuer}` : ''}` : undefined;
  return [
    Number.isFinite(r.ts) ? new Date(r.ts).toISOString() : '-',
    `#${r.seq}`,
    r.kind,
    `user=${safeWord(user)}`,
    `client=${safeWord(r.clientId)}`,
    safeWord(r.method),
    safeWord(r.target),
    safeWord(r.decision),
    `rules=${safeWord(r.ruleIds?.join(','))}`,
    safeWord(r.outcome ?? r.reason),
  ].join(' ');
}

/** `audit query` for a person: aligned columns, newest last, every cell a safe word (the same escaping as tail). */
export function recordTable(records: readonly AuditRecord[]): string {
  if (records.length === 0) return '(no records match)';
  const head = ['seq', 'time', 'kind', 'user', 'client', 'method', 'target', 'decision', 'rules', 'outcome/reason'];
  const rows = records.map((r) => [
    String(r.seq),
    Number.isFinite(r.ts) ? new Date(r.ts).toISOString().replace('T', ' ').slice(0, 19) : '-',
    r.kind,
    safeWord(r.userSubject),
    safeWord(r.clientId),
    safeWord(r.method),
    safeWord(r.target),
    safeWord(r.decision),
    safeWord(r.ruleIds?.join(',')),
    safeWord(r.outcome ?? r.reason),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line), `${records.length} record(s); --json for one JSON record per line`].join('\n');
}
