import { IntervalTally } from '../../shared/interval-tally.js';

export const LOG_INTERVAL_MS = 10_000;

export interface IntervalLogger {
  /** Logs `line` now if it is the first of `key` in this interval; else counts it for the interval's summary. */
  note(key: string, line: string): void;
  flush(): void;
}

/** A log line per kind of event at most once per interval, with a count of the repeats at its end. */
export function intervalLogger(log: (line: string) => void, intervalMs = LOG_INTERVAL_MS): IntervalLogger {
  const seconds = Math.round(intervalMs / 1000);
  const tally = new IntervalTally<string>({
    intervalMs,
    perKey: 1,
    maxKeys: 100,
    single: (line) => log(`${line} (repeats are counted and logged every ${seconds} s)`),
    repeated: (line, count, overflow) =>
      log(
        overflow
          ? `${count} more refusals at resource limits in the last ${seconds} s`
          : `${line}: ${count} more in the last ${seconds} s`,
      ),
  });
  return { note: (key, line) => tally.note(key, line), flush: () => tally.flush() };
}
