import { randomUUID } from 'node:crypto';
import type { BehalfError } from '../errors.js';
import type { RequestContext, Step } from '../gateway/context.js';

/** HTTP requests that hold a stream open for as long as the client listens: not "in flight" for a drain. */
function isStream(ctx: RequestContext): boolean {
  return ctx.req.method === 'GET';
}

/**
 * A request's start as operations see it: its id (in every log line about
 * it), its server span when tracing is on, and — for a call, not a stream —
 * a place among the requests a drain waits for. Its end (the response
 * finished or the connection gone) counts it in the metrics and ends its span.
 */
export function beginRequest(ctx: RequestContext): void {
  const { ops } = ctx.rt;
  ctx.requestId = randomUUID();
  if (ops.tracing)
    ctx.span = ops.tracing.request(ctx.req.headers, `${ctx.req.method} ${ctx.url.pathname}`, {
      'http.request.method': ctx.req.method,
      'url.path': ctx.url.pathname,
      'url.scheme': ctx.rt.baseUrl.startsWith('https') ? 'https' : 'http',
      'network.protocol.name': 'http',
      'behalf.route': ctx.route.name,
      'behalf.request_id': ctx.requestId,
    });
  const counted = !isStream(ctx);
  if (counted) ops.inFlight++;
  ctx.res.once('close', () => {
    if (counted) ops.requestEnded();
    const status = ctx.res.statusCode;
    ops.metrics?.httpRequest(ctx.route.name, ctx.endpoint, ctx.req.method ?? '', ctx.transport, status);
    if (ctx.span) {
      ctx.span.set({ 'http.response.status_code': status });
      if (status >= 500) ctx.span.fail(String(status));
      ctx.span.end();
    }
  });
}

/** Runs one HTTP step, in a span of its own when tracing is on. */
export async function runHttpStep(ctx: RequestContext, step: Step): Promise<void> {
  if (!ctx.span) return step.run(ctx);
  const span = ctx.rt.ops.tracing!.child(ctx.span, step.name);
  try {
    await step.run(ctx);
  } catch (err) {
    span.fail((err as { code?: string }).code ?? 'internal');
    throw err;
  } finally {
    span.end();
  }
}

/** Authentication failures by their code (the reason the audit record gives; the caller sees only its fixed message). */
export function requestRefused(ctx: RequestContext, e: BehalfError, step: string, authFailure: boolean): void {
  const { ops } = ctx.rt;
  if (authFailure) ops.metrics?.authFailure(e.code);
  ctx.span?.fail(e.code);
  if (!ops.logger.isLevelEnabled('info')) return;
  ops.refusals.note(`${e.code} ${ctx.route.name} ${step}`, {
    fields: {
      event: authFailure ? 'auth_failure' : 'request_refused',
      requestId: ctx.requestId,
      route: ctx.route.name,
      endpoint: ctx.endpoint,
      method: ctx.req.method,
      step,
      code: e.code,
      session: ctx.session?.fingerprint,
      ...traceFields(ctx),
    },
    msg: `refused ${ctx.req.method} ${ctx.endpoint} on ${ctx.route.name} by ${step}: ${e.code}`,
  });
}

export function traceFields(ctx: RequestContext): { traceId?: string; spanId?: string } {
  return ctx.span ? { traceId: ctx.span.traceId, spanId: ctx.span.spanId } : {};
}
