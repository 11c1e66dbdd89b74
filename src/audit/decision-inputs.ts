import type { Principal } from '../identity/principal.js';
import { nameLooksSecret } from '../shared/secret-shapes.js';
import type { AuditEvent } from './event.js';
import { scrub } from './redact.js';

/** The names recorded for one policy and one `audit.claims.keep`: computed once per policy, not per call. */
const namesFor = new WeakMap<readonly string[], Map<readonly string[], readonly string[]>>();

function claimNames(read: readonly string[], keep: readonly string[]): readonly string[] {
  let byKeep = namesFor.get(read);
  if (!byKeep) namesFor.set(read, (byKeep = new Map()));
  let names = byKeep.get(keep);
  if (!names) byKeep.set(keep, (names = [...new Set([...read, ...keep])].sort()));
  return names;
}

/**
 * What a decision read of the user beyond who she is, so `behalf policy
 * replay` can decide the call again: her token's scopes (step-up) and the
 * claims the policy reads by name plus `audit.claims.keep`. A claim the
 * token lacks is listed as absent, so a replay tells "absent" from "not
 * recorded". Values go through the argument scrubber: a secret-named claim
 * or a secret-looking value is never stored.
 */
export function decisionInputFields(
  p: Principal,
  claimsRead: readonly string[],
  keep: readonly string[],
): Partial<AuditEvent> {
  const user = p.user;
  if (!user) return {};
  const claims: Record<string, unknown> = {};
  const absent: string[] = [];
  for (const name of claimNames(claimsRead, keep)) {
    if (!Object.hasOwn(user.claims, name)) absent.push(name);
    else claims[name] = nameLooksSecret(name) ? '[redacted secret]' : scrub(user.claims[name], 0);
  }
  return {
    userScopes: user.scopes.join(' '),
    ...(absent.length || Object.keys(claims).length ? { userClaims: JSON.stringify({ claims, absent }) } : {}),
  };
}
