import type { AuditRecord } from '../../audit/event.js';
import type { Outcome, Verdict } from './decide.js';
import type { SkipWhy, UnknownRead } from './record-view.js';

export type ChangeKind = 'allow→deny' | 'deny→allow' | 'step-up';
export type FailOn = 'new-allows' | 'any-change' | 'none';

export interface Example {
  seq: number;
  user: string;
  client: string;
  call: string;
  before: string;
  after: string;
}

export interface Tally {
  count: number;
  byRule: Record<string, number>;
  byTarget: Record<string, number>;
  byClient: Record<string, number>;
  byUser: Record<string, number>;
  examples: Example[];
}

export interface UnknownTally {
  count: number;
  why: UnknownRead['why'];
  /** What would make it decidable: an audit.arguments.keep entry, an audit.claims.keep name, or why nothing can. */
  remedy: string;
}

export interface ReplayReport {
  policy: { file?: string; version: string };
  /** The seqs replayed (first and last record read). */
  fromSeq?: number;
  toSeq?: number;
  records: number;
  decisions: number;
  unchanged: number;
  changes: Record<ChangeKind, Tally>;
  /** deny→allow plus deny→step-up (a call a token with more scopes now may make). */
  newAllows: number;
  undecidable: {
    count: number;
    byRule: Record<string, number>;
    byRead: Record<string, UnknownTally>;
    examples: Array<Example & { reads: string[] }>;
  };
  notReplayed: { count: number; byReason: Partial<Record<SkipWhy, number>> };
  gate: { failOn: FailOn; tripped: boolean };
}

const EXAMPLES = 5;

const emptyTally = (): Tally => ({ count: 0, byRule: {}, byTarget: {}, byClient: {}, byUser: {}, examples: [] });
const bump = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1;
};

function describe(o: Pick<Outcome, 'effect' | 'stepUp' | 'ruleIds'>): string {
  const what = o.stepUp ? 'step-up' : o.effect;
  return o.ruleIds.length ? `${what} (${o.ruleIds.join(', ')})` : what;
}

function state(o: Pick<Outcome, 'effect' | 'stepUp'>): 'allow' | 'deny' | 'step-up' {
  return o.stepUp ? 'step-up' : o.effect;
}

/** What would make a read decidable next time, said where it is configured. */
function remedy(u: UnknownRead, r: AuditRecord): string {
  if (u.why === 'secret') return 'a secret-looking value is never recorded: not replayable';
  switch (u.root) {
    case 'args':
    case 'promptArgs':
      return u.key === undefined
        ? `the rule reads the arguments whole: keep every argument of ${r.target ?? 'the call'} in audit.arguments.keep`
        : `audit.arguments.keep: { upstreams: [${r.upstream ?? ''}], tools: [${r.target ?? ''}], args: [${u.key}] }`;
    case 'claims':
      return u.key === undefined
        ? 'the rule reads the claims whole: name each claim in audit.claims.keep'
        : `audit.claims.keep: [${u.key}] (or a live rule reading it)`;
    case 'annotations':
      return 'tool annotations are not recorded: not replayable';
    case 'scopes':
      return 'recorded with each decision from this version on';
  }
}

/** Counts replayed decisions as they come, so a trail of any length is summed in constant memory. */
export class ReplayTally {
  private readonly report: ReplayReport;

  constructor(policy: ReplayReport['policy'], failOn: FailOn) {
    this.report = {
      policy,
      records: 0,
      decisions: 0,
      unchanged: 0,
      changes: { 'allow→deny': emptyTally(), 'deny→allow': emptyTally(), 'step-up': emptyTally() },
      newAllows: 0,
      undecidable: { count: 0, byRule: {}, byRead: {}, examples: [] },
      notReplayed: { count: 0, byReason: {} },
      gate: { failOn, tripped: false },
    };
  }

  /** Adds one record and its verdict; returns the change, if any, for a live view. */
  add(r: AuditRecord, v: Verdict): { kind: ChangeKind | 'undecidable'; example: Example } | undefined {
    const rep = this.report;
    rep.records++;
    rep.fromSeq ??= r.seq;
    rep.toSeq = r.seq;
    if (v.kind === 'skipped' && v.why === 'not a decision') return undefined;
    rep.decisions++;
    if (v.kind === 'skipped') {
      rep.notReplayed.count++;
      rep.notReplayed.byReason[v.why] = (rep.notReplayed.byReason[v.why] ?? 0) + 1;
      return undefined;
    }
    const before = { effect: r.decision!, stepUp: r.reason === 'insufficient scope', ruleIds: r.ruleIds ?? [] };
    const example = {
      seq: r.seq,
      user: r.userSubject ?? '(no user)',
      client: r.clientId ?? '',
      call: `${r.method ?? ''}${r.target !== undefined ? ` ${r.target}` : ''}`,
      before: describe(before),
      after: '',
    };
    if (v.kind === 'undecidable') {
      const u = rep.undecidable;
      u.count++;
      for (const id of v.rules) bump(u.byRule, id);
      const unique = new Map(v.unknown.map((x) => [x.read, x]));
      for (const x of unique.values()) {
        const where = x.root === 'args' || x.root === 'promptArgs' ? ` of ${r.upstream ?? ''} ${r.target ?? ''}` : '';
        (u.byRead[`${x.read}${where}`] ??= { count: 0, why: x.why, remedy: remedy(x, r) }).count++;
      }
      const reads = [...unique.keys()];
      const ex = { ...example, after: `undecidable: reads ${reads.join(', ')}`, reads };
      if (u.examples.length < EXAMPLES) u.examples.push(ex);
      return { kind: 'undecidable', example: ex };
    }
    const from = state(before);
    const to = state(v);
    if (from === to) {
      rep.unchanged++;
      return undefined;
    }
    const kind: ChangeKind =
      to === 'allow' ? 'deny→allow' : from === 'allow' && to === 'deny' ? 'allow→deny' : 'step-up';
    if (to === 'allow' || (from === 'deny' && to === 'step-up')) rep.newAllows++;
    const t = rep.changes[kind];
    t.count++;
    bump(t.byRule, v.ruleIds.length ? v.ruleIds.join(', ') : `no rule allows (was ${before.ruleIds.join(', ')})`);
    bump(t.byTarget, example.call);
    bump(t.byClient, example.client);
    bump(t.byUser, example.user);
    const ex = { ...example, after: `${kind === 'step-up' ? `${from}→${to}: ` : ''}${describe(v)}` };
    if (t.examples.length < EXAMPLES) t.examples.push(ex);
    return { kind, example: ex };
  }

  /** The report so far, with the gate judged. */
  result(): ReplayReport {
    const rep = this.report;
    const changed = rep.changes['allow→deny'].count + rep.changes['deny→allow'].count + rep.changes['step-up'].count;
    rep.gate.tripped =
      rep.gate.failOn === 'new-allows' ? rep.newAllows > 0 : rep.gate.failOn === 'any-change' ? changed > 0 : false;
    return rep;
  }
}
