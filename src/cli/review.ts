import { resolve } from 'node:path';
import { BehalfError } from '../errors.js';
import { CHECKS, type CheckId } from '../review/catalog.js';
import type { TargetTransport } from '../review/context.js';
import { diffPacks, formatDiff, readPack } from '../review/diff.js';
import { writePack } from '../review/evidence/write-pack.js';
import { loadProfile, type LoadedProfile } from '../review/profile.js';
import { checkReachable } from '../review/reachable.js';
import { runReview } from '../review/run.js';
import type { CheckResult } from '../review/types.js';
import { parse } from './args.js';
import { summaryTable } from './review-format.js';

const USAGE = `usage: behalf review --target URL [--profile FILE] [--config FILE] [--repo DIR] --out DIR
                     [--transport auto|streamable|sse] [--only BND-01,BND-05] [--json]
       behalf review --command "CMD …" [--config FILE] [--repo DIR] --out DIR
       behalf review diff OLD NEW     is a re-assessment due between two evidence packs?
  --target    the MCP endpoint to review (Streamable HTTP, or legacy SSE: a path ending in /sse)
  --profile   YAML: identities, issuer, crossUser probes, safeToCall (see README "Reviewing a deployment")
  --config    a behalf gateway config: static checks (secrets, keys, downstream strategies, TLS)
  --repo      a folder to scan for embedded credentials
  --command   a stdio server's command line: what its child process would inherit (not run)
  --out       where the evidence pack goes (evidence.json, report.md, report.html, results.sarif,
              junit.xml, transcripts.jsonl)
  --json      print the evidence as JSON on stdout instead of the table
Exit code: 0 nothing failed, 1 a check failed, 2 usage error or the target unreachable.
Only tools listed in the profile's safeToCall are ever called; requests and time are bounded.`;

function usage(message: string): BehalfError {
  return new BehalfError('usage', `${message}\n\n${USAGE}`);
}

export async function reviewCommand(argv: string[]): Promise<void> {
  if (argv[0] === 'diff') return diffCommand(argv.slice(1));
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const { values, positionals } = parse(argv, {
    target: { type: 'string' },
    profile: { type: 'string' },
    config: { type: 'string' },
    repo: { type: 'string' },
    command: { type: 'string' },
    out: { type: 'string' },
    transport: { type: 'string', default: 'auto' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  });
  if (positionals.length) throw usage(`unexpected argument ${positionals[0]}`);
  if (!values.out) throw usage('--out DIR is required');
  if (!values.target && !values.command && !values.config && !values.repo)
    throw usage('give --target URL (or --command, --config, --repo for static checks only)');
  const target = values.target ? parseTarget(values.target) : undefined;
  const transport = pickTransport(values.transport, target);
  const only = values.only ? parseOnly(values.only) : undefined;
  let profile: LoadedProfile | undefined;
  if (values.profile) profile = loadProfile(values.profile);
  const tty = process.stderr.isTTY && !values.quiet;
  const progress = (line: string) => {
    if (!values.quiet) process.stderr.write(`${tty ? '\u001b[2m' : ''}· ${line}${tty ? '\u001b[0m' : ''}\n`);
  };
  if (target) {
    const problem = await checkReachable(target, transport);
    if (problem) {
      process.stderr.write(`behalf review: the target is unreachable: ${problem}\n`);
      process.exitCode = 2;
      return;
    }
  }
  const run = await runReview(
    {
      ...(target ? { target } : {}),
      transport,
      ...(profile ? { profile } : {}),
      ...(values.config ? { configPath: resolve(values.config) } : {}),
      ...(values.repo ? { repoDir: resolve(values.repo) } : {}),
      ...(values.command ? { command: values.command } : {}),
    },
    { progress, ...(only ? { only } : {}) },
  );
  const files = await writePack(resolve(values.out), run);
  if (values.json) process.stdout.write(`${JSON.stringify(run.pack, null, 2)}\n`);
  else {
    process.stdout.write(`${summaryTable(run.pack.checks as CheckResult[], tty)}\n`);
    process.stdout.write(
      `\n${run.pack.review.requests} requests in ${(run.pack.review.durationMs / 1000).toFixed(1)} s; evidence pack: ${resolve(values.out)} (${files.length} files)\n`,
    );
  }
  process.exitCode = run.pack.checks.some((c) => c.status === 'fail') ? 1 : 0;
}

async function diffCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean', default: false } });
  if (positionals.length !== 2)
    throw usage('review diff needs two evidence packs: OLD NEW (folders or evidence.json files)');
  const d = diffPacks(await readPack(positionals[0]!), await readPack(positionals[1]!));
  process.stdout.write(values.json ? `${JSON.stringify(d, null, 2)}\n` : `${formatDiff(d)}\n`);
  // A due re-assessment is what a scheduler acts on: it exits 1, like a failed check.
  process.exitCode = d.reassessmentDue ? 1 : 0;
}

function parseTarget(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usage(`--target is not a URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usage('--target must be an http(s) URL');
  if (url.username || url.password) throw usage('--target must not carry credentials; give them in the profile');
  return url;
}

function pickTransport(raw: string, target: URL | undefined): TargetTransport {
  if (raw === 'streamable' || raw === 'sse') return raw;
  if (raw !== 'auto') throw usage(`--transport must be auto, streamable or sse, not ${raw}`);
  return target && /\/sse(\/|$)/.test(target.pathname) ? 'sse' : 'streamable';
}

function parseOnly(raw: string): CheckId[] {
  const ids = raw.split(',').map((s) => s.trim().toUpperCase());
  const known = new Set<string>(CHECKS.map((c) => c.id));
  const bad = ids.filter((i) => !known.has(i));
  if (bad.length) throw usage(`unknown check id ${bad.join(', ')}`);
  return ids as CheckId[];
}
