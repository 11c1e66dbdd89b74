import { createHash } from 'node:crypto';
import type { PolicyDocument } from '../config/schema.js';
import { BehalfError } from '../errors.js';
import { globMatcher } from '../shared/glob.js';
import { DECIDED_METHODS, METHOD_TABLE } from './method-table.js';
import { compileRateLimit, type CompiledRateLimit } from './rate-limit.js';
import { compileRule, RuleError, type CompiledRule, type Feature } from './rules.js';

/** A policy ready to decide: immutable, so a reload swaps it whole (atomically). */
export interface CompiledPolicy {
  /** Content hash, recorded with every decision so a record names the policy that made it. */
  version: string;
  rules: readonly CompiledRule[];
  rateLimits: readonly CompiledRateLimit[];
  methods: PolicyDocument['methods'];
  /** Some rule reads tool annotations: the gateway learns each upstream's tool catalogue before deciding calls. */
  needsToolCatalog: boolean;
  /** Claims some rule reads by name: recorded with each decision, so a replay can re-decide it (decision-inputs.ts). */
  claimsRead: readonly string[];
  /** Tool names the rules and limits spell out (no globs): the tools metrics may name one by one; others count as `other`. */
  namedTools?: ReadonlySet<string>;
}

export class PolicyError extends BehalfError {
  constructor(
    readonly problems: string[],
    options?: { cause?: unknown },
  ) {
    super('policy_invalid', `invalid policy:\n${problems.map((p) => `  ${p}`).join('\n')}`, {}, options);
    this.name = 'PolicyError';
  }
}

export function policyVersion(doc: PolicyDocument): string {
  return createHash('sha256').update(JSON.stringify(doc)).digest('hex').slice(0, 16);
}

/**
 * Compiles and checks a policy. Every problem is collected, so one run of
 * `behalf config check` or one rejected reload lists them all.
 */
export interface CompileOptions {
  /** Claims the issuers expose (userClaims): a rule reading any other claim could never see it. Absent = not checked. */
  claims?: readonly string[];
}

export function compilePolicy(
  doc: PolicyDocument,
  upstreams: readonly string[],
  opts: CompileOptions = {},
): CompiledPolicy {
  const problems: string[] = [];
  const rules: CompiledRule[] = [];
  const ids = new Set<string>();
  const decided = new Map<string, readonly Feature[]>(Object.entries(DECIDED_METHODS));
  for (const [name, m] of Object.entries(doc.methods)) {
    if (Object.hasOwn(METHOD_TABLE, name))
      problems.push(`methods.${name}: already a built-in method; only methods outside the table can be declared`);
    else if (m.decide === 'rules') decided.set(name, []);
  }
  const upstreamProblem = (where: string, list: readonly string[] | undefined) => {
    for (const u of list ?? []) {
      if (!upstreams.some(globMatcher([u])))
        problems.push(`${where}.upstreams: ${u} matches no upstream (known: ${upstreams.join(', ')})`);
    }
  };
  for (const [i, r] of doc.rules.entries()) {
    const where = `rules.${i} (${r.id})`;
    if (ids.has(r.id)) problems.push(`${where}: duplicate rule id`);
    ids.add(r.id);
    upstreamProblem(where, r.upstreams);
    const features = (['tool', 'resource', 'prompt'] as const).filter((f) => r[`${f}s`] !== undefined);
    if (!r.methods && features.length === 0)
      problems.push(`${where}: matches nothing: name methods, tools, resources or prompts`);
    if (r.methods) {
      const hits = [...decided.keys()].filter(globMatcher(r.methods));
      if (hits.length === 0)
        problems.push(
          `${where}.methods: matches no method that rules decide (${[...decided.keys()].join(', ')}); list methods are filtered by the call rules and housekeeping always passes`,
        );
      else if (features.length && !hits.some((m) => decided.get(m)!.some((f) => features.includes(f)))) {
        problems.push(
          `${where}: matches nothing: none of its methods (${hits.join(', ')}) reaches ${features.map((f) => `${f}s`).join(' or ')}`,
        );
      }
    }
    if (r.effect === 'deny' && r.scopes?.length)
      problems.push(`${where}.scopes: scopes are a condition for allow rules; a deny rule cannot require them`);
    try {
      const rule = compileRule(r);
      rules.push(rule);
      const unknownClaims = opts.claims ? [...rule.facts.claims].filter((c) => !opts.claims!.includes(c)) : [];
      if (unknownClaims.length) {
        problems.push(
          `${where}.when: reads user.claims.${unknownClaims.join(', user.claims.')}, which no issuer exposes (userClaims: ${opts.claims!.join(', ') || 'none'})`,
        );
      }
    } catch (err) {
      problems.push(err instanceof RuleError ? err.message : `${where}: ${(err as Error).message}`);
    }
  }
  const limitIds = new Set<string>();
  for (const [i, l] of doc.rateLimits.entries()) {
    const where = `rateLimits.${i} (${l.id})`;
    if (limitIds.has(l.id)) problems.push(`${where}: duplicate rate limit id`);
    limitIds.add(l.id);
    upstreamProblem(where, l.upstreams);
  }
  if (problems.length) throw new PolicyError(problems);
  return {
    version: policyVersion(doc),
    rules,
    rateLimits: doc.rateLimits.map(compileRateLimit),
    methods: doc.methods,
    needsToolCatalog: rules.some((r) => r.facts.readsToolInfo),
    claimsRead: [...new Set(rules.flatMap((r) => [...r.facts.claims]))],
    namedTools: new Set(
      [...doc.rules, ...doc.rateLimits].flatMap((r) => r.tools ?? []).filter((t) => !/[*?[\]{}]/.test(t)),
    ),
  };
}
