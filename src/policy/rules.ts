import type { PolicyRuleConfig } from '../config/schema.js';
import { BehalfError } from '../errors.js';
import { globMatcher } from '../shared/glob.js';
import { evaluationEnvironment, policyEnvironment } from './environment.js';
import { expressionFacts, type ExpressionFacts } from './expression-facts.js';

/** What a rule's `when` expression can see (docs/architecture.md §3 step 3). */
export interface PolicyInput {
  user: {
    authenticated: boolean;
    issuer: string;
    sub: string;
    claims: Record<string, unknown>;
    scopes: readonly string[];
  };
  client: { id: string; method: string };
  upstream: string;
  request: { method: string; transport: string };
  tool?: { name: string; annotations: Record<string, unknown> };
  /** Absent while filtering a list: a rule that reads it then cannot be decided (see visible.ts). */
  args?: Record<string, unknown>;
  resource?: { uri: string };
  prompt?: { name: string; arguments: Record<string, unknown> };
}

export type Feature = 'tool' | 'resource' | 'prompt';
/** What a call reaches; absent for configured custom methods, which name no tool, resource or prompt. */
export interface Target {
  feature: Feature;
  name: string;
}

export interface CompiledRule {
  id: string;
  effect: 'allow' | 'deny';
  description?: string;
  /** Step-up: scopes the user token must carry for this allow to take effect. */
  scopes: readonly string[];
  appliesTo(method: string, upstream: string, target: Target | undefined): boolean;
  /** True/false, or throws when the expression cannot be evaluated (the caller fails closed). */
  when?: (input: PolicyInput) => unknown;
  whenSource?: string;
  /** What the expression reads (variables, claims, tool annotations), from its parsed tree. */
  facts: ExpressionFacts;
}

/** A rule that cannot be compiled: the message names the rule and, for expressions, the position. */
export class RuleError extends BehalfError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('policy_invalid', message, {}, options);
    this.name = 'RuleError';
  }
}

const FEATURE_KEYS = { tool: 'tools', resource: 'resources', prompt: 'prompts' } as const;

export function compileRule(r: PolicyRuleConfig): CompiledRule {
  const upstreamOk = r.upstreams ? globMatcher(r.upstreams) : () => true;
  const methodOk = r.methods ? globMatcher(r.methods) : () => true;
  const names = {
    tool: r.tools ? globMatcher(r.tools) : undefined,
    resource: r.resources ? globMatcher(r.resources) : undefined,
    prompt: r.prompts ? globMatcher(r.prompts) : undefined,
  };
  const namesAny = Boolean(r.tools || r.resources || r.prompts);
  let when: CompiledRule['when'];
  let facts: ExpressionFacts = { variables: new Set(), readsToolInfo: false, claims: new Set() };
  if (r.when !== undefined) {
    try {
      const program = policyEnvironment().parse(r.when);
      const checked = program.check();
      if (!checked.valid) throw checked.error ?? new Error('type check failed');
      if (checked.type !== 'bool' && checked.type !== 'dyn')
        throw new Error(`the expression must yield bool, but yields ${checked.type}`);
      facts = expressionFacts(program.ast);
    } catch (err) {
      throw new RuleError(`rule ${r.id}: invalid when expression: ${(err as Error).message}`, { cause: err });
    }
    const evaluate = evaluationEnvironment().parse(r.when);
    when = (input) => evaluate(input as unknown as Record<string, unknown>);
  }
  return {
    id: r.id,
    effect: r.effect,
    description: r.description,
    scopes: r.scopes ?? [],
    when,
    whenSource: r.when,
    facts,
    appliesTo(method, upstream, target) {
      if (!upstreamOk(upstream) || !methodOk(method)) return false;
      // A rule that names tools/resources/prompts applies only to those; one that names only methods applies to every target of them.
      if (!namesAny) return r.methods !== undefined;
      if (!target) return false;
      const m = names[target.feature];
      return m !== undefined && m(target.name);
    },
  };
}

export { FEATURE_KEYS };
