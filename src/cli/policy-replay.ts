import { resolve } from 'node:path';
import type { AuditRecord, AuditStore } from '../audit/event.js';
import { loadConfigFile, policyProblemsText } from '../config/load.js';
import { BehalfError } from '../errors.js';
import { compilePolicy, PolicyError, type CompiledPolicy } from '../policy/policy.js';
import { Replayer } from '../policy/replay/decide.js';
import { ReplayTally, type FailOn } from '../policy/replay/report.js';
import { loadPolicy, readPolicyFile } from '../policy/source.js';
import { parse } from './args.js';
import { untilSignal, write } from './audit.js';
import { SOURCE, withStore } from './audit-source.js';
import { formatLiveChange, formatReplayMarkdown } from './policy-replay-format.js';

export const REPLAY_USAGE = `usage: behalf policy replay --policy NEW.yaml (--config FILE | --db PATH | --postgres URL)
                           [--since 7d|TIME | --from-seq N] [--fail-on new-allows|any-change|none]
                           [--json] [--follow] [--upstreams a,b]
         decide every recorded decision again with a proposed policy and report what would change
  --since      a duration back from now (30m, 12h, 7d) or ISO-8601 / epoch ms; --from-seq N: from seq N
  --fail-on    exit 1 when the proposed policy allows a recorded call that was denied (new-allows,
               the default), changes any decision (any-change), or never (none)
  --follow     keep deciding new records as the gateway writes them (one line per change, a JSON
               line with --json); Ctrl-C prints the report. Without --since/--from-seq it starts
               at the newest record
  --upstreams  with --db/--postgres: the upstream names rules may refer to (a config names its own)
Decisions that read a value the trail redacted, or a claim it did not record, are counted as
undecidable, never guessed; rate-limit refusals are not decided again (they depend on time).
Exit 0: the gate passed; 1: it tripped; 2: usage, or the proposed policy is invalid.`;

const FAIL_ON: readonly FailOn[] = ['new-allows', 'any-change', 'none'];
const FOLLOW_POLL_MS = 500;
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function usage(message: string): BehalfError {
  return new BehalfError('usage', `${message}\n\n${REPLAY_USAGE}`);
}

/** `7d`, `12h`, `30m`, `45s` back from now; or an ISO-8601 time; or epoch milliseconds. */
export function sinceTime(value: string, now = Date.now()): number {
  const d = /^(\d+)([smhd])$/.exec(value);
  if (d) return now - Number(d[1]) * UNITS[d[2]!]!;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw usage('--since must be a duration (7d, 12h, 30m), an ISO-8601 time or epoch ms');
  return ms;
}

/**
 * The proposed policy, checked as `behalf config check` checks the policy of
 * a config (same words), but a usage error: it is what the command was given.
 */
function proposedPolicy(file: string, config: string | undefined, upstreams: string[] | undefined): CompiledPolicy {
  try {
    if (config !== undefined) {
      const loaded = loadConfigFile(config);
      return loadPolicy({ ...loaded.config, policy: { ...loaded.config.policy, file: resolve(file) } }, loaded.baseDir);
    }
    const doc = readPolicyFile(resolve(file));
    // Without a config the upstreams are unknown: the names the policy uses are taken as they are.
    const named = [...doc.rules, ...doc.rateLimits].flatMap((r) => r.upstreams ?? []);
    return compilePolicy(doc, upstreams ?? (named.length ? named : ['*']));
  } catch (err) {
    if (err instanceof PolicyError) throw new BehalfError('usage', policyProblemsText(err), {}, { cause: err });
    throw err;
  }
}

export async function replayCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    ...SOURCE,
    policy: { type: 'string' },
    since: { type: 'string' },
    'from-seq': { type: 'string' },
    'fail-on': { type: 'string' },
    json: { type: 'boolean' },
    follow: { type: 'boolean', short: 'f' },
    upstreams: { type: 'string' },
  });
  if (positionals.length) throw usage(`unexpected argument ${positionals[0]}`);
  if (values.policy === undefined) throw usage('--policy NEW.yaml is required');
  const failOn = (values['fail-on'] ?? 'new-allows') as FailOn;
  if (!FAIL_ON.includes(failOn)) throw usage(`--fail-on must be one of ${FAIL_ON.join(', ')}`);
  if (values.since !== undefined && values['from-seq'] !== undefined)
    throw usage('give --since or --from-seq, not both');
  const fromSeqFlag = values['from-seq'];
  if (fromSeqFlag !== undefined && !/^[1-9]\d*$/.test(fromSeqFlag))
    throw usage('--from-seq must be a positive integer');
  if (values.upstreams !== undefined && values.config !== undefined)
    throw usage('--upstreams goes with --db or --postgres; a config names its own');
  const since = values.since === undefined ? undefined : sinceTime(values.since);
  const upstreams = values.upstreams
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const policy = proposedPolicy(values.policy, values.config, upstreams);
  const replayer = new Replayer(policy);
  const tally = new ReplayTally({ file: values.policy, version: policy.version }, failOn);
  const follow = values.follow === true;
  await withStore(values, usage, async (store) => {
    let next = fromSeqFlag !== undefined ? Number(fromSeqFlag) : 1;
    if (follow && since === undefined && fromSeqFlag === undefined)
      next = ((await store.query({ limit: 1 }))[0]?.seq ?? 0) + 1;
    let started = since === undefined;
    const take = async (r: AuditRecord) => {
      next = r.seq + 1;
      // From the first record at or after --since on: a writer's clock a little behind another's does not cut the trail.
      if (!started && r.ts < since!) return;
      started = true;
      const change = tally.add(r, replayer.replay(r));
      if (!follow || !change) return;
      const line = values.json ? `${JSON.stringify({ change: change.kind, ...change.example })}\n` : undefined;
      await write(process.stdout, line ?? formatLiveChange(change.kind, change.example));
    };
    // Listening before the first pass: Ctrl-C during it still ends with the report.
    const stopped = follow ? untilSignal() : undefined;
    await drain(store, () => next, take);
    if (stopped) {
      while (!stopped.done) {
        await Promise.race([stopped.promise, new Promise((r) => setTimeout(r, FOLLOW_POLL_MS))]);
        if (!stopped.done) await drain(store, () => next, take);
      }
    }
  });
  const report = tally.result();
  // With --follow --json the output is JSON lines: the live changes, then the report.
  const json = values.json ? `${JSON.stringify(report, null, follow ? undefined : 2)}\n` : undefined;
  await write(process.stdout, json ?? formatReplayMarkdown(report));
  if (report.gate.tripped) process.exitCode = 1;
}

async function drain(store: AuditStore, from: () => number, take: (r: AuditRecord) => Promise<void>): Promise<void> {
  for await (const r of store.records(from())) await take(r);
}
