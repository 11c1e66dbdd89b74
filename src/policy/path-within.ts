import { lstatSync, readdirSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';

/**
 * Whether `path` names a location inside `base` (equal to it or below it),
 * both lexically and for real. Any doubt, and any error, answers false: this
 * backs policy decisions, which must fail closed.
 *
 * 1. The string itself: absolute, no NUL, no leading `~` (servers such as
 *    server-filesystem expand it to their own home), no relative path (they
 *    resolve those against whichever allowed directory fits, i.e. anywhere).
 * 2. Lexically: `path.resolve` removes `.`/`..` and duplicate separators, as
 *    server-filesystem does before it touches the disk; the result must be
 *    `base` or start with `base` + separator, so `/files/alice2` is not inside
 *    `/files/alice`.
 * 3. For real: a string check alone is fooled by a symlink in alice's folder
 *    that points into bob's (`/files/alice/link -> /files/bob`). So symlinks
 *    are resolved on the longest existing ancestor of the path (the path
 *    itself may not exist yet: write_file to a new file, create_directory),
 *    the missing remainder is appended, and the result must lie inside the
 *    real location of `base`. A dangling symlink on the way, or a missing
 *    component whose name has a Unicode-equivalent (NFC) sibling, is refused:
 *    server-filesystem resolves a missing component to such a sibling, which
 *    may itself be a symlink pointing elsewhere.
 *
 * What this cannot close: the check and the upstream's own file access are
 * two moments (TOCTOU). Something able to create a symlink in between (not
 * any server-filesystem tool — it has none — but another process with write
 * access to the folder) could redirect the access. Hard links are invisible
 * to realpath altogether. Both are closed for good only by running the
 * upstream as a per-user process rooted at (or confined to) the user's own
 * folder, so the operating system enforces the boundary — a later issue.
 *
 * Synchronous on purpose: CEL functions are synchronous and a few stat calls
 * cost microseconds.
 */
export function pathWithin(path: string, base: string): boolean {
  try {
    if (typeof path !== 'string' || typeof base !== 'string') return false;
    if (path.includes('\0') || base.includes('\0')) return false;
    if (path.startsWith('~') || !isAbsolute(path) || !isAbsolute(base)) return false;
    const lexical = resolve(path);
    const lexicalBase = resolve(base);
    if (!inside(lexical, lexicalBase)) return false;
    const realBase = realpathSync.native(lexicalBase);
    const real = realLocation(lexical);
    return real !== undefined && inside(real, realBase);
  } catch {
    // Fail closed: a path that cannot be resolved (the base gone, a loop) is not vouched to be within.
    return false;
  }
}

/** `p` equals `base` or lies below it at a separator boundary (both already normalised). */
function inside(p: string, base: string): boolean {
  if (p === base) return true;
  return p.startsWith(base.endsWith(sep) ? base : base + sep);
}

/**
 * The real location of an absolute, normalised path that may not exist yet:
 * realpath of its longest existing ancestor plus the missing remainder.
 * undefined when it cannot be told safely.
 */
function realLocation(p: string): string | undefined {
  const missing: string[] = [];
  let current = p;
  for (;;) {
    let real: string;
    try {
      real = realpathSync.native(current);
    } catch (err) {
      // ENOTDIR, ELOOP, EACCES, ENAMETOOLONG…: nothing we can vouch for.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
      // Something is there but does not resolve: a dangling symlink, whose
      // target (wherever it points) a write would create.
      if (exists(current)) return undefined;
      const parent = dirname(current);
      if (parent === current) return undefined;
      missing.push(basename(current));
      current = parent;
      continue;
    }
    if (missing.length === 0) return real;
    const remainder = missing.reverse();
    if (hasUnicodeTwin(real, remainder[0]!)) return undefined;
    return join(real, ...remainder);
  }
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    // Nothing there that lstat can see: the caller treats it as missing, the safe reading.
    return false;
  }
}

/** An entry of `dir` other than `name` that is the same name under Unicode NFC normalisation. */
function hasUnicodeTwin(dir: string, name: string): boolean {
  const nfc = name.normalize('NFC');
  return readdirSync(dir).some((entry) => entry !== name && entry.normalize('NFC') === nfc);
}
