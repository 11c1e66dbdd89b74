/**
 * Serves the demo CRM over HTTP on one node:http server:
 *  - Streamable HTTP at `/mcp` (stateful; one transport + one McpServer per session; POST/GET/DELETE);
 *  - legacy HTTP+SSE (protocol 2024-11-05): `GET /sse` opens the stream, POSTs go to `/messages?sessionId=…`.
 *
 * All sessions share one CustomerStore, so a change made in one session is seen by the others.
 * Host (and, when sent, Origin) headers are checked port-agnostically against loopback names,
 * the way the SDK's `hostHeaderValidation` middleware does (the transports' own
 * `allowedHosts` options are deprecated in SDK 1.x and match host:port exactly).
 *
 * With `auth`, the CRM is a resource server that trusts no one in front of it: every request must
 * carry `Authorization: Bearer <JWT>` from the configured issuer (keys from its JWKS, found by
 * discovery), typ at+jwt, audience = this server's own URL; a session belongs to the subject who
 * opened it; and every tool decides by that subject (see server.ts). Missing or invalid: 401 with
 * a Bearer challenge.
 *
 * With `observe` (the quickstart; development only), `GET /observed` lists fingerprints of the
 * credentials the CRM received (observer.ts), for a reviewer's downstream check.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { createCustomerStore, type CustomerStore } from './data.js';
import { CredentialObserver } from './observer.js';
import { createCrmServer } from './server.js';

export interface CrmRequestInfo {
  method: string;
  /** Path without the query string, e.g. `/mcp`, `/sse`, `/messages`. */
  path: string;
  /** The raw request target including the query string (so a canary also sees anything put in a URL). */
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

/** The CRM validates its own tokens (see the file comment). */
export interface CrmAuthOptions {
  /** Exact `iss`; the JWKS is found by OpenID discovery from it unless `jwksUri` is given. */
  issuer: string;
  jwksUri?: string;
  /** Accepted `aud` values; default this server's own endpoints (`url` and `sseUrl`). */
  audience?: string | string[];
  /** Default ES256, ES384, RS256, PS256, EdDSA: asymmetric only. */
  algorithms?: string[];
  /** Default 0. */
  clockToleranceSeconds?: number;
  /** Accepted JWT `typ`; default at+jwt (an access token). A gateway's user assertion is `JWT`. */
  typ?: string;
  /** Scopes granted when a token of this issuer carries none (the CRM's own trust in, e.g., a gateway's assertions). */
  scopesIfAbsent?: string[];
}

/** What the CRM made of one request's credential (for canary tests): claims, never the token. */
export interface CrmAuthEvent {
  method: string;
  path: string;
  /** The MCP session the request named (Mcp-Session-Id, or the legacy `sessionId` query), if any. */
  sessionId?: string;
  ok: boolean;
  /** Why it was refused. */
  reason?: string;
  /** The verified token's claims that say who and for whom (present when ok). */
  claims?: {
    sub: string;
    aud: unknown;
    act?: unknown;
    client_id?: unknown;
    scope?: unknown;
    jti?: unknown;
    exp?: unknown;
    role?: unknown;
  };
}

export interface CrmHttpOptions {
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Port to bind; default 0 (a free port). */
  port?: number;
  /** Canary hook: called with every incoming HTTP request before anything else happens. */
  onRequest?: (info: CrmRequestInfo) => void;
  /** Store shared by all sessions; default a fresh copy of the seed data. */
  store?: CustomerStore;
  /** Host names (without port) accepted in Host/Origin; default localhost, 127.0.0.1, [::1] and `host`. */
  allowedHostnames?: string[];
  /** Validate bearer tokens and decide every call by their subject. Default: off (trust everyone). Several issuers: each token is checked against its own. */
  auth?: CrmAuthOptions | CrmAuthOptions[];
  /** Canary hook: called after each request's credential was checked (only with `auth`). */
  onAuth?: (event: CrmAuthEvent) => void;
  /** Serve `GET /observed` (loopback only): fingerprints and verified claims of the last `max` credentials received (default 1000). */
  observe?: boolean | { max?: number };
}

export interface CrmHttpServer {
  /** Streamable HTTP endpoint, `http://127.0.0.1:PORT/mcp`. */
  url: string;
  /** Legacy HTTP+SSE endpoint, `http://127.0.0.1:PORT/sse`. */
  sseUrl: string;
  /** `http://127.0.0.1:PORT/observed`, with `observe`. */
  observedUrl?: string;
  port: number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;
const LOOPBACK_HOSTNAMES = ['localhost', '127.0.0.1', '[::1]'];

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function sendJsonRpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** The hostname of a Host header value or Origin URL, or undefined when it does not parse. */
function hostnameOf(value: string, isOrigin: boolean): string | undefined {
  try {
    return new URL(isOrigin ? value : `http://${value}`).hostname;
  } catch {
    return undefined;
  }
}

/** DNS-rebinding protection: returns why the request is refused, or undefined when it may proceed. */
function checkHostAndOrigin(headers: IncomingHttpHeaders, allowed: readonly string[]): string | undefined {
  const host = headers.host;
  if (!host) return 'Missing Host header';
  const hostname = hostnameOf(host, false);
  if (!hostname || !allowed.includes(hostname)) return 'Invalid Host header';
  const origin = headers.origin;
  if (origin !== undefined) {
    const originHost = hostnameOf(origin, true);
    if (!originHost || !allowed.includes(originHost)) return 'Invalid Origin header';
  }
  return undefined;
}

class AuthError extends Error {
  constructor(
    readonly reason: string,
    readonly missing = false,
  ) {
    super(reason);
  }
}

const DEFAULT_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'];

/** A verified token and the issuer entry it was checked against. */
interface Verified {
  payload: JWTPayload;
  auth: CrmAuthOptions;
}

/** Verifies bearer tokens for one issuer and audience; the key set is looked up once (again after a failure). */
function tokenVerifier(auth: CrmAuthOptions, audience: string[]): (token: string) => Promise<Verified> {
  let keys: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  const keySet = () => {
    keys ??= (async () => {
      let jwksUri = auth.jwksUri;
      if (!jwksUri) {
        const res = await fetch(
          new URL('.well-known/openid-configuration', auth.issuer.endsWith('/') ? auth.issuer : `${auth.issuer}/`),
          { signal: AbortSignal.timeout(5000) },
        );
        const meta = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
        if (!res.ok || meta.issuer !== auth.issuer || typeof meta.jwks_uri !== 'string')
          throw new Error('issuer discovery failed');
        jwksUri = meta.jwks_uri;
      }
      return createRemoteJWKSet(new URL(jwksUri));
    })();
    keys.catch(() => (keys = undefined));
    return keys;
  };
  return async (token) => {
    const jwks = await keySet().catch(() => {
      throw new AuthError('issuer keys unavailable');
    });
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: auth.issuer,
        audience,
        typ: auth.typ ?? 'at+jwt',
        algorithms: auth.algorithms ?? DEFAULT_ALGORITHMS,
        requiredClaims: ['sub', 'exp'],
        clockTolerance: auth.clockToleranceSeconds ?? 0,
      });
      return { payload, auth };
    } catch (err) {
      throw new AuthError(`token rejected (${(err as { code?: string }).code ?? 'invalid'})`);
    }
  };
}

/** Picks the trusted issuer a token names (its unverified `iss`, only to choose the keys), then verifies it fully there. */
function trustedIssuers(
  auths: CrmAuthOptions[],
  audienceOf: (a: CrmAuthOptions) => string[],
): (authorization: string | undefined) => Promise<Verified> {
  const verifiers = new Map(auths.map((a) => [a.issuer, tokenVerifier(a, audienceOf(a))]));
  return async (authorization) => {
    const m = authorization === undefined ? undefined : /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization);
    if (!authorization) throw new AuthError('no bearer token', true);
    if (!m) throw new AuthError('malformed authorization header');
    let iss: unknown;
    try {
      iss = (JSON.parse(Buffer.from(m[1]!.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown }).iss;
    } catch {
      throw new AuthError('token rejected (malformed)');
    }
    const verify = typeof iss === 'string' ? verifiers.get(iss) : undefined;
    if (!verify) throw new AuthError('token rejected (untrusted issuer)');
    return verify(m[1]!);
  };
}

function challenge(res: ServerResponse, e: AuthError): void {
  const header = e.missing ? 'Bearer realm="behalf-demo-crm"' : 'Bearer realm="behalf-demo-crm", error="invalid_token"';
  sendJsonRpcError(res, 401, -32001, 'Unauthorized', { 'www-authenticate': header });
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, -32600, 'Request body too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, -32700, 'Parse error: invalid JSON');
  }
}

export async function startCrmHttp(o: CrmHttpOptions = {}): Promise<CrmHttpServer> {
  const bindHost = o.host ?? '127.0.0.1';
  const store = o.store ?? createCustomerStore();
  const allowed = o.allowedHostnames ?? [...new Set([...LOOPBACK_HOSTNAMES, urlHost(bindHost)])];

  const streamable = new Map<string, StreamableHTTPServerTransport>();
  const sse = new Map<string, SSEServerTransport>();
  /** With auth: the subject each session belongs to. Another subject presenting its id is told it does not exist. */
  const owners = new Map<string, string>();
  const requireCaller = o.auth !== undefined;
  const observer = o.observe
    ? new CredentialObserver(typeof o.observe === 'object' ? o.observe.max : undefined)
    : undefined;
  let verify: ((authorization: string | undefined) => Promise<Verified>) | undefined;
  let closing = false;

  type AuthedRequest = IncomingMessage & { auth?: AuthInfo };
  const subjectOf = (req: AuthedRequest): string | undefined => req.auth?.extra?.sub as string | undefined;
  const ownedBy = (sessionId: string, req: AuthedRequest): boolean =>
    !requireCaller || owners.get(sessionId) === subjectOf(req);

  async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sessionHeader = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(sessionHeader) ? sessionHeader[0] : sessionHeader;
    if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
      sendJsonRpcError(res, 405, -32000, 'Method not allowed', { allow: 'GET, POST, DELETE' });
      return;
    }
    if (sessionId !== undefined) {
      const transport = streamable.get(sessionId);
      if (!transport || !ownedBy(sessionId, req)) {
        sendJsonRpcError(res, 404, -32001, 'Session not found');
        return;
      }
      await transport.handleRequest(req, res);
      return;
    }
    if (req.method !== 'POST') {
      sendJsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
      return;
    }
    const body = await readJsonBody(req);
    if (!isInitializeRequest(body)) {
      sendJsonRpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        streamable.set(id, transport);
        const sub = subjectOf(req);
        if (sub !== undefined) owners.set(id, sub);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) {
        streamable.delete(transport.sessionId);
        owners.delete(transport.sessionId);
      }
    };
    await createCrmServer(store, { requireCaller }).connect(transport);
    await transport.handleRequest(req, res, body);
  }

  async function handleSseStream(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET') {
      sendJsonRpcError(res, 405, -32000, 'Method not allowed', { allow: 'GET' });
      return;
    }
    const transport = new SSEServerTransport('/messages', res);
    sse.set(transport.sessionId, transport);
    const sub = subjectOf(req);
    if (sub !== undefined) owners.set(transport.sessionId, sub);
    transport.onclose = () => {
      sse.delete(transport.sessionId);
      owners.delete(transport.sessionId);
    };
    await createCrmServer(store, { requireCaller }).connect(transport);
  }

  async function handleSseMessage(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    if (req.method !== 'POST') {
      sendJsonRpcError(res, 405, -32000, 'Method not allowed', { allow: 'POST' });
      return;
    }
    const id = query.get('sessionId') ?? '';
    const transport = sse.get(id);
    if (!transport || !ownedBy(id, req)) {
      sendJsonRpcError(res, 404, -32001, 'Session not found');
      return;
    }
    await transport.handlePostMessage(req, res);
  }

  /** Verifies the bearer token and hands the caller to the MCP handlers (`authInfo`); false when it answered 401. */
  async function authenticate(
    req: AuthedRequest,
    res: ServerResponse,
    target: URL,
    check: NonNullable<typeof verify>,
  ): Promise<boolean> {
    const method = req.method ?? '';
    const path = target.pathname;
    const header = req.headers['mcp-session-id'];
    const sessionId = (Array.isArray(header) ? header[0] : header) ?? target.searchParams.get('sessionId') ?? undefined;
    let p: JWTPayload;
    let issuer: CrmAuthOptions;
    try {
      ({ payload: p, auth: issuer } = await check(req.headers.authorization));
    } catch (err) {
      const e = err instanceof AuthError ? err : new AuthError('verification failed');
      observer?.record(req.headers);
      o.onAuth?.({ method, path, sessionId, ok: false, reason: e.reason });
      challenge(res, e);
      return false;
    }
    const sub = p.sub!;
    observer?.record(req.headers, p);
    o.onAuth?.({
      method,
      path,
      sessionId,
      ok: true,
      claims: {
        sub,
        aud: p.aud,
        act: p.act,
        client_id: p.client_id,
        scope: p.scope,
        jti: p.jti,
        exp: p.exp,
        role: p.role,
      },
    });
    const token = req.headers.authorization!.slice('Bearer '.length);
    req.auth = {
      token,
      clientId: typeof p.client_id === 'string' ? p.client_id : '',
      scopes: typeof p.scope === 'string' ? p.scope.split(' ').filter(Boolean) : (issuer.scopesIfAbsent ?? []),
      expiresAt: p.exp,
      extra: { sub, role: p.role, act: p.act },
    };
    return true;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = new URL(req.url ?? '/', 'http://placeholder');
    if (o.onRequest) {
      try {
        o.onRequest({
          method: req.method ?? '',
          path: target.pathname,
          url: req.url ?? '/',
          headers: { ...req.headers },
        });
      } catch (err) {
        process.stderr.write(`demo-crm: onRequest hook threw: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
    if (closing) {
      sendJsonRpcError(res, 503, -32000, 'Server is shutting down');
      return;
    }
    const refused = checkHostAndOrigin(req.headers, allowed);
    if (refused) {
      sendJsonRpcError(res, 403, -32000, refused);
      return;
    }
    // Before authentication: the observer is read by the reviewer, who holds no CRM token.
    if (observer && target.pathname === '/observed') return observer.serve(req, res);
    if (o.auth) {
      // Fail closed: with auth configured, nothing is served without a verifier.
      if (!verify) return sendJsonRpcError(res, 503, -32000, 'Server is starting');
      if (!(await authenticate(req, res, target, verify))) return;
    } else {
      observer?.record(req.headers);
    }
    switch (target.pathname) {
      case '/mcp':
        return handleMcp(req, res);
      case '/sse':
        return handleSseStream(req, res);
      case '/messages':
        return handleSseMessage(req, res, target.searchParams);
      default:
        sendJsonRpcError(res, 404, -32000, 'Not found');
    }
  }

  const httpServer = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        sendJsonRpcError(res, err.status, err.code, err.message);
        return;
      }
      process.stderr.write(`demo-crm: request failed: ${err instanceof Error ? err.message : String(err)}\n`);
      sendJsonRpcError(res, 500, -32603, 'Internal error');
    });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(o.port ?? 0, bindHost, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });

  const port = (httpServer.address() as AddressInfo).port;
  const publicHost = bindHost === '0.0.0.0' || bindHost === '::' ? '127.0.0.1' : urlHost(bindHost);
  const base = `http://${publicHost}:${port}`;
  // The audience is this server's own URL, known only once it listens; nothing is served before.
  if (o.auth) {
    verify = trustedIssuers([o.auth].flat(), (a) =>
      a.audience === undefined ? [`${base}/mcp`, `${base}/sse`] : [a.audience].flat(),
    );
  }

  let closed: Promise<void> | undefined;
  function close(): Promise<void> {
    closed ??= (async () => {
      closing = true;
      const transports = [...streamable.values(), ...sse.values()];
      await Promise.allSettled(transports.map((t) => t.close()));
      streamable.clear();
      sse.clear();
      await new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections();
      });
    })();
    return closed;
  }

  return {
    url: `${base}/mcp`,
    sseUrl: `${base}/sse`,
    ...(observer ? { observedUrl: `${base}/observed` } : {}),
    port,
    close,
  };
}
