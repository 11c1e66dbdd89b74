import { Environment } from '@marcbachmann/cel-js';
import type { PolicyRuleConfig } from '../config/schema.js';
import { BehalfError } from '../errors.js';
import { globMatcher } from './glob.js';

/** What a rule's `when` expression can see. */
export interface PolicyInput {
  user: Record<string, unknown>;
  client: Record<string, unknown>;
  upstream: string;
  request: { method: string; transport: string };
  tool?: { name: string };
  args?: Record<string, unknown>;
  resource?: { uri: string };
  prompt?: { name: string; arguments?: Record<string, unknown> };
}

export type Target = { feature: 'tool'; name: string } | { feature: 'resource'; name: string } | { feature: 'prompt'; name: string };

export interface CompiledRule {
  id: string;
  effect: 'allow' | 'deny';
  appliesTo(upstream: string, target: Target): boolean;
  /** True/false, or throws when the expression cannot be evaluated (the caller fails closed). */
  when?: (input: PolicyInput) => unknown;
  /** Names the top-level variables the expression reads, so listing can tell an argument-dependent rule. */
  readsArgs: boolean;
}

const VARIABLES = ['user', 'client', 'upstream', 'request', 'tool', 'args', 'resource', 'prompt'] as const;

function celEnvironment(): Environment {
  const env = new Environment({ homogeneousAggregateLiterals: false });
  for (const v of VARIABLES) env.registerVariable(v, v === 'upstream' ? 'string' : 'dyn');
  return env;
}

/** Parses and type-checks every `when` at load: a bad rule is a load error naming the rule. */
export function compileRules(rules: readonly PolicyRuleConfig[]): CompiledRule[] {
  const env = celEnvironment();
  return rules.map((r) => {
    const upstreamOk = r.upstreams ? globMatcher(r.upstreams) : () => true;
    const matchers = {
      tool: r.tools ? globMatcher(r.tools) : undefined,
      resource: r.resources ? globMatcher(r.resources) : undefined,
      prompt: r.prompts ? globMatcher(r.prompts) : undefined,
    };
    let when: CompiledRule['when'];
    if (r.when !== undefined) {
      let program: ReturnType<Environment['parse']>;
      try {
        program = env.parse(r.when);
        const checked = program.check();
        if (!checked.valid) throw checked.error ?? new Error('type check failed');
        if (checked.type !== 'bool' && checked.type !== 'dyn') throw new Error(`must yield bool, yields ${checked.type}`);
      } catch (err) {
        throw new BehalfError('config_invalid', `policy rule ${r.id}: invalid when expression: ${(err as Error).message}`);
      }
      when = (input) => program(input as unknown as Record<string, unknown>);
    }
    return {
      id: r.id,
      effect: r.effect,
      readsArgs: r.when !== undefined && /\bargs\b/.test(r.when),
      when,
      appliesTo(upstream, target) {
        if (!upstreamOk(upstream)) return false;
        const m = matchers[target.feature];
        return m !== undefined && m(target.name);
      },
    };
  });
}
