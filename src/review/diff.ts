import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BehalfError } from '../errors.js';
import { CHECKS } from './catalog.js';
import { EVIDENCE_SCHEMA_ID, EVIDENCE_SCHEMA_VERSION, EvidencePackSchema, type EvidencePack } from './evidence/schema.js';

type Status = EvidencePack['checks'][number]['status'];

export interface StatusChange { id: string; from: Status; to: Status }

export interface PackDiff {
  /** True when what the old review looked at is no longer what is deployed: server, protocol, tools, config, keys or target. */
  reassessmentDue: boolean;
  reasons: string[];
  statusChanges: StatusChange[];
}

/** A file or folder that is not a readable evidence pack; the message names it. */
export class PackReadError extends BehalfError {
  constructor(readonly file: string, why: string, options?: { cause?: unknown }) {
    super('pack_unreadable', `${file}: ${why}`, {}, options);
    this.name = 'PackReadError';
  }
}

/** Reads evidence.json from a pack folder, or the file itself, and validates it against the v1 schema. */
export async function readPack(path: string): Promise<EvidencePack> {
  let file = path;
  try {
    if ((await stat(path)).isDirectory()) file = join(path, 'evidence.json');
  } catch (err) {
    throw new PackReadError(path, 'no such file or directory', { cause: err });
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new PackReadError(file, missing ? 'not found (is this an evidence pack folder?)' : `cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PackReadError(file, `not JSON: ${(err as Error).message}`, { cause: err });
  }
  const head = (json && typeof json === 'object' ? json : {}) as { $schema?: unknown; schemaVersion?: unknown };
  if (typeof head.$schema !== 'string' || !/^https:\/\/behalf\.dev\/schema\/evidence\.v\d+\.schema\.json$/.test(head.$schema)) {
    throw new PackReadError(file, `not a behalf evidence pack (expected "$schema": "${EVIDENCE_SCHEMA_ID}")`);
  }
  if (typeof head.schemaVersion === 'number' && head.schemaVersion > EVIDENCE_SCHEMA_VERSION) {
    throw new PackReadError(file, `evidence pack v${head.schemaVersion} was written by a newer behalf; this one reads v${EVIDENCE_SCHEMA_VERSION}`);
  }
  const parsed = EvidencePackSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
    const more = parsed.error.issues.length > 5 ? ` (and ${parsed.error.issues.length - 5} more)` : '';
    throw new PackReadError(file, `not a valid evidence pack v${EVIDENCE_SCHEMA_VERSION}: ${issues.join('; ')}${more}`);
  }
  return parsed.data;
}

/** "sha256:0123456789ab…": enough to tell two hashes apart in a sentence. */
function short(h: string | undefined): string {
  if (h === undefined) return '(not recorded)';
  const m = /^(sha256:)?([0-9a-f]{12})[0-9a-f]{8,}$/i.exec(h);
  return m ? `${m[1] ?? ''}${m[2]}…` : h;
}

function shown(v: string | undefined): string {
  return v === undefined ? '(none)' : v;
}

function serverText(s: EvidencePack['fingerprint']['serverInfo']): string {
  return s ? `${s.name} ${s.version}` : '(not observed)';
}

function toolReasons(old: EvidencePack['fingerprint'], neu: EvidencePack['fingerprint']): string[] {
  const out: string[] = [];
  if (old.toolListHash !== neu.toolListHash) out.push(`tool list changed (hash ${short(old.toolListHash)} → ${short(neu.toolListHash)})`);
  const names = [...new Set([...Object.keys(old.toolsByIdentity), ...Object.keys(neu.toolsByIdentity)])].sort();
  for (const who of names) {
    const before = old.toolsByIdentity[who];
    const after = neu.toolsByIdentity[who];
    if (!before) {
      out.push(`identity ${who} lists tools only in the new pack: ${after!.join(', ') || '(none)'}`);
      continue;
    }
    if (!after) {
      out.push(`identity ${who} listed tools only in the old pack: ${before.join(', ') || '(none)'}`);
      continue;
    }
    const added = after.filter((t) => !before.includes(t));
    const removed = before.filter((t) => !after.includes(t));
    if (added.length || removed.length) {
      out.push(`tools listed to ${who} changed: ${[added.length ? `added ${added.join(', ')}` : '', removed.length ? `removed ${removed.join(', ')}` : ''].filter(Boolean).join('; ')}`);
    }
  }
  return out;
}

/**
 * Compares two packs of the same deployment. A re-assessment is due when
 * anything the review's verdicts rest on changed; status changes are
 * reported alongside (they show what the new review found, not why it is due).
 */
export function diffPacks(old: EvidencePack, neu: EvidencePack): PackDiff {
  const reasons: string[] = [];
  const fo = old.fingerprint;
  const fn = neu.fingerprint;
  for (const k of ['url', 'transport', 'configFile', 'repoDir', 'command'] as const) {
    if (old.target[k] !== neu.target[k]) reasons.push(`target changed: ${k} ${shown(old.target[k])} → ${shown(neu.target[k])}`);
  }
  if (!fo.serverInfo || !fn.serverInfo) {
    if (fo.serverInfo || fn.serverInfo) reasons.push(`server info changed: ${serverText(fo.serverInfo)} → ${serverText(fn.serverInfo)}`);
  } else {
    if (fo.serverInfo.name !== fn.serverInfo.name) reasons.push(`server name changed: ${fo.serverInfo.name} → ${fn.serverInfo.name}`);
    if (fo.serverInfo.version !== fn.serverInfo.version) reasons.push(`server version changed: ${fn.serverInfo.name} ${fo.serverInfo.version} → ${fn.serverInfo.version}`);
  }
  if (fo.protocolVersion !== fn.protocolVersion) reasons.push(`protocol version changed: ${shown(fo.protocolVersion)} → ${shown(fn.protocolVersion)}`);
  reasons.push(...toolReasons(fo, fn));
  if (fo.configHash !== fn.configHash) reasons.push(`config changed (hash ${short(fo.configHash)} → ${short(fn.configHash)})`);
  if (fo.keysHash !== fn.keysHash) reasons.push(`keys changed (hash ${short(fo.keysHash)} → ${short(fn.keysHash)})`);

  const statusChanges: StatusChange[] = [];
  for (const c of neu.checks) {
    const before = old.checks.find((o) => o.id === c.id);
    if (before && before.status !== c.status) statusChanges.push({ id: c.id, from: before.status, to: c.status });
  }
  return { reassessmentDue: reasons.length > 0, reasons, statusChanges };
}

/** The diff as a reviewer reads it on a terminal. */
export function formatDiff(d: PackDiff): string {
  const lines = d.reassessmentDue
    ? [`Re-assessment due: yes (${d.reasons.length} ${d.reasons.length === 1 ? 'change' : 'changes'})`, ...d.reasons.map((r) => `  - ${r}`)]
    : ['Re-assessment due: no (server, protocol version, tools, config, keys and target unchanged)'];
  if (d.statusChanges.length === 0) lines.push('Status changes: none');
  else {
    lines.push('Status changes:');
    for (const s of d.statusChanges) {
      const title = CHECKS.find((c) => c.id === s.id)?.title;
      lines.push(`  - ${s.id}${title ? ` ${title}` : ''}: ${s.from} → ${s.to}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
