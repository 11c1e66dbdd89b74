import { createServer, type Server } from 'node:http';
import type { DestinationStream } from 'pino';
import type { OperationsConfig } from '../config/schema-operations.js';
import { resolveSecret } from '../config/secrets.js';
import { describeError } from '../errors.js';
import { createLogger, type Logger } from './logger.js';
import type { GatewayMetrics, GaugeSources } from './metrics.js';
import { startTracing, type Tracing } from './tracing.js';
import { IntervalTally } from '../shared/interval-tally.js';
import type { ReadinessProbes } from '../gateway/readiness.js';

/**
 * What on-call engineers read, built once per gateway: the structured log,
 * and — only when configured — metrics on their own listener and traces.
 * `inFlight` and `draining` are the shutdown's view of the gateway
 * (src/ops/shutdown.ts).
 */
export interface Operations {
  logger: Logger;
  metrics?: GatewayMetrics;
  tracing?: Tracing;
  /** Where the metrics listener is bound (its port is 0 in tests). */
  metricsAddress?: { host: string; port: number };
  /** What /readyz asks besides the audit store; set once the gateway is built. */
  probes?: ReadinessProbes;
  /**
   * HTTP refusals (most of them of callers who proved no one) are logged at
   * a bounded rate: per kind, the first 20 of each 10 s one by one, then a
   * count, so a flood of anonymous requests is not a flood of log lines.
   */
  refusals: IntervalTally<{ fields: Record<string, unknown>; msg: string }>;
  /** Requests being answered that are not streams: a drain waits for these. */
  inFlight: number;
  /** Set by a SIGTERM: new requests are refused, /readyz says not ready. */
  draining: boolean;
  /** Resolves when `inFlight` next reaches zero. */
  idle(): Promise<void>;
  /** A request ended: wakes `idle` waiters when it was the last. */
  requestEnded(): void;
  close(): Promise<void>;
}

export interface OperationsOptions {
  config: OperationsConfig;
  instanceId?: string;
  baseDir: string;
  env?: NodeJS.ProcessEnv;
  upstreams: string[];
  gauges: GaugeSources;
  logDestination?: DestinationStream;
  /** An embedder gave its own `log`: the structured log is off unless it also gave a destination. */
  quiet?: boolean;
}

function splitListen(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(':');
  return { host: listen.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(listen.slice(at + 1)) };
}

async function metricsListener(metrics: GatewayMetrics, listen: string, path: string, logger: Logger) {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || new URL(req.url ?? '/', 'http://metrics.invalid').pathname !== path) {
      res.writeHead(404).end();
      return;
    }
    metrics.text().then(
      (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      (err: unknown) => {
        logger.error({ event: 'metrics_failed', err: describeError(err) }, 'metrics could not be collected');
        res.writeHead(500).end();
      },
    );
  });
  const { host, port } = splitListen(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();
  return { server, address: { host, port: typeof bound === 'object' && bound ? bound.port : port } };
}

export async function buildOperations(o: OperationsOptions): Promise<Operations> {
  const logs = o.quiet && !o.logDestination ? { ...o.config.logs, level: 'silent' as const } : o.config.logs;
  const logger = createLogger({ config: logs, instanceId: o.instanceId, destination: o.logDestination });
  // prom-client (and the OpenTelemetry API it loads for exemplars) only when metrics are configured.
  const metrics = o.config.metrics
    ? new (await import('./metrics.js')).GatewayMetrics(o.upstreams, o.gauges)
    : undefined;
  const listener =
    metrics && o.config.metrics
      ? await metricsListener(metrics, o.config.metrics.listen, o.config.metrics.path, logger)
      : undefined;
  let tracing: Tracing | undefined;
  try {
    const t = o.config.tracing;
    const headers = Object.fromEntries(
      Object.entries(t?.headers ?? {}).map(([h, ref]) => [h, resolveSecret(ref, o.baseDir, o.env)]),
    );
    tracing = t && (await startTracing({ config: t, headers, instanceId: o.instanceId }));
  } catch (err) {
    listener?.server.close();
    throw err;
  }
  let waiters: (() => void)[] = [];
  let closing: Promise<void> | undefined;
  const closeAll = async () => {
    refusals.flush();
    if (listener) await new Promise<void>((r) => listener.server.close(() => r()));
    await tracing?.shutdown().catch((err: unknown) => {
      logger.warn({ event: 'trace_export_failed', err: describeError(err) }, 'last traces not exported');
    });
    // Everything logged so far reaches stderr before the process may exit.
    await new Promise<void>((r) =>
      logger.flush((err) => {
        if (err) process.stderr.write(`log flush failed: ${describeError(err)}\n`);
        r();
      }),
    );
  };
  const refusals = new IntervalTally<{ fields: Record<string, unknown>; msg: string }>({
    intervalMs: 10_000,
    perKey: 20,
    total: 200,
    maxKeys: 100,
    single: (e) => logger.info(e.fields, e.msg),
    repeated: (e, count, overflow) =>
      logger.info(
        { event: 'refusals_counted', code: overflow ? undefined : e.fields.code, count },
        `${count} more refusals${overflow ? '' : ` like "${e.msg}"`} in the last 10 s, not logged one by one`,
      ),
  });
  const ops: Operations = {
    logger,
    refusals,
    metrics,
    tracing,
    metricsAddress: listener?.address,
    inFlight: 0,
    draining: false,
    idle() {
      if (ops.inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    requestEnded() {
      ops.inFlight--;
      if (ops.inFlight > 0 || !waiters.length) return;
      const wake = waiters;
      waiters = [];
      for (const w of wake) w();
    },
    close() {
      closing ??= closeAll();
      return closing;
    },
  };
  return ops;
}
