import type { EvidencePack } from './schema.js';

/** Words shared by every report format, so a reader sees the same labels in Markdown, HTML, SARIF and JUnit. */

export type Status = EvidencePack['checks'][number]['status'];
export type Item = EvidencePack['checks'][number]['evidence'][number];

export const STATUS_ORDER: readonly Status[] = ['fail', 'warn', 'partial', 'pass', 'not-assessed', 'n/a'];

export const STATUS_LABEL: Record<Status, string> = {
  pass: 'PASS',
  fail: 'FAIL',
  warn: 'WARN',
  partial: 'PARTIAL',
  'not-assessed': 'NOT ASSESSED',
  'n/a': 'N/A',
};

export const OUTCOME_LABEL: Record<Item['outcome'], string> = {
  ok: 'ok',
  bad: 'BAD',
  warn: 'warn',
  'not-assessed': 'not assessed',
  'n/a': 'n/a',
  info: 'info',
};

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** "#3–5, #9": transcript exchange numbers, runs folded, so a long probe series stays one line. */
export function exchangeRefs(ns: readonly number[] | undefined): string {
  if (!ns || ns.length === 0) return '';
  const sorted = [...new Set(ns)].sort((a, b) => a - b);
  const parts: string[] = [];
  let start = sorted[0]!;
  let prev = start;
  for (const n of [...sorted.slice(1), Number.NaN]) {
    if (n === prev + 1) {
      prev = n;
      continue;
    }
    parts.push(start === prev ? `#${start}` : `#${start}–${prev}`);
    start = n;
    prev = n;
  }
  return parts.join(', ');
}

export function summaryLine(pack: EvidencePack): string {
  return STATUS_ORDER.map((s) => `${pack.summary[s] ?? 0} ${s}`).join(', ');
}

/** "file:12 (path)": where a static finding sits, never the secret itself. */
export function locationText(loc: Item['location']): string {
  if (!loc) return '';
  return `${loc.file}${loc.line ? `:${loc.line}` : ''}${loc.path ? ` (${loc.path})` : ''}`;
}

/** The target as one line: URL and transport, then whatever static inputs the review had. */
export function targetLines(pack: EvidencePack): Array<[string, string]> {
  const t = pack.target;
  const out: Array<[string, string]> = [];
  if (t.url) out.push(['Target', `${t.url}${t.transport ? ` (${t.transport === 'sse' ? 'HTTP+SSE, 2024-11-05' : 'Streamable HTTP'})` : ''}`]);
  if (t.configFile) out.push(['Config file', t.configFile]);
  if (t.repoDir) out.push(['Repository', t.repoDir]);
  if (t.command) out.push(['Command', t.command]);
  if (out.length === 0) out.push(['Target', 'none given']);
  return out;
}

export function fingerprintLines(pack: EvidencePack): Array<[string, string]> {
  const f = pack.fingerprint;
  const out: Array<[string, string]> = [];
  if (f.serverInfo) out.push(['Server', `${f.serverInfo.name} ${f.serverInfo.version}`]);
  if (f.protocolVersion) out.push(['Protocol version', f.protocolVersion]);
  if (f.toolListHash) out.push(['Tool list hash', f.toolListHash]);
  for (const [who, tools] of Object.entries(f.toolsByIdentity).sort(([a], [b]) => a.localeCompare(b))) {
    out.push([`Tools listed to ${who}`, tools.length ? tools.join(', ') : '(none)']);
  }
  if (f.configHash) out.push(['Config hash', f.configHash]);
  if (f.keysHash) out.push(['Keys hash', f.keysHash]);
  if (out.length === 0) out.push(['Fingerprint', 'nothing observed (no target reached, no config read)']);
  return out;
}

/** Characters XML 1.0 (and so HTML and JUnit consumers) cannot carry at all: dropped rather than breaking the file. */
// eslint-disable-next-line no-control-regex
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Escapes text for XML/HTML element content and double- or single-quoted attributes. */
export function escapeXml(s: string): string {
  return s
    .replace(NOT_XML, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
