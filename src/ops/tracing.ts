import type { IncomingHttpHeaders } from 'node:http';
import type { OperationsConfig } from '../config/schema-operations.js';

export type SpanAttributes = Record<string, string | number | boolean | undefined>;

/** One span as the gateway uses it: ids for the log, attributes, a failure code, and the W3C headers naming it as a parent. */
export interface TraceSpan {
  readonly traceId: string;
  readonly spanId: string;
  set(attributes: SpanAttributes): void;
  /** Marks the span failed with a typed error code (never a message: messages may carry details). */
  fail(code: string): void;
  end(): void;
  /** `traceparent` (and `tracestate`) that make a downstream span this span's child. */
  headers(): Record<string, string>;
}

/** The gateway's tracer: absent unless `operations.tracing` is configured, and then loaded on first use. */
export interface Tracing {
  /** The request's server span, a child of an inbound `traceparent` when the request carries one. */
  request(headers: IncomingHttpHeaders, name: string, attributes: SpanAttributes): TraceSpan;
  /** `client`: the span of a call to an upstream (SpanKind.CLIENT); else an internal step. */
  child(parent: TraceSpan, name: string, attributes?: SpanAttributes, client?: boolean): TraceSpan;
  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  config: NonNullable<OperationsConfig['tracing']>;
  headers: Record<string, string>;
  instanceId?: string;
}

/**
 * The OpenTelemetry SDK and exporter are imported only here, only when
 * tracing is configured: a gateway without tracing neither loads them nor
 * pays for a span per call.
 */
export async function startTracing(o: TracingOptions): Promise<Tracing> {
  const { openTelemetryTracing } = await import('./tracing-otel.js');
  return openTelemetryTracing(o);
}
