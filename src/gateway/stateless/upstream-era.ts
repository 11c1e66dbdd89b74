import { resolveSecret } from '../../config/secrets.js';
import { BehalfError, describeError, RPC } from '../../errors.js';
import type { JsonRpcResponse } from '../../jsonrpc.js';
import type { RequestContext } from '../context.js';
import { STATELESS_VERSION } from '../protocol.js';
import type { GatewayRuntime } from '../runtime.js';
import { takesMessageUsers } from '../user-upstreams.js';
import { postStateless, UnexpectedAnswer, type StatelessTarget } from './native-transport.js';

/**
 * How a route serves stateless requests: `native` forwards each one to an
 * upstream that speaks 2026-07-28 itself; `bridge` goes through a 2025-era
 * session the gateway initializes (src/gateway/handlers/stateless.ts).
 */
export type UpstreamEra = { kind: 'native'; target: StatelessTarget } | { kind: 'bridge' };

/** A route found to need the bridge is asked again after this long: an upstream may be upgraded under the gateway. */
const BRIDGE_RECHECK_MS = 10 * 60_000;

interface Known {
  era: UpstreamEra;
  at: number;
}

const eras = new WeakMap<GatewayRuntime, Map<string, Known | Promise<UpstreamEra>>>();

function erasOf(rt: GatewayRuntime): Map<string, Known | Promise<UpstreamEra>> {
  let m = eras.get(rt);
  if (!m) eras.set(rt, (m = new Map()));
  return m;
}

/**
 * The route's era, probed on first stateless use with `server/discover` in
 * the 2026-07-28 form and kept per route. Concurrent first requests share one
 * probe; an upstream that cannot be reached is not remembered (the next
 * request asks again).
 */
export async function upstreamEra(ctx: RequestContext): Promise<UpstreamEra> {
  const known = erasOf(ctx.rt);
  const entry = known.get(ctx.route.name);
  if (entry instanceof Promise) return entry;
  if (entry && (entry.era.kind === 'native' || Date.now() - entry.at < BRIDGE_RECHECK_MS)) return entry.era;
  const probing = probe(ctx).then(
    (era) => {
      known.set(ctx.route.name, { era, at: Date.now() });
      return era;
    },
    (err: unknown) => {
      known.delete(ctx.route.name);
      throw err;
    },
  );
  known.set(ctx.route.name, probing);
  return probing;
}

/** After an upstream failure the route is probed again: it may have been replaced by one of the other era. */
export function forgetUpstreamEra(rt: GatewayRuntime, route: string): void {
  const entry = erasOf(rt).get(route);
  if (entry && !(entry instanceof Promise)) erasOf(rt).delete(route);
}

/** An upstream that failed a call may have been replaced: the route's era is probed again on its next stateless request. */
export function noteUpstreamFailure(ctx: RequestContext, response: JsonRpcResponse | undefined): void {
  if (response && 'error' in response && response.error.code === RPC.UpstreamError)
    forgetUpstreamEra(ctx.rt, ctx.route.name);
}

function targetOf(ctx: RequestContext): StatelessTarget | undefined {
  const cfg = ctx.route.upstream;
  if (cfg.transport !== 'streamable-http') return undefined;
  const { baseDir, env, pools } = ctx.rt.upstreamContext;
  const headers: Record<string, string> = {};
  for (const [h, ref] of Object.entries(cfg.headers)) headers[h] = resolveSecret(ref, baseDir, env);
  return { url: new URL(cfg.url), headers, pools };
}

async function probe(ctx: RequestContext): Promise<UpstreamEra> {
  const { rt, route } = ctx;
  const target = targetOf(ctx);
  // Stdio and legacy SSE upstreams have no stateless form; a signed-context route's users each need their own connection.
  if (!target || takesMessageUsers(route)) return { kind: 'bridge' };
  const strategy = rt.delegation.get(route.name);
  const connection = strategy && (() => strategy.credentialFor({ principal: ctx.principal!, upstream: route.name }));
  const request = { jsonrpc: '2.0' as const, id: 'behalf-discover', method: 'server/discover', params: {} };
  try {
    for await (const m of postStateless(target, request, {
      connection,
      signal: AbortSignal.timeout(route.upstream.requestTimeoutMs),
    })) {
      if ('method' in m) continue;
      const versions = 'result' in m ? m.result.supportedVersions : undefined;
      const native = Array.isArray(versions) && versions.includes(STATELESS_VERSION);
      rt.debug(`upstream ${route.name} speaks ${native ? STATELESS_VERSION : 'a session-era revision'}`);
      return native ? { kind: 'native', target } : { kind: 'bridge' };
    }
    return { kind: 'bridge' };
  } catch (err) {
    // An answer that is no modern JSON-RPC error (a 2025-era server's 400 or 404) means the session era.
    if (err instanceof UnexpectedAnswer) return { kind: 'bridge' };
    if (err instanceof BehalfError) throw err;
    rt.log(`stateless discovery of ${route.name} failed: ${describeError(err)}`);
    throw new BehalfError('upstream_unavailable', undefined, {}, { cause: err });
  }
}
