import type { IncomingHttpHeaders } from 'node:http';
import {
  context as otelContext,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { SpanAttributes, TraceSpan, Tracing, TracingOptions } from './tracing.js';

const propagator = new W3CTraceContextPropagator();

function attributes(a: SpanAttributes | undefined): Attributes | undefined {
  if (!a) return undefined;
  const out: Attributes = {};
  for (const [k, v] of Object.entries(a)) if (v !== undefined) out[k] = v;
  return out;
}

class OtelSpan implements TraceSpan {
  constructor(readonly span: Span) {}

  get traceId(): string {
    return this.span.spanContext().traceId;
  }

  get spanId(): string {
    return this.span.spanContext().spanId;
  }

  set(a: SpanAttributes): void {
    const attrs = attributes(a);
    if (attrs) this.span.setAttributes(attrs);
  }

  fail(code: string): void {
    this.span.setAttribute('error.type', code);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  }

  end(): void {
    this.span.end();
  }

  headers(): Record<string, string> {
    const carrier: Record<string, string> = {};
    propagator.inject(trace.setSpan(ROOT_CONTEXT, this.span), carrier, defaultTextMapSetter);
    return carrier;
  }
}

/**
 * Spans are parented explicitly (the parent is passed, not read from an async
 * context): no context manager, no async hooks on the hot path. Sampling
 * follows an inbound parent's decision, else `sampleRatio` of new traces;
 * spans are exported in batches over OTLP/HTTP (JSON).
 */
export function openTelemetryTracing(o: TracingOptions): Tracing {
  const exporter = new OTLPTraceExporter({ url: o.config.endpoint, headers: o.headers });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': o.config.serviceName,
      ...(o.instanceId ? { 'service.instance.id': o.instanceId } : {}),
    }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(o.config.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 })],
  });
  const tracer: Tracer = provider.getTracer('behalf');
  return {
    request(headers: IncomingHttpHeaders, name: string, a: SpanAttributes) {
      const parent = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
      return new OtelSpan(tracer.startSpan(name, { kind: SpanKind.SERVER, attributes: attributes(a) }, parent));
    },
    child(parent: TraceSpan, name: string, a?: SpanAttributes, client?: boolean) {
      const parentSpan = (parent as OtelSpan).span;
      // A trace that is not sampled records nothing below its root: the parent's context is all that propagates.
      if (!parentSpan.isRecording()) return parent;
      const ctx = trace.setSpan(otelContext.active(), parentSpan);
      const kind = client ? SpanKind.CLIENT : SpanKind.INTERNAL;
      return new OtelSpan(tracer.startSpan(name, { kind, attributes: attributes(a) }, ctx));
    },
    async shutdown() {
      await provider.shutdown();
    },
  };
}
