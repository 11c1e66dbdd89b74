/**
 * Heuristics for "this is a credential", used to keep secrets out of audit
 * records even where the config asks to keep a value. They err towards
 * redaction: a false positive hides a value from the audit log, a false
 * negative writes a credential into it.
 */

/** Names (lower-cased, without - _ and spaces) that hold credentials. */
const SECRET_NAME =
  /passw(or)?d|passphrase|pwd|secret|token|apikey|accesskey|authorization|cookie|credential|privatekey|session|jwt|bearer/;

export function nameLooksSecret(name: string): boolean {
  return SECRET_NAME.test(name.toLowerCase().replace(/[-_\s]/g, ''));
}

const SECRET_TEXT = [
  /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/, // a JWT (its header is base64url JSON)
  /^[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}$/, // any JWS-shaped value
  /\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}/i, // an Authorization header value
  /-----BEGIN [A-Z0-9 ]*-----/, // a PEM block (private key, certificate request…)
  /\b(?:bhk_|sk-|sk_live_|ghp_|gho_|ghs_|github_pat_|glpat-|xox[abpr]-)[A-Za-z0-9_-]{16,}|\bAKIA[0-9A-Z]{16}\b/, // well-known key prefixes, ours first
];
/** Runs of base64/base64url/hex characters long enough to be a key. */
const LONG_RUN = /[A-Za-z0-9+/=_-]{32,}/g;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function looksLikeSecret(value: string): boolean {
  if (SECRET_TEXT.some((r) => r.test(value))) return true;
  for (const run of value.match(LONG_RUN) ?? []) if (!UUID.test(run) && looksRandom(run)) return true;
  return false;
}

/** Shannon entropy of a string, in bits per character. */
export function bitsPerChar(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/**
 * Random keys mix letters and digits with near-maximal entropy per
 * character; words, paths and identifiers written by people rarely reach
 * 3.5 bits with digits in them.
 */
function looksRandom(s: string): boolean {
  if (!/[0-9]/.test(s) || !/[A-Za-z]/.test(s)) return false;
  return bitsPerChar(s) >= 3.5;
}
