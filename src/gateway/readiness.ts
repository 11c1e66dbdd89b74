import type { ServerResponse } from 'node:http';
import type { AuditHealth } from '../audit/event.js';
import { sendJson } from './http-io.js';
import type { GatewayRuntime } from './runtime.js';

const NO_STORE = { 'cache-control': 'no-store' };

/** What /readyz asks besides the audit store; built with the gateway (src/gateway/build.ts). */
export interface ReadinessProbes {
  /** Each issuer's signing keys held (fetched now, within the fetch bounds, when they are not). */
  idpKeys(): Promise<Record<string, boolean>>;
  /** state.redis: a PING answered within the command timeout. */
  redis?(): Promise<boolean>;
  /** The audit store is PostgreSQL: its writer's view of the server is the `postgres` part. */
  postgres: boolean;
}

interface Check {
  ready: boolean;
  reason?: string;
  [detail: string]: unknown;
}

async function checks(rt: GatewayRuntime, probes: ReadinessProbes): Promise<Record<string, Check>> {
  const audit: AuditHealth = rt.audit.health();
  const [keys, redisAnswers] = await Promise.all([probes.idpKeys(), probes.redis?.()]);
  const missing = Object.entries(keys).filter(([, ok]) => !ok);
  const out: Record<string, Check> = {
    shutdown: rt.ops.draining ? { ready: false, reason: 'shutting down' } : { ready: true },
    audit: audit.ready ? { ready: true } : { ready: false, reason: audit.reason },
  };
  if (probes.postgres)
    out.postgres = audit.ready ? { ready: true } : { ready: false, reason: 'audit store on PostgreSQL not writable' };
  if (probes.redis) {
    const live = redisAnswers === true && (!rt.fleet || rt.fleet.isLive);
    out.redis = live ? { ready: true } : { ready: false, reason: 'shared state unavailable' };
  }
  out.idpKeys = missing.length
    ? { ready: false, reason: 'identity provider keys not loaded', issuers: keys }
    : { ready: true, issuers: keys };
  return out;
}

/**
 * GET /readyz, unauthenticated like /healthz: 200 while calls can be
 * served; 503 while they would be refused — the audit store cannot take
 * records (locked, failing, moved, its writer stopped), Redis or PostgreSQL
 * do not answer when configured, an issuer's keys cannot be had, or the
 * gateway is draining for a shutdown. Every part is in `checks`; `reason` is
 * the first failing part's fixed phrase: paths and causes go to the
 * operator's log only.
 */
export async function sendReadiness(res: ServerResponse, rt: GatewayRuntime): Promise<void> {
  const probes = rt.ops.probes;
  const audit = rt.audit.health();
  const parts: Record<string, Check> = probes
    ? await checks(rt, probes)
    : { audit: audit.ready ? { ready: true } : { ready: false, reason: audit.reason } };
  const failing = Object.values(parts).find((c) => !c.ready);
  if (!failing) return sendJson(res, 200, { status: 'ready', checks: parts }, NO_STORE);
  sendJson(res, 503, { status: 'not ready', reason: failing.reason, checks: parts }, NO_STORE);
}
