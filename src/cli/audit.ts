import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { verifyChain, type ChainProblem, type ChainReport } from '../audit/chain.js';
import { AUDIT_KINDS, type AuditQuery, type AuditRecord, type AuditStore } from '../audit/event.js';
import { BehalfError } from '../errors.js';
import { parse } from './args.js';
import { formatRecord, recordTable } from './audit-format.js';
import { migrateCommand } from './audit-migrate.js';
import { SOURCE, withStore as withSource, type SourceFlags } from './audit-source.js';

export const USAGE = `usage: behalf audit tail|query|verify|export (--config FILE | --db PATH | --postgres URL) [options]
  tail   [-n N] [--follow] [--json]
  query  [--user SUB] [--issuer ISS] [--client ID] [--method M] [--target T] [--decision allow|deny]
         [--kind KIND] [--since TIME] [--until TIME] [--limit N] [--json]   (TIME: ISO-8601 or epoch ms)
         a table by default; --json: one JSON record per line
  verify [--expect-head HASH] [--file EXPORT.jsonl]
  export [--out FILE] [--since TIME | --from-seq N]
  migrate --from SQLITE_FILE --to-postgres URL      (URL, or env:NAME / file:PATH holding it)
In a quickstart's folder, no --config/--db/--postgres means the quickstart's .behalf/gateway.yaml.`;

const FOLLOW_POLL_MS = 500;

/** `behalf audit …`: reads the audit store (read-only, never creating it) and checks its hash chain. */
export async function auditCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  // A reader that went away (| head) ends the command quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    else throw err;
  });
  switch (sub) {
    case 'tail':
      return tail(rest);
    case 'query':
      return query(rest);
    case 'verify':
      return verify(rest);
    case 'export':
      return exportRecords(rest);
    case 'migrate':
      return migrateCommand(rest, usage);
    default:
      throw usage(sub === undefined ? 'a subcommand is required' : `unknown subcommand ${sub}`);
  }
}

async function tail(argv: string[]): Promise<void> {
  const { values } = flags(argv, {
    ...SOURCE,
    n: { type: 'string', short: 'n' },
    follow: { type: 'boolean', short: 'f' },
    json: { type: 'boolean' },
  });
  const print = (r: AuditRecord) => `${values.json ? JSON.stringify(r) : formatRecord(r)}\n`;
  await withStore(values, async (store) => {
    let last = 0;
    for (const r of await store.query({ limit: positiveInt(values.n ?? '20', '-n') })) {
      await write(process.stdout, print(r));
      last = r.seq;
    }
    if (!values.follow) return;
    if (last === 0) last = (await store.query({ limit: 1 }))[0]?.seq ?? 0;
    const stopped = untilSignal();
    while (!stopped.done) {
      for await (const r of store.records(last + 1)) {
        await write(process.stdout, print(r));
        last = r.seq;
      }
      await Promise.race([stopped.promise, new Promise((r) => setTimeout(r, FOLLOW_POLL_MS))]);
    }
  });
}

async function query(argv: string[]): Promise<void> {
  const { values } = flags(argv, {
    ...SOURCE,
    user: { type: 'string' },
    issuer: { type: 'string' },
    client: { type: 'string' },
    method: { type: 'string' },
    target: { type: 'string' },
    decision: { type: 'string' },
    kind: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.decision !== undefined && values.decision !== 'allow' && values.decision !== 'deny')
    throw usage('--decision must be allow or deny');
  if (values.kind !== undefined && !(AUDIT_KINDS as readonly string[]).includes(values.kind))
    throw usage(`--kind must be one of ${AUDIT_KINDS.join(', ')}`);
  const filter: AuditQuery = {
    subject: values.user,
    issuer: values.issuer,
    clientId: values.client,
    method: values.method,
    target: values.target,
    decision: values.decision as AuditQuery['decision'],
    kind: values.kind as AuditQuery['kind'],
    since: time(values.since, '--since'),
    until: time(values.until, '--until'),
    limit: values.limit === undefined ? undefined : positiveInt(values.limit, '--limit'),
  };
  await withStore(values, async (store) => {
    const records = await store.query(filter);
    if (!values.json) return write(process.stdout, `${recordTable(records)}\n`);
    for (const r of records) await write(process.stdout, `${JSON.stringify(r)}\n`);
  });
}

async function verify(argv: string[]): Promise<void> {
  const { values } = flags(argv, { ...SOURCE, 'expect-head': { type: 'string' }, file: { type: 'string' } });
  const expectHead = values['expect-head'];
  if (expectHead !== undefined && !/^[0-9a-f]{64}$/.test(expectHead))
    throw usage('--expect-head must be a 64-digit hex hash');
  let report: ChainReport;
  let anchor: AuditRecord | undefined;
  if (values.file !== undefined) {
    if (values.config !== undefined || values.db !== undefined || values.postgres !== undefined)
      throw usage('--file verifies an export: give no --config, --db or --postgres');
    const unreadable: ChainProblem[] = [];
    const records = exportedRecords(values.file, unreadable, (first) => {
      anchor = first;
    });
    report = await verifyChain(records, { expectHead, fromGenesis: false });
    report = {
      ...report,
      ok: report.ok && !unreadable.length,
      problems: [...unreadable, ...report.problems].sort((a, b) => a.seq - b.seq),
    };
  } else {
    report = await withStore(values, (store) => verifyChain(store.records(), { expectHead }));
  }
  if (report.ok) {
    const head = report.head ? `head ${report.head.seq} ${report.head.hash}` : 'no head (empty)';
    const from = anchor && anchor.seq !== 1 ? `, anchored at seq ${anchor.seq - 1} hash ${anchor.prevHash}` : '';
    await write(process.stdout, `ok: ${report.count} records, ${head}${from}\n`);
    return;
  }
  const lines = report.problems.map((p) => `seq ${p.seq}: ${p.problem}: ${p.detail}\n`).join('');
  await write(process.stdout, `FAILED: ${report.problems.length} problem(s) in ${report.count} records\n${lines}`);
  process.exitCode = 1;
}

async function exportRecords(argv: string[]): Promise<void> {
  const { values } = flags(argv, {
    ...SOURCE,
    out: { type: 'string', short: 'o' },
    since: { type: 'string' },
    'from-seq': { type: 'string' },
  });
  if (values.since !== undefined && values['from-seq'] !== undefined)
    throw usage('give --since or --from-seq, not both');
  const since = time(values.since, '--since');
  const fromSeq = values['from-seq'] === undefined ? 1 : positiveInt(values['from-seq'], '--from-seq');
  await withStore(values, async (store) => {
    // Audit records name users and what they did: the file is for its owner only.
    const out = values.out === undefined ? process.stdout : await openOut(values.out);
    // From the first record at or after --since on, every record: an export is one contiguous piece of the chain,
    // even where clocks of two writers put a later record a little earlier.
    let started = since === undefined;
    for await (const r of store.records(fromSeq)) {
      if (!started && r.ts < since!) continue;
      started = true;
      await write(out, `${JSON.stringify(r)}\n`);
    }
    if (out !== process.stdout)
      await new Promise<void>((resolve, reject) =>
        (out as Writable).end((err?: Error | null) => (err ? reject(err) : resolve())),
      );
  });
}

/** Records of an exported JSONL file; lines that are not records become problems instead of stopping the check. */
async function* exportedRecords(
  path: string,
  problems: ChainProblem[],
  onFirst: (r: AuditRecord) => void,
): AsyncIterable<AuditRecord> {
  const input = createReadStream(path);
  await once(input, 'open').catch((err: unknown) => {
    throw new BehalfError('usage', `cannot read ${path}`, {}, { cause: err });
  });
  let line = 0;
  let last = 0;
  let first = true;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++;
    if (!text.trim()) continue;
    let r: AuditRecord | undefined;
    try {
      const parsed = JSON.parse(text) as AuditRecord;
      if (parsed && typeof parsed === 'object' && typeof parsed.seq === 'number' && typeof parsed.hash === 'string')
        r = parsed;
    } catch {
      // reported below
    }
    if (!r) {
      problems.push({ seq: last + 1, problem: 'edited', detail: `line ${line} is not an audit record` });
      continue;
    }
    if (first) onFirst(r);
    first = false;
    last = r.seq;
    yield r;
  }
}

/** parse, refusing stray words: `audit tail 50` must not quietly mean `tail -n 20`. */
function flags<T extends Parameters<typeof parse>[1]>(argv: string[], options: T) {
  const parsed = parse(argv, options);
  if (parsed.positionals.length) throw usage(`unexpected argument ${parsed.positionals[0]}`);
  return parsed;
}

function withStore<T>(values: SourceFlags, use: (store: AuditStore) => Promise<T>): Promise<T> {
  return withSource(values, usage, use);
}

/** ISO-8601 or epoch milliseconds. */
function time(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw usage(`${flag} must be an ISO-8601 time or epoch milliseconds`);
  return ms;
}

function positiveInt(value: string, flag: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw usage(`${flag} must be a positive integer`);
  return Number(value);
}

function usage(problem: string): BehalfError {
  return new BehalfError('usage', `${problem}\n${USAGE}`);
}

/** Writes with backpressure, so an export of millions of records does not sit in memory. */
export async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

async function openOut(path: string): Promise<Writable> {
  const out = createWriteStream(path, { mode: 0o600 });
  await once(out, 'open').catch((err: NodeJS.ErrnoException) => {
    throw new BehalfError('usage', `cannot write ${path}: ${err.code ?? 'error'}`, {}, { cause: err });
  });
  return out;
}

export function untilSignal(): { done: boolean; promise: Promise<void> } {
  const state = { done: false, promise: Promise.resolve() };
  state.promise = new Promise((resolve) => {
    process.once('SIGINT', () => {
      state.done = true;
      resolve();
    });
  });
  return state;
}
