import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { principalFields } from '../audit/audit-log.js';
import type { AuditEvent } from '../audit/event.js';
import type { LoadedConfig } from '../config/load.js';
import { BehalfError, describeError, toBehalfError, toJsonRpcError } from '../errors.js';
import { buildGateway, type GatewayOptions } from './build.js';
import { sendError } from './challenge.js';
import type { RequestContext } from './context.js';
import { sendJson } from './http-io.js';
import { isRequest } from '../jsonrpc.js';
import { protectedResourceMetadata } from './metadata.js';
import { ALLOWED_METHODS, STACKS } from './pipeline.js';
import { sendReadiness } from './readiness.js';
import { addressOf } from './limits/connections.js';
import { JWKS_PATH, resolveRoute } from './route.js';
import type { GatewayRuntime } from './runtime.js';
import { endSession } from './session-binding.js';
import { startRevocations } from '../revocation/wiring.js';
import { answerUnread, closeAfterUnreadBody } from './unread-body.js';
import { beginRequest, requestRefused, runHttpStep } from '../ops/request-ops.js';
import { drain, type DrainResult } from '../ops/shutdown.js';

export type { GatewayOptions } from './build.js';

export interface Gateway {
  baseUrl: string;
  port: number;
  runtime: GatewayRuntime;
  /** The resource URL of an upstream (its Streamable HTTP endpoint). */
  urlFor(upstream: string): string;
  close(): Promise<void>;
  /** SIGTERM: stop accepting, answer the calls in flight within `graceMs`, then close (src/ops/shutdown.ts). */
  shutdown(graceMs: number): Promise<DrainResult>;
}

const AUTH_FAILURES = new Set([
  'client_auth_required',
  'client_auth_invalid',
  'user_token_required',
  'user_token_invalid',
  'delegation_mismatch',
  'insufficient_scope',
]);

/** Refusals of a new session or stream for its owner's quota or the gateway's cap: audited as `session` records. */
const SESSION_REFUSALS = new Set([
  'session_quota_exceeded',
  'stream_quota_exceeded',
  'too_many_sessions',
  'too_many_processes',
]);

/**
 * Every authentication failure is on the record. One that proved no one is
 * written through the recorder, which bounds how many writes a flood of them
 * costs (src/gateway/limits/auth-failures.ts); one of a known principal
 * (missing scopes) is written as it happens.
 */
function recordAuthFailure(ctx: RequestContext, e: BehalfError, step: string): void {
  const event: AuditEvent = {
    ts: Date.now(),
    kind: 'auth-failure',
    route: ctx.route.name,
    transport: ctx.transport,
    reason: `${e.code}: ${e.message}`,
    refusedBy: step,
    ...principalFields(ctx.principal),
  };
  if (ctx.principal) ctx.rt.audit.tryAppend(event);
  else ctx.rt.limits.authFailures.record(event, addressOf(ctx.req.socket) ?? 'unknown');
}

/** The id of the one request a parsed body holds: an error about it answers it (a batch's errors answer no single one). */
function requestIdOf(ctx: RequestContext): string | number | undefined {
  const only = ctx.messages?.length === 1 && !ctx.isBatch ? ctx.messages[0] : undefined;
  return only && isRequest(only) ? only.id : undefined;
}

async function handle(rt: GatewayRuntime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://gateway.invalid');
  if (url.pathname === '/healthz' && req.method === 'GET') return sendJson(res, 200, { status: 'ok' });
  if (url.pathname === '/readyz' && req.method === 'GET') return sendReadiness(res, rt);
  // Draining for a shutdown: a busy answer with Retry-After sends the client to another instance (or back, after the restart).
  if (rt.ops.draining) {
    res.setHeader('connection', 'close');
    return answerUnread(req, res, () =>
      sendError(res, new BehalfError('over_capacity', undefined, { retryAfter: '1' })),
    );
  }
  if (rt.limits.connections.overCapacity(req)) {
    rt.limits.connections.noteRefused();
    res.setHeader('connection', 'close');
    return sendError(res, new BehalfError('over_capacity', undefined, { retryAfter: '1' }));
  }
  const notAllowed = (allow: string) =>
    answerUnread(req, res, () => sendError(res, new BehalfError('method_not_allowed', undefined, { allow })));
  if (url.pathname === JWKS_PATH && rt.signer) {
    if (req.method !== 'GET') return notAllowed('GET');
    // Short cache: a revoked signing key leaves verifiers' caches within a minute; new keys are published before they sign.
    return sendJson(res, 200, rt.signer.jwks(), { 'cache-control': 'max-age=60' });
  }
  const resolved = resolveRoute(url.pathname, rt.routes);
  if (!resolved) return answerUnread(req, res, () => sendError(res, new BehalfError('unknown_route')));
  const { route, endpoint } = resolved;
  if (endpoint === 'metadata') {
    if (req.method !== 'GET') return notAllowed('GET');
    return sendJson(res, 200, protectedResourceMetadata(rt, route), { 'cache-control': 'max-age=300' });
  }
  const stack = STACKS[`${endpoint} ${req.method}`];
  if (!stack) return notAllowed(ALLOWED_METHODS[endpoint]!);
  const ctx: RequestContext = {
    rt,
    req,
    res,
    url,
    route,
    endpoint,
    started: performance.now(),
    transport: endpoint === 'mcp' ? 'streamable-http' : 'sse',
  };
  beginRequest(ctx);
  let step = '';
  try {
    for (const s of stack) {
      step = s.name;
      await runHttpStep(ctx, s);
    }
  } catch (err) {
    const e = toBehalfError(err);
    if (e.code === 'internal') rt.log(`internal error in ${step} on ${endpoint} ${req.method}: ${describeError(err)}`);
    else rt.debug(`refused ${endpoint} ${req.method} on ${route.name} by ${step}: ${e.code}`);
    const authFailure = AUTH_FAILURES.has(e.code) && !e.details.audited;
    requestRefused(ctx, e, step, authFailure);
    if (authFailure) recordAuthFailure(ctx, e, step);
    else if (SESSION_REFUSALS.has(e.code)) {
      rt.audit.tryAppend({
        ts: Date.now(),
        kind: 'session',
        route: route.name,
        transport: ctx.transport,
        outcome: `refused: ${e.code}`,
        reason: e.message,
        refusedBy: step,
        ...principalFields(ctx.principal),
      });
    }
    const answer = () =>
      sendError(res, e, { metadataUrl: route.metadataUrl, scopes: rt.config.userAuth.scopes, id: requestIdOf(ctx) });
    // Refused before its body was read (headers, authentication): a small rest is drained so the answer arrives.
    if (!ctx.bodyStarted) return answerUnread(req, res, answer);
    // Refused while reading it (too large, too slow, over the budget): not read further, closed after the answer.
    if (!req.complete) res.setHeader('connection', 'close');
    answer();
  }
}

/** The gateway's base URL: the configured public one, else where it listens. */
function baseUrlOf(loaded: LoadedConfig, port: number): string {
  const { server } = loaded.config;
  const hostForUrl = server.host.includes(':') ? `[${server.host}]` : server.host;
  return (server.publicUrl ?? `${server.tls ? 'https' : 'http'}://${hostForUrl}:${port}`).replace(/\/$/, '');
}

/** Builds everything, then listens; the request handler is attached before the first connection can be served. */
export async function startGateway(loaded: LoadedConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const built = await buildGateway(loaded, options);
  const { server } = built;
  const live: { runtime?: GatewayRuntime } = {};
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const runtime = live.runtime;
    // Unreachable by construction (see below); answered rather than crashed on if that ever changes.
    if (!runtime) return sendJson(res, 503, toJsonRpcError(new BehalfError('internal'), null));
    closeAfterUnreadBody(req, res);
    handle(runtime, req, res).catch((err: unknown) => {
      runtime.log(
        `unhandled error answering ${req.method} ${new URL(req.url ?? '/', 'http://gateway.invalid').pathname}: ${describeError(err)}`,
      );
      if (!res.headersSent) sendJson(res, 500, toJsonRpcError(new BehalfError('internal'), null));
      else res.end();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(loaded.config.server.port, loaded.config.server.host, () => resolve());
    });
  } catch (err) {
    await built.discard();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  // Synchronous from here to live.runtime: no connection is served before the runtime exists.
  const runtime = built.runtimeAt(baseUrlOf(loaded, port), port);
  live.runtime = runtime;
  // Revocations are enforced before its first await; the admin endpoint may fail to listen, and then nothing starts.
  try {
    await startRevocations(runtime);
  } catch (err) {
    runtime.stop();
    server.close();
    await runtime.audit.close();
    await runtime.ops.close();
    throw err;
  }
  const gateway: Gateway = {
    baseUrl: runtime.baseUrl,
    port,
    runtime,
    urlFor: (name) => {
      const r = runtime.routes.get(name);
      if (!r) throw new Error(`no upstream named ${name}`);
      return r.resource;
    },
    async close() {
      // Calls parked for client input first, while their upstreams can still be told.
      runtime.inputBridge.close();
      // Stateless connections are in the session store too.
      for (const s of runtime.sessions.all()) endSession(runtime, s, 'gateway stopping');
      runtime.sessions.close();
      runtime.stop();
      server.closeAllConnections?.();
      await new Promise<void>((r) => server.close(() => r()));
      await runtime.upstreamContext.pools.close();
      runtime.limits.flush();
      runtime.audit.tryAppend({ ts: Date.now(), kind: 'lifecycle', outcome: 'gateway stopped' });
      await runtime.audit.close();
      await runtime.ops.close();
    },
    async shutdown(graceMs) {
      const drained = await drain(runtime.ops, graceMs);
      await gateway.close();
      return drained;
    },
  };
  return gateway;
}
