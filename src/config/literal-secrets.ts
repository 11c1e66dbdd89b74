import { bitsPerChar } from '../shared/secret-shapes.js';

/**
 * Refuses configuration files that hold a secret inline (review check
 * BND-10: "no secrets in config, secrets by reference"). The schema already
 * refuses a non-reference in every field typed SecretRef (TLS key, upstream
 * headers, a stdio child's env, clientSecret, digestKey…); this walk catches
 * secrets everywhere else a string can go: `{ value: … }` env literals,
 * command-line args, descriptions, CEL expressions, misspelt keys.
 *
 * How a value is judged (strings that are references, `env:NAME` or
 * `file:PATH`, are never secrets):
 *
 *  1. Known formats, in any string anywhere (and in map keys): PEM private
 *     keys, JWTs (`eyJ…` header), Authorization credentials (`Bearer|Basic|
 *     Token` + a 16+ character run mixing letters and digits), URLs with a
 *     password (`scheme://user:pass@`), and provider key prefixes: behalf
 *     `bhk_`, OpenAI/Anthropic `sk-` (with a 16+ run mixing letters and
 *     digits, so `sk-learn-…` names pass), Stripe `sk_live_`/`rk_test_`,
 *     GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/`github_pat_`, GitLab
 *     `glpat-`, Slack `xox[abposr]-` and webhook URLs, AWS `AKIA`/`ASIA` key
 *     ids, Google `AIza`, npm `npm_`.
 *  2. Secret-named fields: when the nearest name of a string — its key, the
 *     variable name for `{ value: … }`, the flag before it in `args`
 *     (`--password X`) or the left side of `--token=X` / `TOKEN=X` — says
 *     password, passphrase, secret, token, credential, authorization, bearer,
 *     cookie, api/access/private/signing/client… key, and the name is not
 *     metadata about a secret (…Header, …Id, …Url, …Path, …File, …Name,
 *     …Seconds, …Endpoint …), a literal of 12+ characters without spaces
 *     that mixes letters and digits, or of 24+ characters with high entropy
 *     (≥ 3.5 bits per character), is refused. URLs, absolute or relative
 *     paths and numbers pass.
 *
 * What passes on purpose (low false positives): `sha256:` hashes and
 * certificate fingerprints (no prefix, not in secret-named fields), ids such
 * as `2026-11`, URLs without a password, CEL expressions, header names such
 * as `x-api-key`. A refusal names the path and the reason, never the value
 * (not even a fingerprint: a hash of a short password can be guessed).
 */

export interface LiteralSecret {
  /** Dotted path, as in schema errors (`upstreams.crm.env.API_TOKEN.value`). */
  path: string;
  /** Which rule matched; never the value. */
  why: string;
}

export const SECRET_REF = /^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/;

export interface Format {
  why: string;
  re: RegExp;
  check?: (match: string) => boolean;
}

/** A run of 16+ alphanumerics with letters and digits: what random keys have and names do not. */
const hasRandomRun = (s: string) =>
  s.split(/[^A-Za-z0-9]/).some((r) => r.length >= 16 && /\d/.test(r) && /[A-Za-z]/.test(r));

/** Also the repo scan's known formats (review BND-10, src/review/static/repo-scan.ts). */
export const KNOWN_FORMATS: Format[] = [
  { why: 'a PEM private key', re: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/ },
  { why: 'a JSON Web Token', re: /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/ },
  {
    why: 'an Authorization header credential',
    re: /\b(?:Bearer|Basic|Token)\s+[A-Za-z0-9._~+/-]{16,}=*/i,
    check: (m) => hasRandomRun(m.replace(/^\S+\s+/, '')),
  },
  { why: 'a URL with an embedded password', re: /\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:[^\s/@]+@/i },
  { why: 'a behalf API key (bhk_…)', re: /\bbhk_[A-Za-z0-9_-]{32,}/ },
  {
    why: 'an API key of the sk- form (OpenAI, Anthropic…)',
    re: /(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}/,
    check: hasRandomRun,
  },
  { why: 'a Stripe key', re: /\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}/ },
  { why: 'a GitHub token', re: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})/ },
  { why: 'a GitLab token', re: /\bglpat-[A-Za-z0-9_-]{20,}/ },
  { why: 'a Slack token', re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/ },
  { why: 'a Slack webhook URL', re: /hooks\.slack\.com\/services\/T[A-Za-z0-9]+\/B[A-Za-z0-9]+\/[A-Za-z0-9]+/ },
  { why: 'an AWS access key id', re: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { why: 'a Google API key', re: /\bAIza[0-9A-Za-z_-]{35}/ },
  { why: 'an npm token', re: /\bnpm_[A-Za-z0-9]{36}\b/ },
];

/** Names (lower-cased, without - _ . and spaces) of things that hold secrets… */
const SECRET_NAME =
  /passw(?:or)?d|passphrase|secret|token|credential|authorization|bearer|cookie|(?:^|api|access|private|signing|client|master|encryption|license|auth|hmac|service|account|admin|session)keys?$/;
/** …unless the name is about a secret rather than one: where it is, what it is called, how long it lasts. */
const METADATA_NAME =
  /(?:header|headers|id|ids|url|uri|urls|path|paths|file|files|dir|name|names|type|types|endpoint|seconds|ms|days|ttl|lifetime|hint|format|source|ref|length|size|count|claim|claims|audience|issuer|scope|scopes|algorithm|algorithms|kid|env|version|mode|method|methods)$/;

export function nameSuggestsSecret(name: string): boolean {
  const n = name
    .toLowerCase()
    .replace(/^-+/, '')
    .replace(/[-_.\s]/g, '');
  return SECRET_NAME.test(n) && !METADATA_NAME.test(n);
}

/** Is this literal, found in a secret-named field, a secret rather than a setting? */
export function literalLooksSecret(value: string): boolean {
  const v = value.trim();
  if (v.length < 12 || /\s/.test(v)) return false;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v) || /^(?:\/|\.\.?\/|~\/)/.test(v) || /^[\d.,_:-]+$/.test(v)) return false;
  if (/[A-Za-z]/.test(v) && /\d/.test(v)) return true;
  return v.length >= 24 && bitsPerChar(v) >= 3.5;
}

export function knownFormat(value: string): string | undefined {
  for (const f of KNOWN_FORMATS) {
    const m = f.re.exec(value);
    if (m && (!f.check || f.check(m[0]))) return f.why;
  }
  return undefined;
}

/** `--token=X`, `-p=X`, `API_TOKEN=X`: the name on the left, the value on the right. */
const ASSIGNMENT = /^-{0,2}([A-Za-z_][A-Za-z0-9_.-]*)=([\s\S]*)$/;

export function findLiteralSecrets(raw: unknown): LiteralSecret[] {
  const out: LiteralSecret[] = [];
  const pathOf = (p: (string | number)[]) => (p.length ? p.join('.') : '(root)');

  const checkString = (value: string, path: (string | number)[], name: string | undefined) => {
    if (SECRET_REF.test(value)) return;
    const format = knownFormat(value);
    if (format) {
      out.push({ path: pathOf(path), why: format });
      return;
    }
    const assigned = ASSIGNMENT.exec(value);
    const [n, v] = assigned ? [assigned[1]!, assigned[2]!] : [name, value];
    if (n !== undefined && nameSuggestsSecret(n) && !SECRET_REF.test(v) && literalLooksSecret(v)) {
      out.push({
        path: pathOf(path),
        why: `a literal value for ${assigned || n.startsWith('-') ? 'an argument' : 'a field'} named like a secret`,
      });
    }
  };

  const visit = (value: unknown, path: (string | number)[], name: string | undefined) => {
    if (typeof value === 'string') return checkString(value, path, name);
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        // In args, a flag names the value after it: [--password, X].
        const prev = value[i - 1];
        const flag = typeof prev === 'string' && /^--?[A-Za-z][A-Za-z0-9_.-]*$/.test(prev) ? prev : undefined;
        visit(item, [...path, i], flag ?? name);
      });
      return;
    }
    if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        const why = knownFormat(k);
        // The key itself is the secret: name the map, not the key.
        if (why) {
          out.push({ path: pathOf(path), why: `a key of this map is ${why}` });
          continue;
        }
        // `{ value: X }` literals take the name of the variable they set.
        visit(v, [...path, k], k === 'value' ? name : k);
      }
    }
  };
  visit(raw, [], undefined);
  return out;
}

export function literalSecretMessage(s: LiteralSecret): string {
  return `${s.path}: looks like a literal secret (${s.why}); give it by reference instead: env:NAME or file:PATH`;
}
