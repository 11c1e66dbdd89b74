/**
 * Static rules over the repository's own source, read as text: what a
 * reviewer would otherwise have to check by eye on every change.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** Every .ts file under `dir` of the repository, as [path relative to the root, text]. */
export function sources(dir: string, ext = '.ts'): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith(ext)) out.push([relative(ROOT, full), readFileSync(full, 'utf8')]);
    }
  };
  walk(join(ROOT, dir));
  return out;
}

/** The text between the bracket at `open` and its partner (strings and comments are not special: good enough for this code). */
function bracketed(text: string, open: number): string {
  const pairs: Record<string, string> = { '{': '}', '(': ')' };
  const close = pairs[text[open]!]!;
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === text[open]) depth++;
    else if (text[i] === close && --depth === 0) return text.slice(open + 1, i);
  }
  return text.slice(open + 1);
}

/** What a handler must do with what it caught: rethrow, map to a typed error with its cause, reject, or log or report it (`onerror` is the MCP SDK transports' spelling). */
const HANDLES =
  /\bthrow\b|\breject\(|\bcause\b|\blog\(|\.log\b|\breport\(|\bon[eE]rror\b|\bfail\(|\bwarn\(|process\.exitCode|stderr\.write/;
const COMMENT = /\/\/|\/\*/;

/** The name a handler gives what it caught, and the code that may use it: `catch (err) {…}`, `.catch((err) => …)`, `.catch(err => …)`. */
function caught(head: string | undefined, body: string, promise: boolean): { name?: string; code: string } {
  if (!promise) return { name: /^\(\s*(\w+)/.exec(head ?? '')?.[1], code: body };
  const m = /^\s*(?:\(\s*(\w+)[^)]*\)|(\w+))\s*=>/.exec(body);
  return m ? { name: m[1] ?? m[2], code: body.slice(m[0].length) } : { code: body };
}

/**
 * A handler that reads what it caught into what it returns or records — its
 * message, or the error handed to a function (a check's evidence, a list of
 * problems) — reports it; only a handler that never looks at it loses it.
 */
function carriesCaught({ name, code }: { name?: string; code: string }): boolean {
  if (!name) return false;
  return new RegExp(`\\b${name}\\b(?:\\s+as\\s+[\\w.]+\\))?\\??\\.message\\b|[(,]\\s*${name}\\s*[,)]`).test(code);
}

export interface LossyCatch {
  file: string;
  line: number;
  text: string;
}

/**
 * Catches that neither rethrow, map with the cause, log, nor carry what they
 * caught on — and carry no comment saying why (on the line before, the catch
 * line, or inside).
 */
/**
 * Where the statement holding a chained `.catch(` begins: a formatter puts
 * `.catch` on its own line under a multi-line call, and the comment that
 * explains it stays above the call.
 */
function statementStart(text: string, lineStart: number): number {
  let start = lineStart;
  for (let i = 0; i < 12 && start > 0; i++) {
    const region = text.slice(start, lineStart);
    const depth = (region.match(/[({[]/g)?.length ?? 0) - (region.match(/[)}\]]/g)?.length ?? 0);
    if (depth === 0 && !text.slice(start).trimStart().startsWith('.')) break;
    start = text.lastIndexOf('\n', start - 2) + 1;
  }
  return start;
}

export function lossyCatches(file: string, text: string): LossyCatch[] {
  const found: LossyCatch[] = [];
  const re = /\bcatch\s*(\([^)]*\))?\s*\{|\.catch\(/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const open = m.index + m[0].length - 1;
    const body = bracketed(text, open);
    const lineStart = text.lastIndexOf('\n', m.index) + 1;
    const prevStart = text.lastIndexOf('\n', statementStart(text, lineStart) - 2) + 1;
    const lineEnd = text.indexOf('\n', m.index);
    const around = text.slice(prevStart, lineEnd === -1 ? undefined : lineEnd);
    if (HANDLES.test(body) || COMMENT.test(body) || COMMENT.test(around)) continue;
    if (carriesCaught(caught(m[1], body, m[0].startsWith('.')))) continue;
    found.push({ file, line: text.slice(0, m.index).split('\n').length, text: text.slice(lineStart, lineEnd).trim() });
  }
  return found;
}
