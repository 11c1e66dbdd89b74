import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BehalfError } from '../../errors.js';
import { secretMark } from '../redactor.js';
import type { ReviewRun } from '../run.js';
import { renderHtml } from './html.js';
import { renderJunit } from './junit.js';
import { mdText, renderMarkdown } from './markdown.js';
import { renderSarif } from './sarif.js';
import { EvidencePackSchema } from './schema.js';
import { escapeXml } from './text.js';

/** The pack's files, in the order they are written. */
export const PACK_FILES = ['evidence.json', 'report.md', 'report.html', 'results.sarif', 'junit.xml', 'transcripts.jsonl'] as const;

/** Shorter strings match too much ordinary text to be told apart from a credential. */
const MIN_SECRET_LENGTH = 8;

/**
 * The writer's last guard found a credential in what it was about to write.
 * Names the files and the secret's irreversible mark, never the secret.
 */
export class SecretInPackError extends BehalfError {
  constructor(readonly files: string[], readonly marks: string[]) {
    super('secret_in_pack', `refusing to write the evidence pack: ${files.join(', ')} would contain a credential the review used (${marks.join(', ')}); nothing was written`);
    this.name = 'SecretInPackError';
  }
}

/** The pack does not meet its own schema: writing it would ship a file the published schema rejects. */
export class InvalidPackError extends BehalfError {
  constructor(readonly issues: string[]) {
    super('pack_invalid', `refusing to write an evidence pack that does not match its schema: ${issues.join('; ')}`);
    this.name = 'InvalidPackError';
  }
}

/**
 * The forms a secret takes once a format has encoded it: a guard that only
 * looked for the raw string would miss a token with a quote in it inside
 * JSON, or one with `&` inside HTML. Two levels deep, because a server's
 * JSON body (one encoding) is stored inside a JSON transcript line (another).
 */
function encodings(secret: string): string[] {
  const once = (s: string) => [
    s,
    JSON.stringify(s).slice(1, -1),
    escapeXml(s),
    mdText(s),
    encodeURIComponent(s),
    new URLSearchParams({ x: s }).toString().slice(2),
  ];
  return [...new Set(once(secret).flatMap(once))];
}

/** Renders every file in memory; nothing touches the disk here. */
export function renderPack(run: ReviewRun): Map<(typeof PACK_FILES)[number], string> {
  const parsed = EvidencePackSchema.safeParse(run.pack);
  // Issue paths and codes only: a message could quote the offending value.
  if (!parsed.success) throw new InvalidPackError(parsed.error.issues.slice(0, 10).map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.code}`));
  // The parsed copy, not the input: unknown keys are dropped, so evidence.json never carries a field the schema forbids.
  const pack = parsed.data;
  return new Map([
    ['evidence.json', `${JSON.stringify(pack, null, 2)}\n`],
    ['report.md', renderMarkdown(pack)],
    ['report.html', renderHtml(pack, run.exchanges)],
    ['results.sarif', `${JSON.stringify(renderSarif(pack), null, 2)}\n`],
    ['junit.xml', renderJunit(pack)],
    ['transcripts.jsonl', run.exchanges.map((e) => `${JSON.stringify(e)}\n`).join('')],
  ]);
}

/** Throws SecretInPackError when any known credential (in any encoding) appears in any rendered file. */
export function assertNoSecrets(files: ReadonlyMap<string, string>, secrets: readonly string[]): void {
  const hitFiles = new Set<string>();
  const marks = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    const forms = encodings(secret);
    for (const [name, content] of files) {
      if (forms.some((f) => content.includes(f))) {
        hitFiles.add(name);
        marks.add(secretMark(secret));
      }
    }
  }
  if (hitFiles.size > 0) throw new SecretInPackError([...hitFiles], [...marks]);
}

/**
 * Writes the evidence pack into outDir (created if missing) and returns the
 * paths written. Everything is rendered and checked in memory first, so a
 * pack that would leak a credential fails closed with nothing on disk.
 */
export async function writePack(outDir: string, run: ReviewRun): Promise<string[]> {
  const files = renderPack(run);
  assertNoSecrets(files, run.secrets);
  const dir = resolve(outDir);
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, content] of files) {
    const path = join(dir, name);
    await writeFile(path, content, 'utf8');
    written.push(path);
  }
  return written;
}
