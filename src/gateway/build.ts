import { HttpPools } from './upstream/http-pools.js';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { AuditLog } from '../audit/audit-log.js';
import type { AuditStore } from '../audit/event.js';
import { configuredAuditStore, instanceIdOf } from '../audit/configured-store.js';
import { ArgumentRedactor } from '../audit/redact.js';
import { newChainEvent } from '../audit/sqlite-store.js';
import type { LoadedConfig } from '../config/load.js';
import { resolveSecret } from '../config/secrets.js';
import { buildStrategies, type StrategyContext, type StrategyFactories } from '../delegation/registry.js';
import { tokenExchangeFactory } from '../delegation/token-exchange.js';
import type { GatewaySigner } from '../delegation/types.js';
import { userAssertionFactory } from '../delegation/user-assertion.js';
import { describeError } from '../errors.js';
import { Authenticator } from '../identity/authenticator.js';
import { JwtVerifier, type VerifierOptions } from '../identity/jwt-verifier.js';
import { SignedContextVerifier } from '../identity/user-context.js';
import { createGatewayKeys } from '../keys/gateway-keys.js';
import { PolicyHolder } from '../policy/holder.js';
import { recordReload } from './policy-reload-record.js';
import { loadPolicy, policyFilePath } from '../policy/source.js';
import type { ReplayCache } from '../state/replay-cache.js';
import { openSharedState, type SharedState } from '../state/shared-state.js';
import { listenForFleetChanges } from './fleet-wiring.js';
import { sessionLimits } from '../state/session-quota.js';
import { SessionStore } from '../state/sessions.js';
import { fleetSessionState } from '../state/shared-sessions.js';
import { InputBridge } from './stateless/input-bridge.js';
import { buildLimits } from './limits/runtime-limits.js';
import { buildRoutes } from './route.js';
import type { GatewayRuntime } from './runtime.js';
import { endSession } from './session-binding.js';
import { buildRevocations } from '../revocation/wiring.js';
import { hasOpenStream, type GatewaySession } from './session.js';
import { gatewayOps } from '../ops/gateway-ops.js';
import type { DestinationStream } from 'pino';

export interface GatewayOptions {
  log?: (line: string) => void;
  /** Debug lines (every refusal with the step that made it); off unless given or BEHALF_DEBUG is set. */
  debug?: (line: string) => void;
  auditStore?: AuditStore;
  verifier?: VerifierOptions;
  env?: NodeJS.ProcessEnv;
  /** Makers of downstream strategies beyond service-account (token exchange, user assertions). */
  strategies?: StrategyFactories;
  /** The gateway's signing keys: enables the `user-assertion` downstream strategy (unless `strategies` supplies its own). */
  signer?: GatewaySigner;
  /** Names this instance in its audit records (a fleet shares one trail); default host and pid. */
  instanceId?: string;
  /** Single use of signed user context (jti); default one in memory. */
  replayCache?: ReplayCache;
  /** Where the structured log's JSON lines go (default stderr); with `log` given and no destination it is off. */
  logDestination?: DestinationStream;
}

/** A gateway built and not yet listening: its runtime needs only the base URL, known once the port is bound. */
export interface BuiltGateway {
  server: Server;
  runtimeAt(baseUrl: string, port: number): GatewayRuntime;
  /** Undoes the build when listening fails. */
  discard(): Promise<void>;
}

function loopbackHosts(port: number): string[] {
  return ['127.0.0.1', 'localhost', '[::1]'].map((h) => `${h}:${port}`);
}

/** Deadlines (headers) are enforced when connections are checked: every second, not Node's default 30 s, so headersTimeoutMs holds. */
const HTTP_OPTIONS = { connectionsCheckingInterval: 1000 };

function httpServer(loaded: LoadedConfig, env: NodeJS.ProcessEnv | undefined): Server {
  const tls = loaded.config.server.tls;
  const server: Server = tls
    ? createHttpsServer({
        cert: resolveSecret(tls.cert, loaded.baseDir, env),
        key: resolveSecret(tls.key, loaded.baseDir, env),
        ...(tls.clientCa
          ? { ca: resolveSecret(tls.clientCa, loaded.baseDir, env), requestCert: true, rejectUnauthorized: false }
          : {}),
        ...HTTP_OPTIONS,
      })
    : createHttpServer(HTTP_OPTIONS);
  // Slowloris and idle sockets: bounded header and request times.
  server.headersTimeout = loaded.config.server.headersTimeoutMs;
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5_000;
  return server;
}

/**
 * Builds everything a gateway needs — every step that reads a file, opens a
 * store or can fail — before anything listens, so a gateway that cannot
 * start never accepts a connection. What depends on the bound address
 * (resource URLs, allowed hosts, the signer's issuer) is derived afterwards,
 * synchronously, by `runtimeAt`.
 */
export async function buildGateway(loaded: LoadedConfig, options: GatewayOptions = {}): Promise<BuiltGateway> {
  const { config, baseDir } = loaded;
  const instanceId = instanceIdOf(options.instanceId ?? config.state.instanceId);
  const operations = await gatewayOps(loaded, options, instanceId);
  const { ops, log } = operations;
  const env = options.env ?? process.env;
  const debug = options.debug ?? (env.BEHALF_DEBUG ? log : () => undefined);
  if (config.server.allowUnauthenticated)
    log('WARNING: server.allowUnauthenticated is set: clients are NOT authenticated. Development only.');
  let server: Server;
  let configured: ReturnType<typeof configuredAuditStore> | undefined;
  try {
    server = httpServer(loaded, options.env);
    configured = options.auditStore ? undefined : configuredAuditStore(config.audit, { baseDir, env, log });
  } catch (err) {
    // The metrics listener is already bound: a gateway that cannot be built leaves nothing listening.
    await ops.close();
    throw err;
  }
  const store = options.auditStore ?? configured!.store;
  const audit = new AuditLog(
    store,
    (err, more) =>
      log(`audit write failed: ${describeError(err)}${more ? ` (and ${more} more like it in the last second)` : ''}`),
    instanceId,
  );
  const limits = buildLimits(config, server, audit, log);
  let baseUrl: string | undefined;
  const issuer = () => baseUrl ?? 'http://gateway.invalid';
  let shared: SharedState | undefined;
  try {
    shared = await openSharedState(config, baseDir, options.env, log, instanceId);
    /** Set while a change announced by another instance is being put in force here, so it is not announced again. */
    const fleetOrigin: { from?: string } = {};
    // The writer is up before anything listens; a store that starts a chain says so in its first record.
    if (await configured?.start()) audit.tryAppend(newChainEvent());
    const digestKey = config.audit.arguments.digestKey
      ? Buffer.from(resolveSecret(config.audit.arguments.digestKey, baseDir, options.env))
      : await store.secret('args-digest');
    const redactor = new ArgumentRedactor(config.audit.arguments.keep, digestKey);
    const policy = new PolicyHolder(
      loaded.policy ?? loadPolicy(config, baseDir),
      () => loadPolicy(config, baseDir),
      (r) => {
        recordReload(audit, log, r, { instanceId, from: fleetOrigin.from });
        if (r.ok && r.changed && !fleetOrigin.from) void changes?.announce('policy', r.version);
      },
    );
    const strategyContext: StrategyContext = {
      config,
      baseDir,
      env: options.env,
      log,
      exchangeLock: shared.exchangeLock,
    };
    // Client API keys and the gateway's signing keys (config + key store); the key store's signer unless the caller brings one.
    const keys = createGatewayKeys({
      config,
      baseDir,
      baseUrl: issuer,
      audit,
      log,
      instanceId,
      onStoreChange: (r) => {
        if (!fleetOrigin.from) void changes?.announceStore(r);
      },
      onKeysRevoked: (ids) => revocations.keysRevoked?.(ids),
    });
    const changes = listenForFleetChanges(shared, { policy, keys: keys.holder, fleetOrigin, log });
    const signer = options.signer ?? keys.signer;
    const userAssertion = signer ? { 'user-assertion': userAssertionFactory(config.upstreams, signer) } : {};
    // The caller's makers win over the defaults (tests, embedders).
    const delegation = buildStrategies(strategyContext, {
      'token-exchange': tokenExchangeFactory(strategyContext),
      ...userAssertion,
      ...options.strategies,
    });
    const sc = config.userAuth.signedContext;
    const userContext =
      sc &&
      new SignedContextVerifier(sc, {
        baseDir,
        env: options.env,
        clients: config.clients,
        delegation: config.userAuth.delegation,
        requiredScopes: config.userAuth.scopes,
        replay: options.replayCache ?? shared.replayCache(options.verifier?.now),
        now: options.verifier?.now,
        jwksCooldownMs: options.verifier?.jwksCooldownMs,
        timeoutMs: options.verifier?.timeoutMs,
      });
    const verifier = new JwtVerifier(config.userAuth.issuers, options.verifier);
    const authenticator = new Authenticator(config, verifier, keys.holder.apiKeys);
    const revocations = buildRevocations(verifier, shared, { config, baseDir, env, audit, log });
    const policyFile = policyFilePath(config, baseDir);
    const stopBuilt = () => {
      void revocations.close();
      policy.close();
      keys.close();
      shared?.close();
      for (const d of delegation.values()) d.close?.();
    };
    const stdioIdle = Object.values(config.upstreams).map((u) =>
      u.transport === 'stdio' && u.perUser.idleTimeoutSeconds ? u.perUser.idleTimeoutSeconds * 1000 : Infinity,
    );
    return {
      server,
      runtimeAt(url, port) {
        baseUrl = url;
        const publicHost = new URL(url).host.toLowerCase();
        const rt: GatewayRuntime = {
          config,
          baseDir,
          baseUrl: url,
          allowedHosts: new Set(
            (config.server.allowedHosts ?? [publicHost, ...loopbackHosts(port)]).map((h) => h.toLowerCase()),
          ),
          allowedOrigins: new Set([new URL(url).origin, ...config.server.allowedOrigins].map((o) => o.toLowerCase())),
          routes: buildRoutes(config.upstreams, url),
          authenticator,
          policy,
          rateLimiter: shared!.rateLimiter,
          fleet: changes,
          redactor,
          delegation,
          keys: keys.holder,
          signer,
          sessions: new SessionStore<GatewaySession>({
            idleTtlMs: config.sessions.idleTtlSeconds * 1000,
            limits: sessionLimits(config.sessions),
            onExpire: (s) => endSession(rt, s, 'idle'),
            onEvict: (s, reason) => endSession(rt, s, reason),
            inUse: (s) => s.inFlight > 0 || s.postStreams.size > 0 || hasOpenStream(s),
            hasStream: hasOpenStream,
            onFull: () =>
              limits.logs.note(
                'sessions',
                `sessions: at the gateway-wide cap (sessions.maxSessions = ${config.sessions.maxSessions}); new sessions get 503`,
              ),
            shortestIdleTtlMs: Math.min(...stdioIdle),
          }),
          ...(shared?.redis && { shared: fleetSessionState(shared.redis, config.sessions, shared.instanceId) }),
          stateless: new Map(),
          inputBridge: new InputBridge(log, audit),
          audit,
          revocations,
          limits,
          userContext,
          upstreamContext: { baseDir, env: options.env, log, pools: new HttpPools() },
          log,
          debug,
          ops,
          stop: stopBuilt,
        };
        operations.attach(rt, verifier, shared);
        if (policyFile && config.policy.watch) policy.watchFile(policyFile);
        audit.tryAppend({
          ts: Date.now(),
          kind: 'lifecycle',
          outcome: 'gateway started',
          policyVersion: policy.current.version,
          instanceId,
        });
        keys.start();
        return rt;
      },
      async discard() {
        stopBuilt();
        await audit.close();
        await ops.close();
      },
    };
  } catch (err) {
    shared?.close();
    await audit.close();
    await ops.close();
    throw err;
  }
}
