import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stateDir } from '../../demo/quickstart/state-files.js';
import type { CheckResult, CheckStatus } from '../review/types.js';

const COLOUR: Record<CheckStatus, string> = {
  pass: '32',
  fail: '31',
  warn: '33',
  partial: '33',
  'not-assessed': '90',
  'n/a': '90',
};

/** Words of `text` in lines of at most `width` columns (a longer word gets a line of its own, never cut). */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line || lines.length === 0) lines.push(line);
  return lines;
}

/** A message wrapped to the terminal, its continuation lines indented under its first word. */
export function wrapText(text: string, columns: number | undefined, prefix = ''): string {
  const width = Math.max(40, (columns ?? 100) - prefix.length);
  return wrapWords(text, width)
    .map((l, i) => (i === 0 ? prefix : ' '.repeat(prefix.length)) + l)
    .join('\n');
}

/** The terminal summary: one row per check, status in words (colour only adds to them); a long finding wraps under its column. */
export function summaryTable(checks: CheckResult[], colour: boolean, columns = process.stdout.columns): string {
  const width = columns && columns > 60 ? columns : 120;
  const rows = checks.map((c) => [c.id, c.title, c.status, c.finding]);
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), ['check', 'title', 'status'][i]!.length));
  const used = w[0]! + w[1]! + w[2]! + 6;
  const line = (r: string[], status?: CheckStatus) => {
    const st = r[2]!.padEnd(w[2]!);
    const [first, ...rest] = wrapWords(r[3]!, Math.max(30, width - used));
    const head = `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${colour && status ? `\u001b[${COLOUR[status]}m${st}\u001b[0m` : st}  ${first}`;
    return [head, ...rest.map((l) => `${' '.repeat(used)}${l}`)].join('\n');
  };
  return [line(['check', 'title', 'status', 'finding']), ...checks.map((c, i) => line(rows[i]!, c.status))].join('\n');
}

/** Run without --profile where a quickstart keeps one: say where it is, since most checks need identities. */
export function quickstartProfileHint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const profile = join(stateDir(env), 'review-profile.yaml');
  if (!existsSync(profile)) return undefined;
  const shown = relative(process.cwd(), profile) || profile;
  return `no --profile given, so the checks that need identities will be not-assessed; this folder's quickstart wrote one: add --profile ${shown} (and --config ${join(shown, '..', 'gateway.yaml')} for the static checks)`;
}
