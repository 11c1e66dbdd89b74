import type { EvidencePack } from './schema.js';
import { escapeXml, exchangeRefs, locationText, OUTCOME_LABEL, type Item } from './text.js';

type Check = EvidencePack['checks'][number];

/** Attribute values keep their line breaks only as character references; raw ones are normalised away by XML parsers. */
function attr(s: string): string {
  return escapeXml(s).replace(/\r/g, '&#13;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
}

/** The JUnit XSD's timestamp has no zone; the review's times are UTC. */
function junitTimestamp(iso: string): string {
  return iso.replace(/(\.\d+)?Z$/, '');
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

function itemLine(i: Item): string {
  const parts = [`[${OUTCOME_LABEL[i.outcome]}] ${i.probe}`];
  if (i.expected) parts.push(`expected: ${i.expected}`);
  if (i.observed) parts.push(`observed: ${i.observed}`);
  if (i.detail) parts.push(i.detail);
  if (i.location) parts.push(`at ${locationText(i.location)}`);
  if (i.accepted) parts.push(`accepted: ${i.accepted.reason}`);
  const refs = exchangeRefs(i.exchanges);
  if (refs) parts.push(`transcript ${refs}`);
  return parts.join(' — ');
}

function body(c: Check): string {
  return escapeXml([c.finding, ...(c.reason && c.reason !== c.finding ? [`reason: ${c.reason}`] : []), `remediation: ${c.remediation}`, ...c.evidence.map(itemLine)].join('\n'));
}

function testcase(c: Check): string {
  const open = `    <testcase classname="${attr(c.id)}" name="${attr(c.title)}" time="${seconds(c.durationMs)}"`;
  switch (c.status) {
    case 'fail':
      return `${open}>\n      <failure message="${attr(c.finding)}" type="fail">${body(c)}</failure>\n    </testcase>`;
    case 'partial':
      return `${open}>\n      <failure message="${attr(c.finding)}" type="partial">${body(c)}</failure>\n    </testcase>`;
    case 'warn':
      return `${open}>\n      <system-out>${escapeXml('WARN (a SHOULD-level deviation, not a failure)\n')}${body(c)}</system-out>\n    </testcase>`;
    case 'not-assessed':
    case 'n/a':
      return `${open}>\n      <skipped message="${attr(`${c.status === 'n/a' ? 'not applicable' : 'not assessed'}: ${c.reason ?? c.finding}`)}"/>\n    </testcase>`;
    case 'pass':
      return `${open}>\n      <system-out>${body(c)}</system-out>\n    </testcase>`;
  }
}

/** junit.xml for CI: a check is a test case; partial counts as a failure (a boundary was not fully shown), not-assessed and n/a as skipped. */
export function renderJunit(pack: EvidencePack): string {
  const tests = pack.checks.length;
  const failures = pack.checks.filter((c) => c.status === 'fail' || c.status === 'partial').length;
  const skipped = pack.checks.filter((c) => c.status === 'not-assessed' || c.status === 'n/a').length;
  const time = seconds(pack.review.durationMs);
  const counts = `tests="${tests}" failures="${failures}" errors="0" skipped="${skipped}" time="${time}"`;
  const props = [
    ['target', pack.target.url ?? pack.target.configFile ?? pack.target.repoDir ?? pack.target.command ?? ''],
    ['behalf.version', pack.tool.version],
    ['requests', `${pack.review.requests} of ${pack.review.maxRequests}`],
  ].map(([k, v]) => `      <property name="${attr(k!)}" value="${attr(v!)}"/>`);
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="behalf review" ${counts}>
  <testsuite name="behalf review" ${counts} timestamp="${attr(junitTimestamp(pack.review.startedAt))}">
    <properties>
${props.join('\n')}
    </properties>
${pack.checks.map(testcase).join('\n')}
  </testsuite>
</testsuites>
`;
}
