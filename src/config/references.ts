import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

/** An `env:`/`file:` reference that cannot be resolved now, by where it sits in the config. */
export interface MissingReference {
  path: string;
  ref: string;
  problem: string;
}

const REF = /^(env|file):(.+)$/;

/** Every `env:NAME` / `file:PATH` string in the config, with its field path (CEL rules are expressions, not references). */
export function findReferences(value: unknown, path: string[] = []): Array<{ path: string; ref: string }> {
  if (typeof value === 'string') return REF.test(value) ? [{ path: path.join('.'), ref: value }] : [];
  if (!value || typeof value !== 'object') return [];
  if (path.length === 2 && path[0] === 'policy' && path[1] === 'rules') return [];
  return Object.entries(value).flatMap(([k, v]) => findReferences(v, [...path, k]));
}

/**
 * Whether each reference would resolve: the variable is set and not empty,
 * the file exists and this user may read it. Presence only: no value is read,
 * so none can be printed.
 */
export function missingReferences(
  raw: unknown,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
): MissingReference[] {
  const out: MissingReference[] = [];
  for (const { path, ref } of findReferences(raw)) {
    const [, kind, target] = REF.exec(ref)!;
    if (kind === 'env') {
      if (env[target!] === undefined || env[target!] === '')
        out.push({ path, ref, problem: `environment variable ${target} is not set` });
      continue;
    }
    const full = isAbsolute(target!) ? target! : resolve(baseDir, target!);
    const problem = fileProblem(full);
    if (problem) out.push({ path, ref, problem: `${full} ${problem}` });
  }
  return out;
}

function fileProblem(full: string): string | undefined {
  try {
    if (!statSync(full).isFile()) return 'is not a file';
    accessSync(full, constants.R_OK);
    return undefined;
  } catch (err) {
    // The error becomes the reported problem (its code, never the file's content).
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? 'does not exist'
      : code === 'EACCES'
        ? 'is not readable by this user'
        : `cannot be read (${code})`;
  }
}

export function formatMissing(missing: MissingReference[]): string {
  return missing.map((m) => `  ${m.path}: ${m.ref}: ${m.problem}`).join('\n');
}
