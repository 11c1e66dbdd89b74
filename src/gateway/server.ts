import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { principalFields, AuditLog } from '../audit/audit-log.js';
import { resolveAuditPath } from '../audit/path.js';
import { SqliteAuditStore } from '../audit/sqlite-store.js';
import type { AuditStore } from '../audit/event.js';
import type { LoadedConfig } from '../config/load.js';
import { resolveSecret } from '../config/secrets.js';
import { BehalfError, toBehalfError } from '../errors.js';
import { Authenticator } from '../identity/authenticator.js';
import { JwtVerifier, type VerifierOptions } from '../identity/jwt-verifier.js';
import { ArgumentRedactor } from '../audit/redact.js';
import { buildStrategies, type StrategyContext, type StrategyFactories } from '../delegation/registry.js';
import { tokenExchangeFactory } from '../delegation/token-exchange.js';
import type { GatewaySigner } from '../delegation/types.js';
import { userAssertionFactory } from '../delegation/user-assertion.js';
import { SignedContextVerifier } from '../identity/user-context.js';
import { MemoryReplayCache, type ReplayCache } from '../state/replay-cache.js';
import { createGatewayKeys, type GatewayKeys } from '../keys/gateway-keys.js';
import { PolicyHolder, type ReloadResult } from '../policy/holder.js';
import { MemoryRateLimiter } from '../policy/rate-limit.js';
import { loadPolicy, policyFilePath } from '../policy/source.js';
import { SessionStore } from '../state/sessions.js';
import { sendError } from './challenge.js';
import type { RequestContext } from './context.js';
import { sendJson } from './http-io.js';
import { protectedResourceMetadata } from './metadata.js';
import { ALLOWED_METHODS, STACKS } from './pipeline.js';
import { buildRoutes, JWKS_PATH, resolveRoute } from './route.js';
import type { GatewayRuntime } from './runtime.js';
import { endSession } from './session-binding.js';
import type { GatewaySession } from './session.js';

export interface GatewayOptions {
  log?: (line: string) => void;
  auditStore?: AuditStore;
  verifier?: VerifierOptions;
  env?: NodeJS.ProcessEnv;
  /** Makers of downstream strategies beyond service-account (token exchange, user assertions). */
  strategies?: StrategyFactories;
  /** The gateway's signing keys: enables the `user-assertion` downstream strategy (unless `strategies` supplies its own). */
  signer?: GatewaySigner;
  /** Single use of signed user context (jti); default one in memory. */
  replayCache?: ReplayCache;
}

export interface Gateway {
  baseUrl: string;
  port: number;
  runtime: GatewayRuntime;
  /** The resource URL of an upstream (its Streamable HTTP endpoint). */
  urlFor(upstream: string): string;
  close(): Promise<void>;
}

const AUTH_FAILURES = new Set(['client_auth_required', 'client_auth_invalid', 'user_token_required', 'user_token_invalid', 'delegation_mismatch', 'insufficient_scope']);

function loopbackHosts(port: number): string[] {
  return ['127.0.0.1', 'localhost', '[::1]'].map((h) => `${h}:${port}`);
}

async function handle(rt: GatewayRuntime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://gateway.invalid');
  if (url.pathname === '/healthz' && req.method === 'GET') return sendJson(res, 200, { status: 'ok' });
  if (url.pathname === JWKS_PATH && rt.signer) {
    if (req.method !== 'GET') return sendError(res, new BehalfError('method_not_allowed', undefined, { allow: 'GET' }));
    // Short cache: a revoked signing key leaves verifiers' caches within a minute; new keys are published before they sign.
    return sendJson(res, 200, rt.signer.jwks(), { 'cache-control': 'max-age=60' });
  }
  const resolved = resolveRoute(url.pathname, rt.routes);
  if (!resolved) return sendError(res, new BehalfError('unknown_route'));
  const { route, endpoint } = resolved;
  if (endpoint === 'metadata') {
    if (req.method !== 'GET') return sendError(res, new BehalfError('method_not_allowed', undefined, { allow: 'GET' }));
    return sendJson(res, 200, protectedResourceMetadata(rt, route), { 'cache-control': 'max-age=300' });
  }
  const stack = STACKS[`${endpoint} ${req.method}`];
  if (!stack) return sendError(res, new BehalfError('method_not_allowed', undefined, { allow: ALLOWED_METHODS[endpoint]! }));
  const ctx: RequestContext = {
    rt, req, res, url, route, endpoint, started: performance.now(),
    transport: endpoint === 'mcp' ? 'streamable-http' : 'sse',
  };
  try {
    for (const step of stack) await step.run(ctx);
  } catch (err) {
    const e = toBehalfError(err);
    if (e.code === 'internal') rt.log(`internal error on ${endpoint} ${req.method}: ${(err as Error)?.name ?? 'error'}`);
    if (AUTH_FAILURES.has(e.code) && !e.details.audited) {
      rt.audit.tryAppend({ ts: Date.now(), kind: 'auth-failure', route: route.name, transport: ctx.transport, reason: `${e.code}: ${e.message}`, ...principalFields(ctx.principal) });
    }
    // A refused request whose body is still arriving (too large, too slow) is not read further: the connection closes after the answer.
    if (!req.complete) res.setHeader('connection', 'close');
    sendError(res, e, { metadataUrl: route.metadataUrl, scopes: rt.config.userAuth.scopes });
  }
}

export async function startGateway(loaded: LoadedConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const { config, baseDir } = loaded;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (config.server.allowUnauthenticated) log('WARNING: server.allowUnauthenticated is set: clients are NOT authenticated. Development only.');
  const tls = config.server.tls;
  const server: Server = tls
    ? createHttpsServer({
      cert: resolveSecret(tls.cert, baseDir, options.env),
      key: resolveSecret(tls.key, baseDir, options.env),
      ...(tls.clientCa ? { ca: resolveSecret(tls.clientCa, baseDir, options.env), requestCert: true, rejectUnauthorized: false } : {}),
    })
    : createHttpServer();
  // Slowloris and idle sockets: bounded header and request times.
  server.headersTimeout = 15_000;
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.server.port, config.server.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const scheme = tls ? 'https' : 'http';
  const hostForUrl = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const baseUrl = (config.server.publicUrl ?? `${scheme}://${hostForUrl}:${port}`).replace(/\/$/, '');
  const publicHost = new URL(baseUrl).host.toLowerCase();
  const allowedHosts = new Set((config.server.allowedHosts ?? [publicHost, ...loopbackHosts(port)]).map((h) => h.toLowerCase()));
  const allowedOrigins = new Set([new URL(baseUrl).origin, ...config.server.allowedOrigins].map((o) => o.toLowerCase()));

  let audit: AuditLog;
  let policy: PolicyHolder;
  let redactor: ArgumentRedactor;
  let delegation: GatewayRuntime['delegation'];
  let keys: GatewayKeys;
  let userContext: SignedContextVerifier | undefined;
  try {
    const store = options.auditStore ?? new SqliteAuditStore(resolveAuditPath(config.audit.sqlitePath, baseDir), { durability: config.audit.durability });
    audit = new AuditLog(store, () => log('audit write failed'));
    const digestKey = config.audit.arguments.digestKey
      ? Buffer.from(resolveSecret(config.audit.arguments.digestKey, baseDir, options.env))
      : await store.secret('args-digest');
    redactor = new ArgumentRedactor(config.audit.arguments.keep, digestKey);
    const initial = loaded.policy ?? loadPolicy(config, baseDir);
    policy = new PolicyHolder(initial, () => loadPolicy(config, baseDir), (r) => recordReload(audit, log, r));
    const strategyContext: StrategyContext = { config, baseDir, env: options.env, log };
    // The caller's makers win over the defaults (tests, embedders).
    // Client API keys and the gateway's signing keys (config + key store); the key store's signer unless the caller brings one.
    keys = createGatewayKeys({ config, baseDir, baseUrl, audit, log });
    const signer = options.signer ?? keys.signer;
    const userAssertion = signer ? { 'user-assertion': userAssertionFactory(config.upstreams, signer) } : {};
    delegation = buildStrategies(strategyContext, { 'token-exchange': tokenExchangeFactory(strategyContext), ...userAssertion, ...options.strategies });
    const sc = config.userAuth.signedContext;
    userContext = sc && new SignedContextVerifier(sc, {
      baseDir, env: options.env, clients: config.clients, delegation: config.userAuth.delegation, requiredScopes: config.userAuth.scopes,
      replay: options.replayCache ?? new MemoryReplayCache({ now: options.verifier?.now }),
      now: options.verifier?.now, jwksCooldownMs: options.verifier?.jwksCooldownMs, timeoutMs: options.verifier?.timeoutMs,
    });
  } catch (err) {
    server.close();
    throw err;
  }
  const policyFile = policyFilePath(config, baseDir);
  if (policyFile && config.policy.watch) policy.watchFile(policyFile);
  const verifier = new JwtVerifier(config.userAuth.issuers, options.verifier);
  const rt: GatewayRuntime = {
    config, baseDir, baseUrl, allowedHosts, allowedOrigins,
    routes: buildRoutes(config.upstreams, baseUrl),
    authenticator: new Authenticator(config, verifier, keys.holder.apiKeys),
    policy,
    rateLimiter: new MemoryRateLimiter(),
    redactor,
    delegation,
    keys: keys.holder,
    signer: options.signer ?? keys.signer,
    sessions: undefined as unknown as SessionStore<GatewaySession>,
    stateless: new Map(),
    audit,
    userContext,
    upstreamContext: { baseDir, env: options.env, log },
    log,
  };
  rt.sessions = new SessionStore<GatewaySession>({
    idleTtlMs: config.sessions.idleTtlSeconds * 1000,
    maxSessions: config.sessions.maxSessions,
    onExpire: (s) => endSession(rt, s, 'idle'),
    shortestIdleTtlMs: Math.min(...Object.values(config.upstreams).map((u) => (u.transport === 'stdio' && u.perUser.idleTimeoutSeconds ? u.perUser.idleTimeoutSeconds * 1000 : Infinity))),
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(rt, req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { jsonrpc: '2.0', id: null, error: { code: -32603, message: 'Internal error' } });
      else res.end();
    });
  });
  audit.tryAppend({ ts: Date.now(), kind: 'lifecycle', outcome: 'gateway started', policyVersion: policy.current.version });
  keys.start();

  return {
    baseUrl,
    port,
    runtime: rt,
    urlFor: (name) => {
      const r = rt.routes.get(name);
      if (!r) throw new Error(`no upstream named ${name}`);
      return r.resource;
    },
    async close() {
      for (const s of rt.sessions.all()) endSession(rt, s, 'gateway stopping');
      for (const s of [...rt.stateless.values()]) endSession(rt, s, 'gateway stopping');
      rt.sessions.close();
      policy.close();
      keys.close();
      for (const d of delegation.values()) d.close?.();
      server.closeAllConnections?.();
      await new Promise<void>((r) => server.close(() => r()));
      audit.tryAppend({ ts: Date.now(), kind: 'lifecycle', outcome: 'gateway stopped' });
      await audit.close();
    },
  };
}

/** Every reload attempt is on the record: which policy is in force, or why a file was refused. */
function recordReload(audit: AuditLog, log: (line: string) => void, r: ReloadResult): void {
  if (r.ok) {
    if (r.changed) log(`policy reloaded: version ${r.version}`);
    audit.tryAppend({ ts: Date.now(), kind: 'policy', outcome: r.changed ? 'reloaded' : 'reloaded (unchanged)', policyVersion: r.version });
  } else {
    log(`policy reload rejected; the previous policy stays in force:\n${r.problems.map((p) => `  ${p}`).join('\n')}`);
    audit.tryAppend({ ts: Date.now(), kind: 'policy', outcome: 'reload rejected', reason: r.problems.join('; ').slice(0, 2000) });
  }
}
