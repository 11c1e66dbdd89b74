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
import { quickstartProfileHint, summaryTable, wrapText } from './review-format.js';
import { REVIEW_EXIT, reviewExitCode, SEVERITIES, type Severity } from '../review/severity.js';

export const USAGE = `usage: behalf review --target URL [--profile FILE] [--config FILE] [--repo DIR] --out DIR
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
  --fail-on   critical|high|medium|low: the least severity that makes the review exit 1 (default high)
Exit codes:
  0  every check passed or does not apply
  1  a check failed (or warned) at or above --fail-on
  2  usage error, the target is unreachable, or it is not an MCP endpoint (404, a web page,
     no JSON-RPC answer to initialize): one line says which, and no check runs
  4  nothing failed at or above --fail-on, but the review is not clean: some check was not
     assessed, only partly judged, warned (a SHOULD-level deviation) or failed below --fail-on
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
    'fail-on': { type: 'string', default: 'high' },
  });
  if (positionals.length) throw usage(`unexpected argument ${positionals[0]}`);
  if (!values.out) throw usage('--out DIR is required');
  if (!values.target && !values.command && !values.config && !values.repo)
    throw usage('give --target URL (or --command, --config, --repo for static checks only)');
  const target = values.target ? parseTarget(values.target) : undefined;
  const transport = pickTransport(values.transport, target);
  const only = values.only ? parseOnly(values.only) : undefined;
  const failOn = values['fail-on'] as Severity;
  if (!SEVERITIES.includes(failOn))
    throw usage(`--fail-on must be one of ${SEVERITIES.join(', ')}, not ${values['fail-on']}`);
  let profile: LoadedProfile | undefined;
  if (values.profile) profile = loadProfile(values.profile);
  else if (target) {
    const hint = quickstartProfileHint();
    if (hint) process.stderr.write(`${wrapText(hint, process.stderr.columns, 'behalf review: ')}\n`);
  }
  const tty = process.stderr.isTTY && !values.quiet;
  const progress = (line: string) => {
    if (!values.quiet) process.stderr.write(`${tty ? '\u001b[2m' : ''}· ${line}${tty ? '\u001b[0m' : ''}\n`);
  };
  if (target) {
    const problem = await checkReachable(target, transport);
    if (problem) {
      const what = problem.kind === 'unreachable' ? 'the target is unreachable' : 'the target is not an MCP endpoint';
      process.stderr.write(`behalf review: ${what}: ${problem.reason}\n`);
      process.exitCode = REVIEW_EXIT.usage;
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
  process.exitCode = reviewExitCode(run.pack.checks as CheckResult[], failOn);
  if (process.exitCode === REVIEW_EXIT.incomplete && !values.json)
    process.stdout.write(
      `exit ${REVIEW_EXIT.incomplete}: nothing failed at or above ${failOn}, but not every check passed (see the table)\n`,
    );
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
