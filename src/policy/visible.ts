import { accessPath } from './expression-facts.js';
import type { CompiledPolicy } from './policy.js';
import type { PolicyInput, Target } from './rules.js';

/**
 * What a listed item does not yet know: the variables a call fills in.
 * Tools and resources miss `args`; prompts also miss `prompt.arguments`;
 * a resource template misses the concrete `resource` it will be read as.
 */
export type Unknown = 'args' | 'prompt.arguments' | 'resource';

function isAbout(err: unknown, unknowns: readonly Unknown[]): boolean {
  const node = (err as { node?: unknown } | null)?.node;
  const path = accessPath(node);
  if (!path) return false;
  return unknowns.some((u) =>
    u === 'prompt.arguments' ? path[0] === 'prompt' && path[1] === 'arguments' : path[0] === u,
  );
}

/**
 * Whether a listed item is shown: exactly when some call to it could be
 * allowed. The input lacks what only a call knows, so a rule whose
 * evaluation stops on one of those unknowns is "undecided" and settled at
 * call time. Any other result holds for every call: CEL's && and || absorb
 * an error when the other side decides, so true or false here is true or
 * false for any arguments, and an error that is not about the unknowns (a
 * missing claim, a wrong type) recurs at call time, where errors deny.
 *
 * Step-up scopes do not hide an item: it stays visible so the client learns,
 * at call time, which scopes to ask for (MCP authorization, step-up flow).
 */
export function visible(
  policy: CompiledPolicy,
  method: string,
  upstream: string,
  target: Target,
  input: PolicyInput,
  unknowns: readonly Unknown[],
): boolean {
  let mayAllow = false;
  for (const rule of policy.rules) {
    if (!rule.appliesTo(method, upstream, target)) continue;
    let state: 'true' | 'false' | 'undecided' = 'true';
    if (rule.when) {
      let v: unknown;
      let err: unknown;
      try {
        v = rule.when(input);
      } catch (e) {
        // Judged just below: whether the failure is about the unknowns decides.
        err = e ?? new Error('evaluation failed');
      }
      if (typeof v === 'boolean') state = v ? 'true' : 'false';
      else if (err !== undefined && isAbout(err, unknowns)) state = 'undecided';
      // Not about the unknowns: it fails the same way at call time, and that call is denied.
      else return false;
    }
    if (rule.effect === 'deny' && state === 'true') return false;
    if (rule.effect === 'allow' && state !== 'false') mayAllow = true;
  }
  return mayAllow;
}
