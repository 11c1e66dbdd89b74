import { z } from 'zod';
import { SecretRef } from './schema-common.js';

/** host:port, IPv6 in brackets: where an operations listener binds. */
const ListenAddress = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'host:port (IPv6 in brackets)')
  .describe('host:port of its own listener, never the MCP port');

export const MetricsSchema = z
  .object({
    listen: ListenAddress.default('127.0.0.1:9464'),
    path: z.string().startsWith('/').default('/metrics'),
  })
  .strict();

export const TracingSchema = z
  .object({
    endpoint: z
      .url()
      .describe('OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces (JSON encoding is sent)'),
    headers: z
      .record(z.string(), SecretRef)
      .default({})
      .describe('Headers of each export (a collector token), by reference only'),
    sampleRatio: z
      .number()
      .min(0)
      .max(1)
      .default(1)
      .describe('Share of new traces recorded; an inbound traceparent decides for its own trace'),
    serviceName: z.string().min(1).max(100).default('behalf'),
    stdioMeta: z
      .boolean()
      .default(true)
      .describe(
        'Put traceparent/tracestate into params._meta of requests to stdio upstreams (MCP semantic conventions); only requests that already carry a params object',
      ),
  })
  .strict();

export const LogsSchema = z
  .object({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    format: z
      .enum(['auto', 'json', 'pretty'])
      .default('auto')
      .describe('auto: pretty when stderr is a terminal, else one JSON object per line'),
  })
  .strict();

export const ShutdownSchema = z
  .object({
    graceSeconds: z
      .number()
      .min(0)
      .max(3600)
      .default(20)
      .describe('SIGTERM: how long calls in flight may finish before the gateway exits anyway'),
  })
  .strict();

/** What on-call engineers read: metrics, traces, logs, and how the gateway stops (README, Operating behalf; docs/architecture.md §12). */
export const OperationsSchema = z
  .object({
    metrics: MetricsSchema.optional().describe('Prometheus metrics on their own listener; absent: no metrics'),
    tracing: TracingSchema.optional().describe('OpenTelemetry traces over OTLP/HTTP; absent: no tracing code loaded'),
    logs: LogsSchema.default({ level: 'info', format: 'auto' }),
    shutdown: ShutdownSchema.default({ graceSeconds: 20 }),
  })
  .strict();

export type OperationsConfig = z.infer<typeof OperationsSchema>;
