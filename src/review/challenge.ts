/**
 * WWW-Authenticate as RFC 9110 §11.6.1 writes it: one or more challenges,
 * each a scheme followed by a token68 or comma-separated auth-params whose
 * values are tokens or quoted strings. A header that does not parse yields
 * what could be read, so a malformed challenge shows as missing parameters
 * rather than as an exception.
 */
export interface Challenge {
  /** Lower-cased, e.g. "bearer". */
  scheme: string;
  /** Parameter names lower-cased, values unquoted. */
  params: Record<string, string>;
  token68?: string;
}

const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

export function parseChallenges(header: string | null | undefined): Challenge[] {
  if (!header) return [];
  const s = header;
  let i = 0;
  const out: Challenge[] = [];
  const ws = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  const quoted = () => {
    let v = '';
    i++; // opening quote
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      v += s[i];
      i++;
    }
    i++; // closing quote
    return v;
  };
  /** At a list element: is it `name=` (a parameter of the current challenge) rather than a new scheme? */
  const atParam = () => {
    const save = i;
    const name = token();
    ws();
    const isParam = name !== '' && s[i] === '=' && s[i + 1] !== '=';
    i = save;
    return isParam;
  };
  while (i < s.length) {
    ws();
    while (s[i] === ',') {
      i++;
      ws();
    }
    const scheme = token();
    if (!scheme) break;
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    ws();
    if (i >= s.length) break;
    if (s[i] !== ',' && !atParam()) {
      // token68: base64-ish characters and trailing '='
      const start = i;
      while (i < s.length && /[A-Za-z0-9\-._~+/]/.test(s[i]!)) i++;
      while (s[i] === '=') i++;
      ch.token68 = s.slice(start, i);
      ws();
      continue;
    }
    for (;;) {
      ws();
      while (s[i] === ',') {
        i++;
        ws();
      }
      if (i >= s.length || !atParam()) break;
      const name = token().toLowerCase();
      ws();
      i++; // '='
      ws();
      ch.params[name] = s[i] === '"' ? quoted() : token();
      ws();
      if (s[i] !== ',' && i < s.length) break;
    }
    if (i < s.length && s[i] !== ',' && !TCHAR.test(s[i]!)) break;
  }
  return out;
}

/** The Bearer challenge of a response, if any. */
export function bearerChallenge(header: string | null | undefined): Challenge | undefined {
  return parseChallenges(header).find((c) => c.scheme === 'bearer');
}
