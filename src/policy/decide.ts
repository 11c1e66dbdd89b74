import type { CompiledPolicy } from './policy.js';
import type { PolicyInput, Target } from './rules.js';

export interface Decision {
  effect: 'allow' | 'deny';
  ruleIds: string[];
  reason: string;
  /**
   * Set when only allow rules whose scopes the token lacks would allow: every
   * scope those rules require, for the 403 insufficient_scope challenge.
   */
  stepUpScopes?: string[];
}

/** What one rule did for one request, for `behalf policy explain`. */
export interface RuleTrace {
  id: string;
  effect: 'allow' | 'deny';
  applies: boolean;
  /** The `when` result; absent when the rule does not apply or has no `when`. */
  matched?: boolean;
  error?: string;
  /** Scopes this allow rule requires that the token lacks. */
  missingScopes?: string[];
}

/**
 * Deny beats allow; no matching allow denies; an expression that errors or
 * yields anything but a boolean counts as a matching deny (fail closed). An
 * allow whose step-up scopes are missing does not allow: if nothing else
 * allows, the decision names the scopes to ask for.
 */
export function decide(
  policy: CompiledPolicy,
  method: string,
  upstream: string,
  target: Target | undefined,
  input: PolicyInput,
  trace?: RuleTrace[],
): Decision {
  const allows: string[] = [];
  const denies: string[] = [];
  const errors: string[] = [];
  const stepUp: { id: string; missing: string[] }[] = [];
  const scopes = input.user.scopes;
  for (const rule of policy.rules) {
    if (!rule.appliesTo(method, upstream, target)) {
      trace?.push({ id: rule.id, effect: rule.effect, applies: false });
      continue;
    }
    let matched = true;
    if (rule.when) {
      try {
        const v = rule.when(input);
        if (typeof v !== 'boolean') throw new Error('expression did not yield a boolean');
        matched = v;
      } catch (err) {
        // Fails closed: the rule's id is the decision's reason; the message, which may quote the
        // call's arguments, goes only to an explain trace.
        errors.push(rule.id);
        trace?.push({ id: rule.id, effect: rule.effect, applies: true, error: firstLine(err) });
        continue;
      }
    }
    const missing = matched && rule.effect === 'allow' ? rule.scopes.filter((s) => !scopes.includes(s)) : [];
    trace?.push({
      id: rule.id,
      effect: rule.effect,
      applies: true,
      ...(rule.when ? { matched } : {}),
      ...(missing.length ? { missingScopes: missing } : {}),
    });
    if (!matched) continue;
    if (rule.effect === 'deny') denies.push(rule.id);
    else if (missing.length) stepUp.push({ id: rule.id, missing });
    else allows.push(rule.id);
  }
  // A rule that failed to evaluate denies; deny rules that matched as well are named with it.
  if (errors.length) return { effect: 'deny', ruleIds: [...errors, ...denies], reason: 'rule evaluation error' };
  if (denies.length) return { effect: 'deny', ruleIds: denies, reason: 'denied by rule' };
  if (allows.length) return { effect: 'allow', ruleIds: allows, reason: 'allowed by rule' };
  if (stepUp.length) {
    const needed = [...new Set(stepUp.flatMap((s) => policy.rules.find((r) => r.id === s.id)!.scopes))];
    return { effect: 'deny', ruleIds: stepUp.map((s) => s.id), reason: 'insufficient scope', stepUpScopes: needed };
  }
  return { effect: 'deny', ruleIds: [], reason: 'no rule allows this' };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
