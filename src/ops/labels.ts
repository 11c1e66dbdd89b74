import { METHOD_TABLE } from '../policy/method-table.js';
import type { CompiledPolicy } from '../policy/policy.js';

/** What a label takes when its value is not one the configuration names. */
export const OTHER = 'other';

/** Rule ids the gateway itself writes (method table, catalogue, route settings, pipeline): a fixed family of prefixes. */
const BUILT_IN_RULE =
  /^(method-table|policy-methods|catalog|route|pipeline|rate-limit|continuation|user-context)(:[\w./-]{1,80})?$/;

/** Never more distinct values per label than this, whatever the configuration says: a bound on series, not a lookup. */
const MAX_VALUES = 500;

/**
 * Folds a label's values onto a bounded set: a value is kept when the
 * configuration names it (the policy's rule and tool ids, the method table,
 * upstream names), else it counts as `other`. A client chooses tool names and
 * methods; the series a scrape returns must not be the client's choice.
 */
export class LabelFolder {
  private readonly seen = new Set<string>();

  fold(value: string | undefined, known: (v: string) => boolean): string {
    if (value === undefined || value === '') return 'none';
    if (this.seen.has(value)) return value;
    if (!known(value) || this.seen.size >= MAX_VALUES) return OTHER;
    this.seen.add(value);
    return value;
  }
}

const policyRuleIds = new WeakMap<CompiledPolicy, ReadonlySet<string>>();

/** The policy's own rule ids and its rate limits' (as the rate-limit step names them). */
function ruleIdsOf(policy: CompiledPolicy): ReadonlySet<string> {
  let ids = policyRuleIds.get(policy);
  if (!ids) {
    ids = new Set([...policy.rules.map((r) => r.id), ...policy.rateLimits.map((l) => `rate-limit:${l.id}`)]);
    policyRuleIds.set(policy, ids);
  }
  return ids;
}

export function isKnownRule(policy: CompiledPolicy, id: string): boolean {
  return ruleIdsOf(policy).has(id) || BUILT_IN_RULE.test(id);
}

export function isKnownTool(policy: CompiledPolicy, name: string): boolean {
  return policy.namedTools?.has(name) ?? false;
}

export function isKnownMethod(policy: CompiledPolicy, method: string): boolean {
  return Object.hasOwn(METHOD_TABLE, method) || Object.hasOwn(policy.methods, method) || method === 'response';
}
