import type { AuditLog } from '../audit/audit-log.js';
import type { GatewayConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import type { JwtVerifier } from '../identity/jwt-verifier.js';
import type { GatewayRuntime } from '../gateway/runtime.js';
import type { SharedState } from '../state/shared-state.js';
import { startAdminServer } from './admin-server.js';
import { endKeyStreams, enforceRevocations } from './enforce.js';
import { Introspector } from './introspection.js';
import { RevocationService } from './service.js';
import { SetReceiver } from './shared-signals.js';

/** What the gateway holds of revocation (docs/revocation.md). */
export interface RevocationWiring {
  service: RevocationService;
  introspection?: Introspector;
  /** The admin client: its keys open the admin endpoint and nothing else. */
  adminClient?: string;
  /** The admin endpoint's URL once listening (revocation.admin). */
  adminUrl?: string;
  /** API keys revoked in the key store (here or in the fleet): the streams they hold open end. Set at start. */
  keysRevoked?: (keyIds: string[]) => void;
  close(): Promise<void>;
}

/**
 * Builds the revocation service and its sources that need no listener:
 * introspection, and keys withdrawn from an issuer's JWKS (the verifier is
 * told to watch them). The admin endpoint and the enforcement on open
 * sessions start with the runtime (`startRevocations`).
 */
export function buildRevocations(
  verifier: JwtVerifier,
  shared: SharedState,
  o: { config: GatewayConfig; baseDir: string; env?: NodeJS.ProcessEnv; audit: AuditLog; log: (line: string) => void },
): RevocationWiring {
  const cfg = o.config.revocation;
  const service = new RevocationService({
    ttlMs: cfg.ttlSeconds * 1000,
    audit: o.audit,
    log: o.log,
    instanceId: shared.instanceId,
    redis: shared.redis,
  });
  const revoke = service.revoke.bind(service);
  const introspection = new Introspector(o.config.userAuth.issuers, { ...o, revoke });
  verifier.watchKeys((issuer, kid) => {
    void revoke({
      kind: 'signing-key',
      value: kid,
      issuer,
      reason: 'key no longer published in the issuer key set',
      actor: `jwks ${issuer}`,
      source: 'jwks',
    }).catch((err: unknown) => o.log(`revocation of withdrawn key ${kid} failed: ${describeError(err)}`));
  }, o.log);
  const wiring: RevocationWiring = {
    service,
    ...(introspection.enabled ? { introspection } : {}),
    ...(cfg.admin ? { adminClient: cfg.admin.client } : {}),
    async close() {
      service.close();
      introspection.close();
      verifier.close();
    },
  };
  return wiring;
}

/** With the runtime: revocations end what is open, introspection rechecks open sessions, the admin endpoint listens. */
export async function startRevocations(rt: GatewayRuntime): Promise<void> {
  const w = rt.revocations;
  if (!w) return;
  // Counted where it is in force: a revocation from another instance counts here too (one per instance, as audited).
  w.service.onRevoked((r) => rt.ops.metrics?.revocation(r.source));
  enforceRevocations(rt, w.service);
  w.keysRevoked = (ids) => endKeyStreams(rt, ids);
  w.introspection?.watch(() => rt.sessions.all().map((s) => s.principal));
  const cfg = rt.config.revocation;
  if (!cfg.admin) return;
  const receiver =
    cfg.sharedSignals &&
    new SetReceiver(cfg.sharedSignals, {
      baseDir: rt.baseDir,
      userIssuers: rt.config.userAuth.issuers.map((i) => i.issuer),
      ttlMs: cfg.ttlSeconds * 1000,
    });
  const admin = await startAdminServer({
    host: cfg.admin.host,
    port: cfg.admin.port,
    adminClient: cfg.admin.client,
    apiKeys: () => rt.keys?.current.adminKeys ?? [],
    service: w.service,
    receiver: receiver || undefined,
    audit: rt.audit,
    log: rt.log,
  });
  w.adminUrl = admin.url;
  rt.log(
    `admin endpoint: ${admin.url}/revocations${receiver ? `, shared signals receiver ${admin.url}/ssf/events` : ''}`,
  );
  const closeRest = w.close;
  w.close = async () => {
    await admin.close();
    await closeRest();
  };
}
