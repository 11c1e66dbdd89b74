import type { CheckResult, CheckStatus } from '../review/types.js';

const COLOUR: Record<CheckStatus, string> = {
  pass: '32',
  fail: '31',
  partial: '33',
  'not-assessed': '90',
  'n/a': '90',
};

/** The terminal summary: one row per check, status in words (colour only adds to them). */
export function summaryTable(checks: CheckResult[], colour: boolean): string {
  const width = process.stdout.columns && process.stdout.columns > 60 ? process.stdout.columns : 120;
  const rows = checks.map((c) => [c.id, c.title, c.status, c.finding]);
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), ['check', 'title', 'status'][i]!.length));
  const line = (r: string[], status?: CheckStatus) => {
    const st = r[2]!.padEnd(w[2]!);
    const used = w[0]! + w[1]! + w[2]! + 6;
    const finding = r[3]!.length > width - used ? `${r[3]!.slice(0, Math.max(10, width - used - 1))}…` : r[3]!;
    return `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${colour && status ? `\u001b[${COLOUR[status]}m${st}\u001b[0m` : st}  ${finding}`;
  };
  return [line(['check', 'title', 'status', 'finding']), ...checks.map((c, i) => line(rows[i]!, c.status))].join('\n');
}
