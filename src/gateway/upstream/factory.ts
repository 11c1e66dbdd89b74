import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { UpstreamConfig } from '../../config/schema.js';
import { BehalfError } from '../../errors.js';
import { resolveSecret } from '../../config/secrets.js';
import { callTraceHeaders } from '../../ops/trace-propagation.js';
import { callCredential } from '../../delegation/call-credential.js';
import type { DownstreamCredential } from '../../delegation/types.js';
import { UpstreamConnection } from './connection.js';
import type { HttpPools } from './http-pools.js';
import { StreamableHttpTransport } from './http-transport.js';
import { StdioClientTransport } from './stdio-transport.js';
import type { UpstreamTransport } from './transport.js';

export interface UpstreamFactoryContext {
  baseDir: string;
  /** Kept-alive connections to HTTP upstreams, shared by all sessions of this gateway. */
  pools: HttpPools;
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/** The child's whole environment: the allow-list copied from ours, plus declared values. */
export function childEnvironment(
  cfg: Extract<UpstreamConfig, { transport: 'stdio' }>,
  ctx: UpstreamFactoryContext,
): Record<string, string> {
  const source = ctx.env ?? process.env;
  const env: Record<string, string> = {};
  for (const name of cfg.envAllow) {
    const v = source[name];
    if (v !== undefined) env[name] = v;
  }
  for (const [name, v] of Object.entries(cfg.env)) {
    env[name] = typeof v === 'string' ? resolveSecret(v, ctx.baseDir, source) : v.value;
  }
  return env;
}

/** The credential for traffic of the connection itself (initialize, the GET stream), when no call is being forwarded. */
export type ConnectionCredential = () => Promise<DownstreamCredential | undefined>;

/**
 * Every HTTP request to the upstream gets the static headers, then the user's
 * downstream credential: the one obtained for the call in flight, else the
 * connection's. A credential that cannot be had fails the request (closed).
 */
async function requestHeaders(
  staticHeaders: Record<string, string>,
  connection: ConnectionCredential | undefined,
): Promise<Record<string, string>> {
  const cred = callCredential.getStore() ?? (connection ? await connection() : undefined);
  // Trace context first: neither it nor anything else can stand in for the declared headers or the credential.
  return { ...callTraceHeaders.getStore(), ...staticHeaders, ...cred?.headers };
}

/** The same headers on the SDK's fetch-based SSE transport (2024-11-05 upstreams). */
function credentialFetch(
  staticHeaders: Record<string, string>,
  connection: ConnectionCredential | undefined,
): typeof fetch {
  return async (url, init) => {
    const headers = new Headers(init?.headers);
    for (const [h, v] of Object.entries(await requestHeaders(staticHeaders, connection))) headers.set(h, v);
    return fetch(url, { ...init, headers });
  };
}

/** Who a stdio child runs for: `{user}` in its args and cwd, and the user's credential in its environment. */
export interface ChildUser {
  subject: string;
  /** The downstream credential's value for perUser.credentialEnv (without a `Bearer ` prefix). */
  credential?: string;
}

/** A subject becomes part of a path or argument only if it cannot name another place (`..`, `/`, empty). */
const SAFE_SUBJECT = /^[A-Za-z0-9_-][A-Za-z0-9._@-]{0,127}$/;

function forUser(template: string, user: ChildUser | undefined): string {
  if (!template.includes('{user}')) return template;
  if (!user || !SAFE_SUBJECT.test(user.subject) || user.subject === '..') {
    throw new BehalfError(
      'forbidden',
      "this upstream runs per user, and the user's subject cannot name a folder or argument",
    );
  }
  return template.replaceAll('{user}', user.subject);
}

export function createTransport(
  name: string,
  cfg: UpstreamConfig,
  ctx: UpstreamFactoryContext,
  credential?: ConnectionCredential,
  user?: ChildUser,
): UpstreamTransport {
  if (cfg.transport === 'stdio') {
    // Without a declared cwd the child gets a private empty folder, never the gateway's own.
    const cwd = cfg.cwd ? resolve(ctx.baseDir, forUser(cfg.cwd, user)) : mkdtempSync(join(tmpdir(), `behalf-${name}-`));
    const env = childEnvironment(cfg, ctx);
    if (cfg.perUser.credentialEnv && user?.credential) env[cfg.perUser.credentialEnv] = user.credential;
    return new StdioClientTransport({
      command: cfg.command,
      args: cfg.args.map((a) => forUser(a, user)),
      cwd,
      removeCwdOnClose: !cfg.cwd,
      env,
      uid: cfg.perUser.uid,
      gid: cfg.perUser.gid,
      onStderr: (line) => ctx.log(`[upstream ${name}] ${line}`),
    });
  }
  const headers: Record<string, string> = {};
  for (const [h, ref] of Object.entries(cfg.headers)) headers[h] = resolveSecret(ref, ctx.baseDir, ctx.env);
  const url = new URL(cfg.url);
  if (cfg.transport === 'streamable-http')
    return new StreamableHttpTransport({
      url,
      pools: ctx.pools,
      headers: () => requestHeaders(headers, credential),
      headersTimeoutMs: cfg.requestTimeoutMs,
      log: (line) => ctx.log(`[upstream ${name}] ${line}`),
    });
  const withCredential = credentialFetch(headers, credential);
  // The SDK's transport fits the interface but types messages as its own (zod-derived) type.
  return new SSEClientTransport(url, {
    fetch: withCredential,
    eventSourceInit: { fetch: withCredential },
  }) as unknown as UpstreamTransport;
}

export function connectUpstream(
  name: string,
  cfg: UpstreamConfig,
  ctx: UpstreamFactoryContext,
  credential?: ConnectionCredential,
  user?: ChildUser,
): UpstreamConnection {
  return new UpstreamConnection(createTransport(name, cfg, ctx, credential, user), cfg.requestTimeoutMs);
}
