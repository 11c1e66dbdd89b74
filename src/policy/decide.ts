import type { CompiledRule, PolicyInput, Target } from './rules.js';

export interface Decision {
  effect: 'allow' | 'deny';
  ruleIds: string[];
  reason: string;
}

/**
 * Deny beats allow; no matching allow denies; an expression that errors or
 * yields anything but a boolean counts as a matching deny (fail closed).
 */
export function decide(rules: readonly CompiledRule[], upstream: string, target: Target, input: PolicyInput): Decision {
  const allows: string[] = [];
  const denies: string[] = [];
  const errors: string[] = [];
  for (const rule of rules) {
    if (!rule.appliesTo(upstream, target)) continue;
    let matched = true;
    if (rule.when) {
      try {
        const v = rule.when(input);
        if (typeof v !== 'boolean') throw new Error('expression did not yield a boolean');
        matched = v;
      } catch {
        errors.push(rule.id);
        continue;
      }
    }
    if (matched) (rule.effect === 'deny' ? denies : allows).push(rule.id);
  }
  if (errors.length) return { effect: 'deny', ruleIds: errors, reason: 'rule evaluation error' };
  if (denies.length) return { effect: 'deny', ruleIds: denies, reason: 'denied by rule' };
  if (allows.length) return { effect: 'allow', ruleIds: allows, reason: 'allowed by rule' };
  return { effect: 'deny', ruleIds: [], reason: 'no rule allows this' };
}

/**
 * Whether a listed item should be shown: it is shown when some call to it can
 * be allowed. Rules that read `args` cannot be decided without arguments, so
 * an allow rule that reads args counts as "may allow" and a deny rule that
 * reads args does not hide the item (it will be decided at call time).
 */
export function visible(rules: readonly CompiledRule[], upstream: string, target: Target, input: PolicyInput): boolean {
  let allowed = false;
  for (const rule of rules) {
    if (!rule.appliesTo(upstream, target)) continue;
    let matched: boolean | 'unknown' = true;
    if (rule.when) {
      try {
        const v = rule.when(input);
        matched = typeof v === 'boolean' ? v : 'unknown';
      } catch {
        matched = 'unknown';
      }
      if (matched !== true && rule.readsArgs) matched = 'unknown';
    }
    if (rule.effect === 'deny' && matched === true) return false;
    if (rule.effect === 'deny' && matched === 'unknown' && !rule.readsArgs) return false;
    if (rule.effect === 'allow' && (matched === true || (matched === 'unknown' && rule.readsArgs))) allowed = true;
  }
  return allowed;
}
