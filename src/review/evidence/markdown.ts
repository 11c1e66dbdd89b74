import { CHECKLIST, CHECKLIST_QUESTION, type CheckId } from '../catalog.js';
import type { EvidencePack } from './schema.js';
import {
  exchangeRefs, fingerprintLines, formatDuration, locationText, OUTCOME_LABEL, STATUS_LABEL, summaryLine, targetLines, type Item,
} from './text.js';

type Check = EvidencePack['checks'][number];

/**
 * Server-controlled text (tool names, error messages, echoed bodies) must
 * not become markup when the report is rendered (GitHub, an IDE preview):
 * inline HTML and link/emphasis syntax are backslash-escaped, line breaks
 * folded so a value cannot start a heading or break a table row.
 */
export function mdText(s: string): string {
  return s.replace(/\r?\n|\r/g, ' ').replace(/[\\`*[\]<>|&]/g, (c) => `\\${c}`);
}

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function table(head: string[], rows: string[][]): string[] {
  return [row(head), row(head.map(() => '---')), ...rows.map(row)];
}

function itemRow(item: Item): string[] {
  const detail = [
    item.detail ? mdText(item.detail) : '',
    item.location ? `at ${mdText(locationText(item.location))}` : '',
    item.fingerprint ? `fingerprint ${mdText(item.fingerprint)}` : '',
    item.accepted ? `accepted: ${mdText(item.accepted.reason)}` : '',
  ].filter(Boolean).join('; ');
  return [
    (item.outcome === 'bad' ? `**${OUTCOME_LABEL.bad}**` : OUTCOME_LABEL[item.outcome]) + (item.severity ? ` (${item.severity})` : ''),
    mdText(item.probe),
    item.expected ? mdText(item.expected) : '',
    item.observed ? mdText(item.observed) : '',
    detail,
    exchangeRefs(item.exchanges),
  ];
}

function checkSection(c: Check): string[] {
  const out = [
    `### ${c.id} ${mdText(c.title)} — ${STATUS_LABEL[c.status]}`,
    '',
    `- **Question:** ${mdText(c.question)}`,
    `- **Status:** ${STATUS_LABEL[c.status]}`,
    ...(c.severity ? [`- **Severity:** ${c.severity}`] : []),
    `- **Finding:** ${mdText(c.finding)}`,
  ];
  if (c.reason && c.reason !== c.finding) out.push(`- **Reason:** ${mdText(c.reason)}`);
  out.push(`- **Remediation:** ${mdText(c.remediation)}`, `- **Duration:** ${formatDuration(c.durationMs)}`, '');
  if (c.evidence.length === 0) out.push('No evidence items.', '');
  else out.push(...table(['outcome', 'probe', 'expected', 'observed', 'detail', 'transcript'], c.evidence.map(itemRow)), '');
  return out;
}

/** report.md: what a reviewer reads first, in the order of the five questions of docs/architecture.md §1. */
export function renderMarkdown(pack: EvidencePack): string {
  const r = pack.review;
  const lines: string[] = [
    '# behalf review — evidence report',
    '',
    ...table(['', ''], [
      ...targetLines(pack).map(([k, v]) => [k, mdText(v)]),
      ['Date', `${r.startedAt} – ${r.finishedAt}`],
      ['Duration', formatDuration(r.durationMs)],
      ['Requests used', `${r.requests} of ${r.maxRequests}`],
      ['Identities', r.identities.length ? mdText(r.identities.join(', ')) : '(none: no profile)'],
      ['Safe to call', r.safeToCall.length ? mdText(r.safeToCall.join(', ')) : '(none)'],
      ['Reviewed with', `${pack.tool.name} ${mdText(pack.tool.version)}`],
      ['Result', summaryLine(pack)],
    ]),
    '',
    '## Fingerprint',
    '',
    'A change to any of these means the review is due again (`behalf review diff`).',
    '',
    ...fingerprintLines(pack).map(([k, v]) => `- **${mdText(k)}:** ${mdText(v)}`),
    '',
    '## The five questions',
    '',
  ];
  for (const [n, question] of Object.entries(CHECKLIST)) {
    lines.push(`### ${n}. ${question}`, '');
    for (const c of pack.checks.filter((x) => CHECKLIST_QUESTION[x.id as CheckId] === Number(n))) {
      lines.push(`- **${STATUS_LABEL[c.status]}** ${c.id} ${mdText(c.title)}: ${mdText(c.finding)}`);
    }
    lines.push('');
  }
  lines.push(
    '## Summary',
    '',
    ...table(['id', 'title', 'status', 'finding'], pack.checks.map((c) => [c.id, mdText(c.title), STATUS_LABEL[c.status], mdText(c.finding)])),
    '',
    '## Checks',
    '',
    'Transcript numbers refer to `transcripts.jsonl` (one redacted request and response per line).',
    '',
  );
  for (const c of pack.checks) lines.push(...checkSection(c));
  return `${lines.join('\n').replace(/\n+$/, '')}\n`;
}
