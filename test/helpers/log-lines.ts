/**
 * The message of one line a gateway process wrote: its structured log is one
 * JSON object per line (src/ops/logger.ts), whose `msg` is the free-form text
 * tests look for; a line that is not JSON (the CLI's own start-up lines) is
 * kept as it is.
 */
export function messageOf(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const o = JSON.parse(line) as { msg?: unknown };
    return typeof o.msg === 'string' ? o.msg : line;
  } catch {
    // Not a log event after all: the line itself.
    return line;
  }
}
