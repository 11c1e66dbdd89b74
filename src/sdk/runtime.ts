import { AuditLog } from '../audit/audit-log.js';
import { configuredAuditStore, instanceIdOf } from '../audit/configured-store.js';
import type { AuditStore } from '../audit/event.js';
import { ArgumentRedactor } from '../audit/redact.js';
import { newChainEvent } from '../audit/sqlite-store.js';
import type { LoadedSdkConfig } from '../config/load-sdk.js';
import type { GatewayConfig } from '../config/schema.js';
import { HttpUpstreamSchema } from '../config/schema-upstreams.js';
import { resolveSecret } from '../config/secrets.js';
import { buildStrategies, type StrategyFactories } from '../delegation/registry.js';
import { tokenExchangeFactory } from '../delegation/token-exchange.js';
import type { DownstreamStrategy, GatewaySigner } from '../delegation/types.js';
import { userAssertionFactory } from '../delegation/user-assertion.js';
import { describeError } from '../errors.js';
import { Authenticator } from '../identity/authenticator.js';
import { JwtVerifier, type VerifierOptions } from '../identity/jwt-verifier.js';
import { createGatewayKeys } from '../keys/gateway-keys.js';
import { PolicyHolder } from '../policy/holder.js';
import type { RateLimiter } from '../policy/rate-limit.js';
import { loadPolicy, policyFilePath } from '../policy/source.js';
import { openSharedState } from '../state/shared-state.js';
import { AuthFailureRecorder } from '../gateway/limits/auth-failures.js';
import { SessionOwners } from './session-owners.js';

export interface SdkOptions {
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  verifier?: VerifierOptions;
  /** An audit store of the caller's making instead of the config's (tests, embedders). */
  auditStore?: AuditStore;
  /** Signing keys for `user-assertion` downstreams, unless the config's key store has them. */
  signer?: GatewaySigner;
  strategies?: StrategyFactories;
}

/** What every protected request of one server shares: the gateway's own building blocks, built once. */
export interface SdkRuntime {
  config: GatewayConfig;
  /** This server's name in policy and audit (config `sdk.name`). */
  name: string;
  resource: string;
  /** The resource's own origin and `server.allowedOrigins`, lower-cased: any other Origin is refused. */
  allowedOrigins: ReadonlySet<string>;
  authenticator: Authenticator;
  policy: PolicyHolder;
  rateLimiter: RateLimiter;
  audit: AuditLog;
  redactor: ArgumentRedactor;
  /** Per downstream (config `sdk.downstreams` key): this user's credential for it. */
  downstreams: Map<string, DownstreamStrategy>;
  sessions: SessionOwners;
  /** Failed authentications of unknown callers, recorded at a bounded rate. */
  authFailures: AuthFailureRecorder;
  log: (line: string) => void;
  close(): Promise<void>;
}

/**
 * The downstreams seen as the gateway's upstreams, so the gateway's own
 * strategy makers build them: each keyed by what handlers ask for, its
 * audience that key unless the config names one.
 */
function downstreamView(loaded: LoadedSdkConfig): GatewayConfig {
  const upstreams = Object.fromEntries(
    Object.entries(loaded.sdk.downstreams).map(([key, d]) => {
      const downstream =
        d.strategy === 'token-exchange' || d.strategy === 'user-assertion' ? { audience: key, ...d } : d;
      const base = HttpUpstreamSchema.parse({ transport: 'streamable-http', url: loaded.sdk.resource });
      return [key, { ...base, downstream }];
    }),
  );
  return { ...loaded.config, upstreams };
}

export async function buildSdkRuntime(loaded: LoadedSdkConfig, options: SdkOptions = {}): Promise<SdkRuntime> {
  const { config, baseDir } = loaded;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const env = options.env ?? process.env;
  if (config.server.allowUnauthenticated)
    log('WARNING: server.allowUnauthenticated is set: clients are NOT authenticated. Development only.');
  const configured = options.auditStore ? undefined : configuredAuditStore(config.audit, { baseDir, env, log });
  const store = options.auditStore ?? configured!.store;
  const instanceId = instanceIdOf(config.state.instanceId);
  const audit = new AuditLog(store, (err) => log(`audit write failed: ${describeError(err)}`), instanceId);
  const shared = await openSharedState(config, baseDir, env, log, instanceId);
  try {
    if (await configured?.start()) audit.tryAppend(newChainEvent());
    const digestKey = config.audit.arguments.digestKey
      ? Buffer.from(resolveSecret(config.audit.arguments.digestKey, baseDir, env))
      : await store.secret('args-digest');
    const policy = new PolicyHolder(
      loaded.policy ?? loadPolicy(config, baseDir),
      () => loadPolicy(config, baseDir),
      (r) => log(r.ok ? `policy reloaded: version ${r.version}` : `policy reload rejected: ${r.problems.join('; ')}`),
    );
    const keys = createGatewayKeys({ config, baseDir, baseUrl: loaded.sdk.resource, audit, log, instanceId });
    const signer = options.signer ?? keys.signer;
    const view = downstreamView(loaded);
    const strategyContext = { config: view, baseDir, env, log, exchangeLock: shared.exchangeLock };
    const downstreams = buildStrategies(strategyContext, {
      'token-exchange': tokenExchangeFactory(strategyContext),
      ...(signer ? { 'user-assertion': userAssertionFactory(view.upstreams, signer) } : {}),
      ...options.strategies,
    });
    const policyFile = policyFilePath(config, baseDir);
    if (policyFile && config.policy.watch) policy.watchFile(policyFile);
    keys.start();
    audit.tryAppend({
      ts: Date.now(),
      kind: 'lifecycle',
      outcome: 'sdk started',
      policyVersion: policy.current.version,
    });
    const authFailures = new AuthFailureRecorder(audit);
    const sessions = new SessionOwners(config.sessions.maxSessions, config.sessions.idleTtlSeconds * 1000);
    return {
      config,
      name: loaded.sdk.name,
      resource: loaded.sdk.resource,
      allowedOrigins: new Set(
        [new URL(loaded.sdk.resource).origin, ...config.server.allowedOrigins].map((o) => o.toLowerCase()),
      ),
      authenticator: new Authenticator(
        config,
        new JwtVerifier(config.userAuth.issuers, options.verifier),
        keys.holder.apiKeys,
      ),
      policy,
      rateLimiter: shared.rateLimiter,
      audit,
      redactor: new ArgumentRedactor(config.audit.arguments.keep, digestKey),
      downstreams,
      sessions,
      authFailures,
      log,
      async close() {
        policy.close();
        keys.close();
        shared.close();
        for (const d of downstreams.values()) d.close?.();
        authFailures.flush();
        await audit.close();
      },
    };
  } catch (err) {
    shared.close();
    await audit.close();
    throw err;
  }
}
