import { CHECKLIST, CHECKLIST_QUESTION, type CheckId } from '../catalog.js';
import type { Exchange } from '../transcript.js';
import type { EvidencePack } from './schema.js';
import {
  escapeXml as esc, exchangeRefs, fingerprintLines, formatDuration, locationText, OUTCOME_LABEL, STATUS_LABEL, STATUS_ORDER,
  targetLines, type Item, type Status,
} from './text.js';

type Check = EvidencePack['checks'][number];

/*
 * One self-contained page: no script, no font, no image, no link that leaves
 * the file. The CSP below is a second wall: even if a value escaped its
 * escaping, the browser would run nothing and fetch nothing.
 */
const CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

const CSS = `
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --bg-soft:#f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 70rem; padding: 2rem 1.5rem 4rem; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: #fff; }
h1 { font-size: 1.9rem; margin: 0 0 .2rem; }
h2 { font-size: 1.35rem; margin: 2rem 0 .6rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.sub { color: var(--muted); margin: 0 0 1.5rem; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1.25rem; margin: 0; }
dl.facts dt { font-weight: 600; color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .35rem .5rem; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: var(--bg-soft); white-space: nowrap; overflow-wrap: normal; }
td.nowrap { white-space: nowrap; overflow-wrap: normal; }
tr { break-inside: avoid; page-break-inside: avoid; }
.badge { display: inline-block; min-width: 6.5em; text-align: center; padding: .05rem .45rem; border-radius: .3rem; border: 1px solid; font-weight: 700; font-size: .8rem; letter-spacing: .03em; white-space: nowrap; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
.s-fail { background: #b42318; border-color: #7a1a12; color: #fff; }
.s-warn { background: #fff4e5; border-color: #b35900; color: #6b3500; }
.s-partial { background: #fdf0c4; border-color: #b58100; color: #5c4000; }
.s-pass { background: #dcf5e3; border-color: #1a7f37; color: #0f5323; }
.s-not-assessed { background: #e7ecf3; border-color: #57606a; color: #24292f; }
.s-n-a { background: #fff; border-color: #8c959f; color: #57606a; }
.o-bad { color: #b42318; font-weight: 700; }
.o-warn { color: #b35900; font-weight: 700; }
.o-ok { color: #1a7f37; }
.o-not-assessed, .o-n-a, .o-info { color: var(--muted); }
.totals { display: flex; flex-wrap: wrap; gap: .5rem; margin: 1rem 0; }
ul.questions { list-style: none; padding: 0; margin: 0; }
ul.questions li { margin: .2rem 0; }
section.check { margin-top: 2.5rem; }
section.check h2 { display: flex; gap: .75rem; align-items: baseline; flex-wrap: wrap; }
section.check h2 .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.none { color: var(--muted); font-style: italic; }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; }
a { color: inherit; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  a { text-decoration: none; }
  section.check, section.appendix { break-before: page; page-break-before: always; margin-top: 0; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  @page { margin: 16mm 14mm; }
}
`;

function badge(s: Status): string {
  return `<span class="badge s-${s === 'n/a' ? 'n-a' : s}">${esc(STATUS_LABEL[s])}</span>`;
}

function facts(rows: Array<[string, string]>): string {
  return `<dl class="facts">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`;
}

function itemRow(i: Item): string {
  const detail = [
    i.detail ? esc(i.detail) : '',
    i.location ? `at <code>${esc(locationText(i.location))}</code>` : '',
    i.fingerprint ? `fingerprint <code>${esc(i.fingerprint)}</code>` : '',
    i.accepted ? `accepted: ${esc(i.accepted.reason)}` : '',
  ].filter(Boolean).join('<br>');
  return `<tr><td class="nowrap o-${i.outcome === 'n/a' ? 'n-a' : i.outcome}">${esc(OUTCOME_LABEL[i.outcome])}${i.severity ? ` (${esc(i.severity)})` : ''}</td><td>${esc(i.probe)}</td>`
    + `<td>${esc(i.expected ?? '')}</td><td>${esc(i.observed ?? '')}</td><td>${detail}</td><td class="mono">${esc(exchangeRefs(i.exchanges))}</td></tr>`;
}

function checkSection(c: Check): string {
  const rows: Array<[string, string]> = [
    ['Question', c.question],
    ['Checklist', `${CHECKLIST_QUESTION[c.id as CheckId]}. ${CHECKLIST[CHECKLIST_QUESTION[c.id as CheckId]]}`],
    ['Status', STATUS_LABEL[c.status]],
    ...(c.severity ? [['Severity', c.severity] as [string, string]] : []),
    ['Finding', c.finding],
    ...(c.reason && c.reason !== c.finding ? [['Reason', c.reason] as [string, string]] : []),
    ['Remediation', c.remediation],
    ['Duration', formatDuration(c.durationMs)],
  ];
  const evidence = c.evidence.length === 0
    ? '<p class="none">No evidence items.</p>'
    : `<table class="evidence"><thead><tr><th>outcome</th><th>probe</th><th>expected</th><th>observed</th><th>detail</th><th>transcript</th></tr></thead><tbody>${c.evidence.map(itemRow).join('')}</tbody></table>`;
  return `<section class="check" id="${esc(c.id)}" data-status="${esc(c.status)}" aria-labelledby="${esc(c.id)}-h">
<h2 id="${esc(c.id)}-h"><span class="id">${esc(c.id)}</span> <span>${esc(c.title)}</span> ${badge(c.status)}</h2>
${facts(rows)}
<h3>Evidence</h3>
${evidence}
</section>`;
}

function transcriptAppendix(exchanges: readonly Exchange[]): string {
  if (exchanges.length === 0) return '';
  const rows = exchanges.map((e) => {
    const res = e.response ? String(e.response.status) : e.error ? `error: ${e.error}` : '';
    return `<tr><td class="mono nowrap">#${e.n}</td><td>${esc(e.check)}</td><td>${esc(e.label)}</td><td class="mono">${esc(`${e.request.method} ${e.request.url}`)}</td><td>${esc(res)}</td><td>${e.ms ?? ''}</td></tr>`;
  });
  return `<section class="appendix" id="transcript">
<h2>Transcript</h2>
<p>Every request the review sent, in order. Headers and bodies, redacted, are in <code>transcripts.jsonl</code>.</p>
<table><thead><tr><th>#</th><th>check</th><th>step</th><th>request</th><th>response</th><th>ms</th></tr></thead><tbody>${rows.join('')}</tbody></table>
</section>`;
}

/** report.html: a cover with the summary, then one printable page per check. Every value is escaped; nothing is fetched or run. */
export function renderHtml(pack: EvidencePack, exchanges: readonly Exchange[]): string {
  const r = pack.review;
  const cover: Array<[string, string]> = [
    ...targetLines(pack),
    ['Date', `${r.startedAt} – ${r.finishedAt}`],
    ['Duration', formatDuration(r.durationMs)],
    ['Requests used', `${r.requests} of ${r.maxRequests}`],
    ['Identities', r.identities.length ? r.identities.join(', ') : '(none: no profile)'],
    ['Safe to call', r.safeToCall.length ? r.safeToCall.join(', ') : '(none)'],
    ['Reviewed with', `${pack.tool.name} ${pack.tool.version}`],
  ];
  const totals = STATUS_ORDER.map((s) => `<span>${badge(s)} ${pack.summary[s] ?? 0}</span>`).join('');
  const questions = Object.entries(CHECKLIST).map(([n, q]) => {
    const items = pack.checks.filter((c) => CHECKLIST_QUESTION[c.id as CheckId] === Number(n))
      .map((c) => `<li>${badge(c.status)} <a href="#${esc(c.id)}">${esc(c.id)} ${esc(c.title)}</a>: ${esc(c.finding)}</li>`);
    return `<h3>${esc(`${n}. ${q}`)}</h3><ul class="questions">${items.join('')}</ul>`;
  }).join('\n');
  const summary = pack.checks.map((c) => `<tr><td class="mono nowrap"><a href="#${esc(c.id)}">${esc(c.id)}</a></td><td>${esc(c.title)}</td><td>${badge(c.status)}</td><td>${esc(c.finding)}</td></tr>`).join('');
  const title = `behalf review — ${pack.target.url ?? pack.target.configFile ?? pack.target.repoDir ?? pack.target.command ?? 'evidence report'}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(CSP)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header class="cover" id="cover">
<h1>behalf review</h1>
<p class="sub">MCP authentication boundary — evidence report</p>
${facts(cover)}
<div class="totals">${totals}</div>
<h2>Fingerprint</h2>
<p>A change to any of these means the review is due again (<code>behalf review diff</code>).</p>
${facts(fingerprintLines(pack))}
<h2>The five questions</h2>
${questions}
<h2>Summary</h2>
<table class="summary"><thead><tr><th>id</th><th>title</th><th>status</th><th>finding</th></tr></thead><tbody>${summary}</tbody></table>
</header>
<main>
${pack.checks.map(checkSection).join('\n')}
${transcriptAppendix(exchanges)}
</main>
<footer>Generated by ${esc(`${pack.tool.name} ${pack.tool.version}`)}; evidence schema v${pack.schemaVersion}. The machine-readable pack is <code>evidence.json</code>.</footer>
</body>
</html>
`;
}
