import type { SkipWhy } from '../policy/replay/record-view.js';
import type { ChangeKind, Example, ReplayReport, Tally } from '../policy/replay/report.js';

const CHANGE_TITLES: Record<ChangeKind, string> = {
  'deny→allow': 'deny → allow',
  'allow→deny': 'allow → deny',
  'step-up': 'step-up changes',
};

const SKIP_WHY: Record<SkipWhy, string> = {
  'rate limited': 'rate limits depend on when calls came, not on the policy: these are not decided again',
  'tool catalogue': "the decision depended on the upstream's tool list at the time, which the trail does not hold",
  'refused before the policy': 'refused by an earlier step (user context, continuation): the policy was not consulted',
  'gateway error': 'the gateway could not evaluate the policy at the time',
  'not a decision': 'not a decision',
};

/** A table cell: pipes and line breaks would break the row. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s+/g, ' ');

function counts(m: Record<string, number>): string {
  return Object.entries(m)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, n]) => `${k} (${n})`)
    .join(', ');
}

function exampleTable(examples: readonly Example[]): string[] {
  return [
    '| seq | user | client | call | before | after |',
    '| ---: | --- | --- | --- | --- | --- |',
    ...examples.map(
      (e) =>
        `| ${e.seq} | ${cell(e.user)} | ${cell(e.client)} | ${cell(e.call)} | ${cell(e.before)} | ${cell(e.after)} |`,
    ),
  ];
}

function changeSection(kind: ChangeKind, t: Tally): string[] {
  if (!t.count) return [];
  return [
    `### ${CHANGE_TITLES[kind]}: ${t.count}`,
    '',
    `- by rule: ${counts(t.byRule)}`,
    `- by tool/resource: ${counts(t.byTarget)}`,
    `- by client: ${counts(t.byClient)}`,
    `- by user: ${counts(t.byUser)}`,
    '',
    ...exampleTable(t.examples),
    '',
  ];
}

/** The report as Markdown, for a terminal or a pull-request comment. */
export function formatReplayMarkdown(r: ReplayReport): string {
  const range = r.fromSeq === undefined ? 'an empty trail' : `seq ${r.fromSeq}–${r.toSeq}`;
  const lines = [
    `## Policy replay: ${r.policy.file ? `\`${r.policy.file}\` ` : ''}(version ${r.policy.version})`,
    '',
    `${r.decisions} recorded decisions (${range}) decided again with the proposed policy.`,
    '',
    '| result | decisions |',
    '| --- | ---: |',
    `| unchanged | ${r.unchanged} |`,
    ...(Object.keys(CHANGE_TITLES) as ChangeKind[]).map((k) => `| ${CHANGE_TITLES[k]} | ${r.changes[k].count} |`),
    `| undecidable | ${r.undecidable.count} |`,
    `| not re-decided | ${r.notReplayed.count} |`,
    '',
  ];
  for (const k of ['deny→allow', 'allow→deny', 'step-up'] as const) lines.push(...changeSection(k, r.changes[k]));
  if (r.undecidable.count) {
    lines.push(
      `### undecidable: ${r.undecidable.count}`,
      '',
      'A rule reads a value the trail does not hold: these decisions are not guessed.',
      '',
      `- by rule: ${counts(r.undecidable.byRule)}`,
      '',
      '| read | decisions | to make it decidable |',
      '| --- | ---: | --- |',
      ...Object.entries(r.undecidable.byRead).map(([read, t]) => `| ${cell(read)} | ${t.count} | ${cell(t.remedy)} |`),
      '',
      ...exampleTable(r.undecidable.examples),
      '',
    );
  }
  if (r.notReplayed.count) {
    lines.push(`### not re-decided: ${r.notReplayed.count}`, '');
    for (const [why, n] of Object.entries(r.notReplayed.byReason))
      lines.push(`- ${why}: ${n} — ${SKIP_WHY[why as SkipWhy]}`);
    lines.push('');
  }
  const g = r.gate;
  if (g.failOn === 'none') lines.push('Gate: none (`--fail-on none`).');
  else if (g.tripped)
    lines.push(
      `**Gate \`--fail-on ${g.failOn}\`: failed** — ${g.failOn === 'new-allows' ? `${r.newAllows} new allow(s)` : 'decisions changed'}.`,
    );
  else lines.push(`Gate \`--fail-on ${g.failOn}\`: passed.`);
  return `${lines.join('\n')}\n`;
}

/** One line per change as `--follow` sees it. */
export function formatLiveChange(kind: string, e: Example): string {
  return `seq ${e.seq} ${kind}: ${e.user} via ${e.client}: ${e.call}: ${e.before} → ${e.after}\n`;
}
