import { pino, type DestinationStream, type Logger } from 'pino';
import type { OperationsConfig } from '../config/schema-operations.js';

export type { Logger } from 'pino';

/** Fields a reader of the log can rely on; values are ids and codes, never a token, a key or an argument value. */
export interface LogEventFields {
  event: string;
  requestId?: string;
  /** The session's fingerprint (as in audit records): a session id is a bearer handle and never logged. */
  session?: string;
  traceId?: string;
  spanId?: string;
  [field: string]: unknown;
}

const LEVEL_TAG: Record<string, string> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO ',
  warn: 'WARN ',
  error: 'ERROR',
  fatal: 'FATAL',
};
const LOUD = new Set(['warn', 'error', 'fatal']);

/**
 * One event per line for a person at a terminal: time, level, message, then
 * the fields as key=value. The JSON line is the source: a terminal sees the
 * same fields a log pipeline does, only laid out.
 */
function prettyTo(out: NodeJS.WritableStream, colour: boolean): DestinationStream {
  return {
    write(line: string) {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        // Not ours to lay out (pino only writes JSON): shown as it came.
        out.write(line);
        return;
      }
      const { time, level, msg, pid: _pid, instanceId: _instance, ...rest } = o;
      const tag = LEVEL_TAG[String(level)] ?? String(level);
      const shown = colour && LOUD.has(String(level)) ? `\u001b[33m${tag}\u001b[0m` : tag;
      const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
      out.write(
        `${String(time).slice(11, 23)} ${shown} ${String(msg ?? '')}${fields.length ? `  ${fields.join(' ')}` : ''}\n`,
      );
    },
  };
}

export interface CreateLoggerOptions {
  config: OperationsConfig['logs'];
  instanceId?: string;
  /** Where JSON lines go (tests, embedders); default stderr. */
  destination?: DestinationStream;
}

/**
 * The gateway's structured log (pino): one JSON object per line with `level`,
 * ISO `time`, `instanceId` and `msg`, plus the event's fields. Written to
 * stderr synchronously, as the gateway's lines always were: a line is out
 * before the next thing happens (a crash loses nothing, a reader of the log
 * sees a refusal's cause when the refusal arrives). Allowed calls log at
 * `debug`, so at the default level a call writes a line only when refused.
 */
export function createLogger(o: CreateLoggerOptions): Logger {
  const pretty = o.config.format === 'pretty' || (o.config.format === 'auto' && process.stderr.isTTY === true);
  const destination =
    o.destination ??
    (pretty ? prettyTo(process.stderr, process.stderr.isTTY === true) : pino.destination({ dest: 2, sync: true }));
  return pino(
    {
      level: o.config.level,
      base: { instanceId: o.instanceId, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** Free-form lines that report a failure; the gateway's older `log(line)` calls carry no level of their own. */
const TROUBLE = /\b(fail|failed|failing|cannot|refused|rejected|unavailable|not delivered|error|WARNING|lost)\b/i;

/** The `log(line)` every module is given: each line becomes one event, at `warn` when it reports trouble. */
export function lineLogger(logger: Logger): (line: string) => void {
  return (line) => {
    if (TROUBLE.test(line)) logger.warn(line);
    else logger.info(line);
  };
}
