/**
 * Splits `--command "…"` into words the way a POSIX shell would for the
 * common cases (quotes, backslashes), without running or expanding
 * anything: the review reads the command, it never starts it.
 */
export function splitCommand(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) word += line[++i];
      else word += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** `NAME=value` words before the program (`FOO=1 node server.js`, or after `env`): variables set for the child only. */
export function leadingAssignments(words: string[]): { name: string; value: string; index: number }[] {
  const out: { name: string; value: string; index: number }[] = [];
  for (let i = words[0] === 'env' ? 1 : 0; i < words.length; i++) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=([\s\S]*)$/.exec(words[i]!);
    if (!m) break;
    out.push({ name: m[1]!, value: m[2]!, index: i });
  }
  return out;
}
