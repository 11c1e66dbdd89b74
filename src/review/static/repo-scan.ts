import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { KNOWN_FORMATS, literalLooksSecret, nameSuggestsSecret, SECRET_REF } from '../../config/literal-secrets.js';
import { parseYamlText } from '../../config/yaml-file.js';
import { sha256Hex } from '../../shared/hash.js';
import { bitsPerChar, UUID } from '../../shared/secret-shapes.js';
import type { ReviewContext } from '../context.js';
import { profileSchema } from '../profile.js';
import type { EvidenceItem } from '../types.js';

/**
 * BND-10's code part: credentials embedded in a repository (`--repo DIR`).
 * Two kinds of finding: a known key format anywhere (the same patterns the
 * config loader refuses, src/config/literal-secrets.ts), and a literal
 * assigned to a name — `NAME = "value"`, `name: value`, `"name": "value"`,
 * `export NAME=value` — when the name says secret, or when the value is a
 * 24+ character high-entropy string (≥ 3.5 bits per character) that is not
 * an obvious hash, checksum or UUID.
 *
 * A finding is named by file, line and rule, and identified by a
 * fingerprint, `sha256:` + the first 16 hex digits of SHA-256 over
 * `<path relative to the repo, with />:<the matched secret>` — stable across
 * runs and line moves, and never the secret. An owner who has looked at a
 * finding accepts it by that fingerprint, with a reason: in the review
 * profile (`acceptedFindings`) or, so the acceptance travels with the code,
 * in `.behalf-review-accept.yaml` at the repo root, the same list:
 *
 *   - fingerprint: sha256:0123456789abcdef
 *     reason: test fixture key, never deployed
 *
 * (`acceptedFindings:` holding that list is read too). An accepted finding
 * stays in the evidence as info, with the reason.
 */

export const ACCEPT_FILE = '.behalf-review-accept.yaml';
const SKIP_DIRS = new Set(['.git', 'node_modules', 'dist']);
const MAX_FILES = 20_000;
const MAX_BYTES = 1024 * 1024;
/** Evidence items listed; more findings are counted, not listed, so a pack stays readable. */
const MAX_LISTED = 200;
/** Lockfiles are full of integrity hashes: only known key formats are looked for there. */
const LOCKFILES = new Set(['package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lock', 'Cargo.lock', 'poetry.lock', 'Pipfile.lock', 'composer.lock', 'Gemfile.lock', 'go.sum', 'uv.lock']);

export interface RepoFinding {
  /** Relative to the repo, with `/`. */
  file: string;
  line: number;
  /** Why it was reported; never the value. */
  rule: string;
  fingerprint: string;
}

export interface RepoScan {
  files: number;
  skipped: { large: number; binary: number; unreadable: number };
  /** Stopped at MAX_FILES. */
  truncated: boolean;
  findings: RepoFinding[];
}

export interface Acceptance {
  reason: string;
  source: 'profile' | typeof ACCEPT_FILE;
}

export function findingFingerprint(file: string, secret: string): string {
  return `sha256:${sha256Hex(`${file}:${secret}`).slice(0, 16)}`;
}

export function scanRepo(dir: string, limits: { maxFiles?: number; maxBytes?: number } = {}): RepoScan {
  const maxFiles = limits.maxFiles ?? MAX_FILES;
  const maxBytes = limits.maxBytes ?? MAX_BYTES;
  const scan: RepoScan = { files: 0, skipped: { large: 0, binary: 0, unreadable: 0 }, truncated: false, findings: [] };
  const seen = new Set<string>();
  const stack = [dir];
  while (stack.length) {
    const current = stack.pop()!;
    let entries;
    try {
      entries = readdirSync(current, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? 1 : -1));
    } catch {
      // Counted, and the evidence reports the count: a scan names what it could not read, not why.
      scan.skipped.unreadable++;
      continue;
    }
    for (const e of entries) {
      const full = join(current, e.name);
      // Symlinks are not followed: they may point outside the repo, or in a loop.
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) stack.push(full);
        continue;
      }
      if (!e.isFile()) continue;
      if (scan.files >= maxFiles) {
        scan.truncated = true;
        return scan;
      }
      scan.files++;
      let buf: Buffer;
      try {
        if (statSync(full).size > maxBytes) {
          scan.skipped.large++;
          continue;
        }
        buf = readFileSync(full);
      } catch {
        // Counted, as a folder that cannot be listed is.
        scan.skipped.unreadable++;
        continue;
      }
      if (buf.subarray(0, 8000).includes(0)) {
        scan.skipped.binary++;
        continue;
      }
      const rel = relative(dir, full).split(sep).join('/');
      for (const f of scanText(buf.toString('utf8'), rel, LOCKFILES.has(e.name))) {
        if (seen.has(f.fingerprint)) continue;
        seen.add(f.fingerprint);
        scan.findings.push(f);
      }
    }
  }
  return scan;
}

const PEM = 'a PEM private key';
const URL_PASSWORD = 'a URL with an embedded password';
const GLOBAL_FORMATS = KNOWN_FORMATS.map((f) => ({ ...f, re: new RegExp(f.re.source, f.re.flags.includes('g') ? f.re.flags : `${f.re.flags}g`) }));

/** `NAME = "v"`, `"name": "v"`, `name: 'v'`, `NAME := "v"` anywhere in a line. */
const QUOTED = /["']?([A-Za-z_$][\w.$-]*)["']?\s*(?::=|=|:)\s*(["'`])([^"'`\s\\]{8,})\2/g;
/** `export NAME=v`, `NAME=v` (.env, shell), `name: v` (YAML), alone on their line. */
const BARE = /^\s*(?:export\s+|-\s+)?["']?([A-Za-z_][\w.-]*)["']?\s*(?:=|:\s)\s*([A-Za-z0-9+/=_.~:@%-]{8,})\s*(?:[#;].*)?$/;
/** Values that stand for a secret rather than being one. */
const PLACEHOLDER = /^(?:x{4,}|\*{4,}|<.*>|\$\{.*\}|\$[A-Z_]+|\{\{.*\}\}|%.*%|your[-_]|changeme|change[-_]me|example|dummy|placeholder|redacted|secret$|token$|pass(?:word|wd)?$|pwd$)/i;
/** Obvious hashes and checksums (sha256:…, integrity sha512-…, sha1=…, colon-separated certificate fingerprints) and URNs. */
const HASH_VALUE = /^(?:(?:sha(?:1|224|256|384|512)|md5|blake2b?|blake3)[-:=]|urn:)|^(?:[0-9a-f]{2}:){7,}[0-9a-f]{2}$/i;
/** Names (lower-cased, without separators and trailing digits) whose values are identifiers, hashes or links, even when the name mentions a token. */
const NOT_SECRET_NAME = /(?:integrity|checksum|hash|sha\d*|digest|etag|commit|fingerprint|revision|nonce|salt|signature|id|ids|uuid|version|resolved|url|uri|href|src|path|file|kid|thumbprint)$/;

interface Span { start: number; end: number }

export function scanText(text: string, file: string, lockfile = false): RepoFinding[] {
  const out: RepoFinding[] = [];
  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const lineOf = (index: number) => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const spans: Span[] = [];
  const add = (index: number, secret: string, rule: string) => {
    spans.push({ start: index, end: index + secret.length });
    out.push({ file, line: lineOf(index), rule, fingerprint: findingFingerprint(file, secret) });
  };

  for (const f of GLOBAL_FORMATS) {
    f.re.lastIndex = 0;
    for (let m = f.re.exec(text); m; m = f.re.exec(text)) {
      if (m[0].length === 0) f.re.lastIndex++;
      if (f.check && !f.check(m[0])) continue;
      if (f.why === URL_PASSWORD && PLACEHOLDER.test(/:\/\/[^\s/:@]+:([^\s/@]+)@/.exec(m[0])?.[1] ?? '')) continue;
      add(m.index, f.why === PEM ? pemBlock(text, m.index, m[0]) : m[0], f.why);
    }
  }

  const overlaps = (start: number, end: number) => spans.some((s) => start < s.end && s.start < end);
  const judge = (name: string, value: string, index: number) => {
    if (overlaps(index, index + value.length) || SECRET_REF.test(value) || HASH_VALUE.test(value) || PLACEHOLDER.test(value)) return;
    if (NOT_SECRET_NAME.test(name.toLowerCase().replace(/[-_.\s$]/g, '').replace(/\d+$/, ''))) return;
    if (nameSuggestsSecret(name) && literalLooksSecret(value)) add(index, value, `a literal value assigned to ${name}, named like a secret`);
    else if (!lockfile && highEntropy(value)) add(index, value, `a high-entropy string assigned to ${name}`);
  };
  lineStarts.forEach((start, i) => {
    const end = i + 1 < lineStarts.length ? lineStarts[i + 1]! - 1 : text.length;
    const line = text.slice(start, end);
    if (line.length > 4000) return;
    QUOTED.lastIndex = 0;
    let quoted = false;
    for (let m = QUOTED.exec(line); m; m = QUOTED.exec(line)) {
      quoted = true;
      judge(m[1]!, m[3]!, start + m.index + m[0].length - m[3]!.length - 1);
    }
    const bare = quoted ? null : BARE.exec(line);
    if (bare) judge(bare[1]!, bare[2]!, start + line.indexOf(bare[2]!, line.indexOf(bare[1]!) + bare[1]!.length));
  });
  return out.sort((a, b) => a.line - b.line);
}

/** The whole key, so two keys in one file are two findings; the BEGIN line alone if the block is cut. */
function pemBlock(text: string, index: number, begin: string): string {
  const endAt = text.indexOf('-----END', index + begin.length);
  if (endAt === -1) return begin;
  const close = text.indexOf('-----', endAt + 8);
  return close === -1 ? begin : text.slice(index, close + 5);
}

function highEntropy(value: string): boolean {
  // Keys are base64, base64url or hex: anything else (paths, regexes, versions, prose) is not one.
  if (value.length < 24 || !/^[A-Za-z0-9+/=_~-]+$/.test(value) || value.startsWith('/')) return false;
  if (!/[A-Za-z]/.test(value) || !/\d/.test(value)) return false;
  if (UUID.test(value) || /^[0-9a-f]+$/i.test(value)) return false;
  return bitsPerChar(value) >= 3.5;
}

/** Acceptances from the profile and from the repo's own accept file; the profile wins on a clash. */
export function acceptances(ctx: ReviewContext, dir: string): { accepted: Map<string, Acceptance>; problem?: string } {
  const accepted = new Map<string, Acceptance>();
  let problem: string | undefined;
  let text: string | undefined;
  try {
    text = readFileSync(join(dir, ACCEPT_FILE), 'utf8');
  } catch {
    // no accept file
  }
  if (text !== undefined) {
    try {
      const raw = parseYamlText(text, ACCEPT_FILE);
      const list = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>).acceptedFindings : raw;
      const parsed = profileSchema.shape.acceptedFindings.safeParse(list ?? []);
      if (parsed.success) for (const a of parsed.data) accepted.set(a.fingerprint, { reason: a.reason, source: ACCEPT_FILE });
      else problem = `${ACCEPT_FILE} is not a list of { fingerprint, reason }: ignored`;
    } catch (err) {
      problem = `${(err as Error).message}: ignored`;
    }
  }
  for (const a of ctx.profile.acceptedFindings) accepted.set(a.fingerprint, { reason: a.reason, source: 'profile' });
  return { accepted, problem };
}

/** The repo scan as BND-10 evidence; [] without --repo. */
export function repoScanEvidence(ctx: ReviewContext): EvidenceItem[] {
  const dir = ctx.inputs.repoDir;
  if (dir === undefined) return [];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return [{ outcome: 'not-assessed', probe: 'credentials in the repository', detail: `--repo ${dir} is not a readable folder (${why})`, location: { file: dir } }];
  }
  const scan = scanRepo(dir);
  const { accepted, problem } = acceptances(ctx, dir);
  const out: EvidenceItem[] = [];
  let open = 0;
  for (const f of scan.findings) {
    const a = accepted.get(f.fingerprint);
    if (!a) open++;
    if (out.length >= MAX_LISTED) continue;
    out.push(a
      ? { outcome: 'info', probe: 'credential in the repository (accepted)', observed: f.rule, detail: `accepted in ${a.source === 'profile' ? 'the review profile' : a.source}`, location: { file: f.file, line: f.line }, fingerprint: f.fingerprint, accepted: { reason: a.reason } }
      : { outcome: 'bad', probe: 'credential in the repository', expected: 'no credentials in code', observed: f.rule, detail: `remove it from the code and its history, rotate it, and load it by reference; if it is harmless (a test fixture), accept fingerprint ${f.fingerprint} in profile.acceptedFindings or ${ACCEPT_FILE}`, location: { file: f.file, line: f.line }, fingerprint: f.fingerprint });
  }
  if (scan.findings.length > MAX_LISTED) {
    out.push({ outcome: open > out.filter((i) => i.outcome === 'bad').length ? 'bad' : 'info', probe: 'credentials in the repository (not listed)', observed: `${scan.findings.length - MAX_LISTED} more finding(s) not listed`, location: { file: dir } });
  }
  const skipped = Object.entries(scan.skipped).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ');
  const summary = `${scan.files} file(s) read${skipped ? ` (skipped: ${skipped})` : ''}; ${scan.findings.length} finding(s), ${scan.findings.length - open} accepted`;
  out.push({ outcome: open ? 'info' : 'ok', probe: 'repository scan for embedded credentials', expected: 'no credentials in code', observed: summary, location: { file: dir } });
  if (scan.truncated) out.push({ outcome: 'not-assessed', probe: 'repository scan for embedded credentials', detail: `the scan stopped after ${MAX_FILES} files: the rest of the repository was not read`, location: { file: dir } });
  if (problem) out.push({ outcome: 'info', probe: `accept file ${ACCEPT_FILE}`, detail: problem, location: { file: ACCEPT_FILE } });
  return out;
}
