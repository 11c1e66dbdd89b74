import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { UpstreamConfig } from '../../config/schema.js';
import { resolveSecret } from '../../config/secrets.js';
import { UpstreamConnection } from './connection.js';
import { StdioClientTransport } from './stdio-transport.js';

export interface UpstreamFactoryContext {
  baseDir: string;
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/** The child's whole environment: the allow-list copied from ours, plus declared values. */
export function childEnvironment(cfg: Extract<UpstreamConfig, { transport: 'stdio' }>, ctx: UpstreamFactoryContext): Record<string, string> {
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

export function createTransport(name: string, cfg: UpstreamConfig, ctx: UpstreamFactoryContext): Transport {
  if (cfg.transport === 'stdio') {
    // Without a declared cwd the child gets a private empty folder, never the gateway's own.
    const cwd = cfg.cwd ? resolve(ctx.baseDir, cfg.cwd) : mkdtempSync(join(tmpdir(), `behalf-${name}-`));
    return new StdioClientTransport({
      command: cfg.command,
      args: cfg.args,
      cwd,
      removeCwdOnClose: !cfg.cwd,
      env: childEnvironment(cfg, ctx),
      onStderr: (line) => ctx.log(`[upstream ${name}] ${line}`),
    });
  }
  const headers: Record<string, string> = {};
  for (const [h, ref] of Object.entries(cfg.headers)) headers[h] = resolveSecret(ref, ctx.baseDir, ctx.env);
  const url = new URL(cfg.url);
  return cfg.transport === 'sse'
    ? new SSEClientTransport(url, { requestInit: { headers }, eventSourceInit: { fetch: (u, init) => fetch(u, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } }) } })
    : new StreamableHTTPClientTransport(url, { requestInit: { headers } });
}

export function connectUpstream(name: string, cfg: UpstreamConfig, ctx: UpstreamFactoryContext): UpstreamConnection {
  return new UpstreamConnection(createTransport(name, cfg, ctx), cfg.requestTimeoutMs);
}
