import type { AuditRecord } from '../../audit/event.js';
import { authorizeMessage, type Authorization } from '../authorize.js';
import { policyEnvironment } from '../environment.js';
import type { CompiledPolicy } from '../policy.js';
import type { CompiledRule, PolicyInput } from '../rules.js';
import { ruleReads, type MapReads, type RuleReads } from './reads.js';
import {
  recordView,
  type KnownMap,
  type MapRoot,
  type RecordView,
  type SkipWhy,
  type UnknownRead,
} from './record-view.js';

export interface Outcome {
  effect: 'allow' | 'deny';
  stepUp: boolean;
  ruleIds: string[];
  reason: string;
}

export type Verdict =
  | { kind: 'skipped'; why: SkipWhy }
  | { kind: 'undecidable'; rules: string[]; unknown: UnknownRead[] }
  | ({ kind: 'decided' } & Outcome);

/** Undecided rules are tried as true, false and failing: beyond this many the combinations are not worth it. */
const MAX_UNDECIDED_RULES = 5;
const READ_PREFIX: Record<MapRoot, string> = {
  args: 'args',
  promptArgs: 'prompt.arguments',
  claims: 'user.claims',
  annotations: 'tool.annotations',
};

/** Thrown by a rule the record cannot decide: decide() treats it as a failed rule, and the combinations settle it. */
class Undecided extends Error {}

type Status = { kind: 'eval' } | { kind: 'absorb' | 'blocked'; unknown: UnknownRead[] };

function unknownOf(root: MapRoot, key: string, m: KnownMap): UnknownRead | undefined {
  const why = m.unknown(key);
  return why ? { read: `${READ_PREFIX[root]}.${key}`, why, root, key } : undefined;
}

/**
 * How a rule can be evaluated on one record. A value it reads by a constant
 * key that the record lacks is left out of the input: reading it then fails,
 * and CEL's && and || absorb a failure only where the other side decides
 * alone, so a boolean result holds for every value the record could have
 * held ("absorb"). A rule testing presence of, or reading whole, a map the
 * record holds only in part could see a wrong answer: it is not evaluated.
 */
function statusOf(reads: RuleReads, view: RecordView): Status {
  const blocked: UnknownRead[] = [];
  const absorbed: UnknownRead[] = [];
  for (const root of Object.keys(READ_PREFIX) as MapRoot[]) {
    const m = view.maps[root];
    const r: MapReads = reads[root];
    if (!m) continue;
    if (r.whole && m.anyUnknown) blocked.push({ read: READ_PREFIX[root], why: 'not recorded', root });
    for (const k of r.presence) {
      const u = unknownOf(root, k, m);
      if (u) blocked.push(u);
    }
    for (const k of r.keys) {
      const u = unknownOf(root, k, m);
      if (u) absorbed.push(u);
    }
  }
  if (reads.scopes && !view.scopes) blocked.push({ read: 'user.scopes', why: 'not recorded', root: 'scopes' });
  if (blocked.length) return { kind: 'blocked', unknown: [...blocked, ...absorbed] };
  return absorbed.length ? { kind: 'absorb', unknown: absorbed } : { kind: 'eval' };
}

/** What one replay is doing: the record, the rules it could not decide, and the values forced on them. */
interface Run {
  view?: RecordView;
  status: Map<string, Status>;
  undecided: Map<string, UnknownRead[]>;
  forced: Map<string, 'true' | 'false' | 'error'>;
}

function shadowRule(rule: CompiledRule, run: Run): CompiledRule {
  const when = rule.when;
  if (!when || !rule.whenSource) return rule;
  const reads = ruleReads(policyEnvironment().parse(rule.whenSource).ast);
  return {
    ...rule,
    when(input: PolicyInput) {
      const forced = run.forced.get(rule.id);
      if (forced === 'error') throw new Undecided(rule.id);
      if (forced) return forced === 'true';
      let status = run.status.get(rule.id);
      if (!status) run.status.set(rule.id, (status = statusOf(reads, run.view!)));
      if (status.kind === 'eval') return when(input);
      if (status.kind === 'absorb') {
        try {
          const v = when(input);
          if (typeof v === 'boolean') return v;
        } catch {
          // A failure here may be the missing value's: undecided, like a non-boolean result.
        }
      }
      run.undecided.set(rule.id, status.unknown);
      throw new Undecided(rule.id);
    },
  };
}

function outcomeOf(a: Authorization): Outcome {
  return { effect: a.effect, stepUp: a.stepUpScopes !== undefined, ruleIds: a.ruleIds, reason: a.reason };
}

const outcomeKey = (o: Outcome) => `${o.effect}:${o.stepUp}`;

/** Decides recorded decisions again under a proposed policy, with the gateway's own authorizeMessage. */
export class Replayer {
  private readonly run: Run = { status: new Map(), undecided: new Map(), forced: new Map() };
  private readonly shadow: CompiledPolicy;
  /** Every scope a rule asks for: a record without its token's scopes is tried with none and with all. */
  private readonly allScopes: string[];

  constructor(readonly policy: CompiledPolicy) {
    this.shadow = { ...policy, rules: policy.rules.map((r) => shadowRule(r, this.run)) };
    this.allScopes = [...new Set(policy.rules.flatMap((r) => r.scopes))];
  }

  private decideOnce(view: RecordView, scopes: readonly string[]): Outcome {
    const tools =
      this.shadow.needsToolCatalog && 'method' in view.msg && view.msg.method === 'tools/call'
        ? () => ({ annotations: {} })
        : undefined;
    return outcomeOf(
      authorizeMessage(this.shadow, view.principal(scopes), view.upstream, view.transport, view.msg, {
        // Forwarding roots is the route's setting, not the policy's: as it was.
        forwardRoots: view.before.effect === 'allow',
        tools,
      }),
    );
  }

  replay(record: AuditRecord): Verdict {
    const view = recordView(record, this.shadow.needsToolCatalog);
    if (typeof view === 'string') return { kind: 'skipped', why: view };
    const run = this.run;
    run.view = view;
    run.status.clear();
    run.undecided.clear();
    run.forced.clear();
    const scopeSets = view.scopes ? [view.scopes] : [[], this.allScopes];
    const first = this.decideOnce(view, scopeSets[0]!);
    if (!run.undecided.size && scopeSets.length === 1) return { kind: 'decided', ...first };
    const undecided = [...run.undecided.keys()];
    const unknown = [...run.undecided.values()].flat();
    if (undecided.length > MAX_UNDECIDED_RULES) return { kind: 'undecidable', rules: undecided, unknown };
    const outcomes = scopeSets.map(() => new Map<string, Outcome>());
    for (const [i, scopes] of scopeSets.entries()) {
      for (let combo = 0; combo < 3 ** undecided.length; combo++) {
        let c = combo;
        for (const id of undecided) {
          run.forced.set(id, (['true', 'false', 'error'] as const)[c % 3]!);
          c = Math.floor(c / 3);
        }
        const o = this.decideOnce(view, scopes);
        outcomes[i]!.set(outcomeKey(o), o);
      }
    }
    const all = new Map(outcomes.flatMap((m) => [...m]));
    if (all.size === 1) return { kind: 'decided', ...[...all.values()][0]! };
    const scopesMatter = outcomes.length > 1 && [...outcomes[0]!.keys()].join() !== [...outcomes[1]!.keys()].join();
    // Without the token's scopes, the rules that asked for a step-up are the ones the answer hangs on.
    const stepUpRules = [...outcomes[0]!.values()].filter((o) => o.stepUp).flatMap((o) => o.ruleIds);
    return {
      kind: 'undecidable',
      rules: [...new Set([...undecided, ...(scopesMatter ? stepUpRules : [])])],
      unknown: scopesMatter ? [...unknown, { read: 'user.scopes', why: 'not recorded', root: 'scopes' }] : unknown,
    };
  }
}
