import { isAbsolute, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sha256Hex } from '../../shared/hash.js';
import { CHECKLIST_QUESTION, type CheckId } from '../catalog.js';
import { CHECK_SEVERITY, sarifLevel, securityScore, type Severity } from '../severity.js';
import type { EvidencePack } from './schema.js';
import { STATUS_LABEL, type Item } from './text.js';

type Check = EvidencePack['checks'][number];

/**
 * SARIF 2.1.0 (OASIS): one run, one rule per check, one result per check,
 * so code-scanning dashboards track each boundary by its stable id. The
 * SARIF rule "kind other than fail ⇒ level none" (§3.27.10) decides how
 * pass, not-assessed and n/a are carried.
 */
export const SARIF_SCHEMA_URI = 'https://json.schemastore.org/sarif-2.1.0.json';

const KIND_LEVEL: Record<Check['status'], { kind: string; level: string }> = {
  // fail and warn take their level from the severity (kindAndLevel); these are the fallbacks.
  fail: { kind: 'fail', level: 'error' },
  warn: { kind: 'fail', level: 'note' },
  partial: { kind: 'fail', level: 'warning' },
  pass: { kind: 'pass', level: 'none' },
  'not-assessed': { kind: 'review', level: 'none' },
  'n/a': { kind: 'notApplicable', level: 'none' },
};

/** A failed or warned check's level follows its severity: critical/high error, medium warning, low note. */
function kindAndLevel(c: Check): { kind: string; level: string } {
  if ((c.status === 'fail' || c.status === 'warn') && c.severity) return { kind: 'fail', level: sarifLevel(c.severity) };
  return KIND_LEVEL[c.status];
}

/**
 * A repo-relative, forward-slash, percent-encoded URI reference, as
 * code-scanning tools resolve it against the checkout; a file outside the
 * reviewed repository keeps its absolute file: URI.
 */
function fileUri(file: string, base: string | undefined): string {
  let p = file;
  if (isAbsolute(p) && base && isAbsolute(base)) {
    const rel = relative(base, p);
    if (rel && !rel.startsWith('..') && !isAbsolute(rel)) p = rel;
  }
  if (isAbsolute(p)) return pathToFileURL(p).href;
  return encodeURI(p.split(sep).join('/')).replace(/[?#]/g, encodeURIComponent);
}

/** The items a result points at: the bad ones when the check failed, else every item that has a place. */
function pointedItems(c: Check): Item[] {
  const located = c.evidence.filter((i) => i.location);
  const found = located.filter((i) => i.outcome === 'bad' || i.outcome === 'warn');
  return (c.status === 'fail' || c.status === 'warn' || c.status === 'partial') && found.length > 0 ? found : located;
}

function locations(c: Check, pack: EvidencePack): unknown[] {
  const out: unknown[] = [];
  for (const item of pointedItems(c)) {
    const loc = item.location!;
    out.push({
      physicalLocation: {
        artifactLocation: { uri: fileUri(loc.file, pack.target.repoDir) },
        ...(loc.line ? { region: { startLine: loc.line } } : {}),
      },
      ...(loc.path ? { logicalLocations: [{ fullyQualifiedName: loc.path, kind: 'member' }] } : {}),
      ...(item.detail ? { message: { text: item.detail } } : {}),
    });
  }
  if (out.length === 0 && pack.target.url) out.push({ logicalLocations: [{ fullyQualifiedName: pack.target.url, kind: 'resource' }] });
  return out;
}

function partialFingerprints(c: Check): Record<string, string> | undefined {
  const bad = c.evidence.filter((i) => i.fingerprint && i.outcome === 'bad').map((i) => i.fingerprint!);
  const fps = [...new Set(bad.length > 0 ? bad : c.evidence.filter((i) => i.fingerprint).map((i) => i.fingerprint!))].sort();
  if (fps.length === 0) return undefined;
  // One key, one value: several findings fold into one stable digest so the same set matches across runs.
  const value = fps.length === 1 ? fps[0]! : `sha256:${sha256Hex(fps.join('\n'))}`;
  return { 'behalfFindings/v1': value };
}

function message(c: Check): string {
  switch (c.status) {
    case 'not-assessed': return `Not assessed: ${c.reason ?? c.finding}`;
    case 'n/a': return `Not applicable: ${c.reason ?? c.finding}`;
    default: return `${STATUS_LABEL[c.status]}: ${c.finding}`;
  }
}

export function renderSarif(pack: EvidencePack): Record<string, unknown> {
  const rules = pack.checks.map((c) => ({
    id: c.id,
    name: c.title,
    shortDescription: { text: c.question },
    help: { text: c.remediation },
    defaultConfiguration: { level: sarifLevel(CHECK_SEVERITY[c.id as CheckId]) },
    properties: {
      checklistQuestion: CHECKLIST_QUESTION[c.id as CheckId],
      tags: ['security', 'mcp', 'authentication'],
      severity: CHECK_SEVERITY[c.id as CheckId],
      'security-severity': securityScore(CHECK_SEVERITY[c.id as CheckId]),
    },
  }));
  const results = pack.checks.map((c, ruleIndex) => {
    const fp = partialFingerprints(c);
    const locs = locations(c, pack);
    return {
      ruleId: c.id,
      ruleIndex,
      ...kindAndLevel(c),
      message: { text: message(c) },
      ...(locs.length > 0 ? { locations: locs } : {}),
      ...(fp ? { partialFingerprints: fp } : {}),
      properties: { status: c.status, ...(c.severity ? { severity: c.severity as Severity, 'security-severity': securityScore(c.severity as Severity) } : {}), ...(c.reason ? { reason: c.reason } : {}), durationMs: c.durationMs, evidence: c.evidence },
    };
  });
  return {
    $schema: SARIF_SCHEMA_URI,
    version: '2.1.0',
    runs: [{
      tool: { driver: { name: 'behalf review', version: pack.tool.version, rules } },
      invocations: [{ executionSuccessful: true, startTimeUtc: pack.review.startedAt, endTimeUtc: pack.review.finishedAt }],
      results,
      properties: { target: pack.target, fingerprint: pack.fingerprint, summary: pack.summary },
    }],
  };
}
