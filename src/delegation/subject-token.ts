import type { Principal } from '../identity/principal.js';

/**
 * The user's own incoming token, kept beside its principal for exactly one
 * purpose: as the subject token of an RFC 8693 exchange. A WeakMap rather
 * than a field, so the token can never be serialised with the principal into
 * a log line or an audit record, and disappears with it.
 */
const tokens = new WeakMap<Principal, string>();

export function rememberSubjectToken(p: Principal, token: string): void {
  tokens.set(p, token);
}

export function subjectTokenOf(p: Principal): string | undefined {
  return tokens.get(p);
}
