import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { findLiteralSecrets, knownFormat, nameSuggestsSecret, SECRET_REF } from '../../config/literal-secrets.js';
import { looksLikeSecret } from '../../shared/secret-shapes.js';
import type { ReviewContext } from '../context.js';
import type { EvidenceItem } from '../types.js';
import { splitCommand } from './command.js';
import { configReview, envLiteral, unreadableItem, type ConfigReview, type UpstreamView } from './config-review.js';

/**
 * BND-12's static part: for stdio, the process is the boundary, so what
 * matters is what a child inherits. For `--command` the review does not
 * start the server: it looks at what the child would get from the process
 * that launches it (this one) — environment, open descriptors, user id —
 * and at the command line itself. For the config's stdio upstreams it reads
 * how each child's environment, folder and OS user are set.
 */
export function staticTransportEvidence(ctx: ReviewContext): EvidenceItem[] {
  const out: EvidenceItem[] = [];
  if (ctx.inputs.command !== undefined) {
    out.push(...inheritanceEvidence({ env: process.env, fds: openDescriptors(), uid: process.getuid?.() }));
    out.push(...commandLineEvidence(ctx.inputs.command, ctx));
  }
  const review = configReview(ctx);
  if (review) out.push(...configStdioEvidence(review));
  return out;
}

export interface OpenFd {
  fd: number;
  /** What it points at (readlink), e.g. `pipe:[123]`, `socket:[9]`, a path. */
  target: string;
  cloexec: boolean;
}

export interface Inheritance {
  env: NodeJS.ProcessEnv;
  /** undefined: descriptors are not visible here (no /proc). */
  fds: OpenFd[] | undefined;
  uid: number | undefined;
}

const O_CLOEXEC = 0o2000000;

/** Descriptors of this process above stderr, from /proc (Linux); undefined elsewhere. */
export function openDescriptors(): OpenFd[] | undefined {
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    // No /proc (not Linux): undefined is the documented answer, and the caller says it could not look.
    return undefined;
  }
  const out: OpenFd[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    try {
      const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags === undefined) continue;
      out.push({ fd, target: readlinkSync(`/proc/self/fd/${fd}`), cloexec: (parseInt(flags, 8) & O_CLOEXEC) !== 0 });
    } catch {
      // gone meanwhile (the directory listing's own descriptor is one of them)
    }
  }
  return out.sort((a, b) => a.fd - b.fd);
}

/** Values that are paths or path lists: a commit hash inside a folder name is not a credential. */
const PATHLIKE = /^(?:[/~.][^:\s]*)(?::[/~.][^:\s]*)*$/;

/** Does this variable look like it holds a credential? By its name (a value is set) or by its value's shape. */
export function envLooksSecret(name: string, value: string | undefined): boolean {
  if (!value || SECRET_REF.test(value)) return false;
  if (nameSuggestsSecret(name)) return true;
  if (knownFormat(value)) return true;
  return !PATHLIKE.test(value) && looksLikeSecret(value);
}

/** What a child started from a process with this environment, these descriptors and this user would get. Names only, never values. */
export function inheritanceEvidence(p: Inheritance): EvidenceItem[] {
  const out: EvidenceItem[] = [];
  const secretNames = Object.entries(p.env).filter(([n, v]) => envLooksSecret(n, v)).map(([n]) => n).sort();
  out.push(secretNames.length
    ? { outcome: 'bad', probe: 'environment the --command child would inherit', expected: 'no credentials in the inherited environment', observed: `${secretNames.length} variable(s) look like credentials: ${secretNames.join(', ')}`, detail: 'a stdio child inherits the whole environment unless the launcher builds one from an allow-list; pass it only what it needs', location: { file: 'environment' } }
    : { outcome: 'ok', probe: 'environment the --command child would inherit', expected: 'no credentials in the inherited environment', observed: `${Object.keys(p.env).length} variables, none looks like a credential`, location: { file: 'environment' } });
  if (p.fds === undefined) {
    out.push({ outcome: 'not-assessed', probe: 'open descriptors the --command child would inherit', detail: 'open descriptors are not visible on this system (no /proc/self/fd)' });
  } else {
    const leaked = p.fds.filter((f) => !f.cloexec);
    out.push(leaked.length
      ? { outcome: 'bad', probe: 'open descriptors the --command child would inherit', expected: 'every descriptor above 2 close-on-exec', observed: leaked.map((f) => `fd ${f.fd} (${describeTarget(f.target)})`).join(', '), detail: 'descriptors without O_CLOEXEC stay open in the child: it can read or write whatever they point at' }
      : { outcome: 'ok', probe: 'open descriptors the --command child would inherit', expected: 'every descriptor above 2 close-on-exec', observed: `${p.fds.length} descriptor(s) above 2, all close-on-exec` });
  }
  if (p.uid === undefined) out.push({ outcome: 'not-assessed', probe: 'user the --command child would run as', detail: 'user ids are not available on this system' });
  else if (p.uid === 0) out.push({ outcome: 'bad', probe: 'user the --command child would run as', expected: 'an unprivileged user', observed: 'uid 0', detail: 'the child would run as root: a compromised or confused server owns the host' });
  else out.push({ outcome: 'ok', probe: 'user the --command child would run as', expected: 'an unprivileged user', observed: `uid ${p.uid}` });
  return out;
}

/** Sockets and pipes by kind; files by path (a path is not a secret, but keep it short). */
function describeTarget(t: string): string {
  const kind = /^(socket|pipe|anon_inode):/.exec(t)?.[1];
  return kind ?? (t.length > 80 ? `…${t.slice(-79)}` : t);
}

/**
 * Literal secrets written on the command line: visible in `ps`, shell
 * history and logs. Each one is also registered with the review's redactor,
 * so the pack's copy of the command line (target.command) is blanked too.
 */
export function commandLineEvidence(command: string, ctx?: Pick<ReviewContext, 'redactor'>): EvidenceItem[] {
  const words = splitCommand(command);
  const found = findLiteralSecrets(words);
  for (const s of found) {
    const word = words[Number(s.path)] ?? '';
    // `--token=X` / `TOKEN=X`: the value, so the flag's name stays readable.
    ctx?.redactor.add(/^-{0,2}[A-Za-z_][A-Za-z0-9_.-]*=(.+)$/s.exec(word)?.[1] ?? word);
  }
  if (!found.length) return [{ outcome: 'ok', probe: 'literal secrets on the --command line', expected: 'none', observed: `${words.length} word(s), none looks like a secret`, location: { file: '--command' } }];
  return found.map((s) => ({ outcome: 'bad' as const, probe: 'literal secret on the --command line', expected: 'secrets passed by reference (a file or the environment)', observed: `word ${s.path}: ${s.why}`, detail: 'a secret on a command line is visible to every local user (ps, /proc) and lands in shell history and logs', location: { file: '--command', path: `word ${s.path}` } }));
}

/** Each stdio upstream: secrets by reference or literal, what it inherits, its folder and OS user. */
export function configStdioEvidence(review: ConfigReview): EvidenceItem[] {
  if (review.error) return [unreadableItem(review, 'stdio upstreams in the config')];
  const out: EvidenceItem[] = [];
  for (const u of review.upstreams.filter((x) => x.transport === 'stdio')) out.push(...stdioItems(u, review));
  return out;
}

function stdioItems(u: UpstreamView, review: ConfigReview): EvidenceItem[] {
  const file = review.file;
  const at = (p: string) => ({ file, path: `upstreams.${u.name}.${p}` });
  const out: EvidenceItem[] = [];
  const literalPaths = new Set(review.literals.map((l) => l.path));
  const refs: string[] = [];
  const literalSecrets: string[] = [];
  const literals: string[] = [];
  for (const [name, v] of Object.entries(u.env)) {
    if (typeof v === 'string' && SECRET_REF.test(v)) refs.push(name);
    else if (literalPaths.has(`upstreams.${u.name}.env.${name}.value`) || literalPaths.has(`upstreams.${u.name}.env.${name}`)) literalSecrets.push(name);
    else if (typeof v === 'string' || envLiteral(v) !== undefined) literals.push(name);
  }
  if (literalSecrets.length) out.push({ outcome: 'bad', probe: `environment of stdio upstream ${u.name}`, expected: 'secrets by reference (env:NAME or file:PATH)', observed: `literal secret(s) in ${literalSecrets.join(', ')}`, location: at('env') });
  if (refs.length) out.push({ outcome: 'ok', probe: `environment of stdio upstream ${u.name}`, expected: 'secrets by reference', observed: `by reference: ${refs.join(', ')}`, location: at('env') });
  if (literals.length) out.push({ outcome: 'info', probe: `environment of stdio upstream ${u.name}`, observed: `literal settings (not secret-shaped): ${literals.join(', ')}`, location: at('env') });
  const inheritedSecrets = u.envAllow.filter((n) => nameSuggestsSecret(n));
  out.push(inheritedSecrets.length
    ? { outcome: 'bad', probe: `variables stdio upstream ${u.name} inherits from the gateway`, expected: 'no credentials in envAllow', observed: `envAllow: ${u.envAllow.join(', ')}`, detail: `every child, whoever it runs for, gets the gateway's ${inheritedSecrets.join(', ')}`, location: at('envAllow') }
    : { outcome: 'ok', probe: `variables stdio upstream ${u.name} inherits from the gateway`, expected: 'an allow-list without credentials', observed: `envAllow: ${u.envAllow.join(', ') || '(none)'}`, detail: 'nothing else of the gateway\'s environment is inherited', location: at('envAllow') });
  const perUserDir = u.cwd?.includes('{user}') || u.args.some((a) => a.includes('{user}'));
  out.push({
    outcome: 'info', probe: `working folder of stdio upstream ${u.name}`,
    observed: u.cwd === undefined ? 'not set: a private empty temporary folder per child' : `cwd: ${u.cwd}`,
    ...(u.cwd !== undefined && !u.cwd.includes('{user}') ? { detail: 'every user\'s child starts in this same folder' } : perUserDir ? { detail: '{user} scopes the child to the user\'s own folder' } : {}),
    location: at('cwd'),
  });
  out.push(u.uid === undefined && u.gid === undefined
    ? { outcome: 'info', probe: `OS user of stdio upstream ${u.name}`, observed: 'perUser.uid/gid not set: the child runs as the gateway\'s user', location: at('perUser') }
    : { outcome: 'info', probe: `OS user of stdio upstream ${u.name}`, observed: `uid ${u.uid ?? '(gateway\'s)'}, gid ${u.gid ?? '(gateway\'s)'}`, ...(u.uid === 0 ? { detail: 'uid 0 is root' } : {}), location: at('perUser') });
  return out;
}
