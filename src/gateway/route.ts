import type { UpstreamConfig } from '../config/schema.js';
import type { StrategyName } from '../delegation/types.js';
import type { InboundSource } from '../identity/user-context.js';

/**
 * How upstreams are addressed: each has its own path, so each is its own
 * protected resource with its own audience and metadata document, and a
 * token for one upstream is never accepted by another.
 *
 *   /mcp/<name>             Streamable HTTP (2025-03-26 … 2025-11-25, and stateless 2026-07-28)
 *   /mcp/<name>/sse         legacy HTTP+SSE stream (2024-11-05)
 *   /mcp/<name>/messages    legacy HTTP+SSE POST endpoint announced by the stream
 *   /.well-known/oauth-protected-resource/mcp/<name>   RFC 9728 metadata
 *   /.well-known/jwks.json  the gateway's public signing keys (with a key store; see src/keys/signer.ts)
 *
 * The legacy endpoints sit below the resource path, so the same resource
 * identifier and token serve both transports of one upstream.
 */
export interface Route {
  name: string;
  upstream: UpstreamConfig;
  /** The RFC 8707 resource identifier and required token audience. */
  resource: string;
  metadataUrl: string;
  mcpPath: string;
  ssePath: string;
  messagesPath: string;
  /** What the upstream receives instead of the caller's credentials; named in every audit row. */
  downstreamStrategy: StrategyName;
}

function downstreamStrategyOf(u: UpstreamConfig): StrategyName {
  if (u.transport === 'stdio') return 'per-user-process';
  if (u.downstream.strategy !== 'none') return u.downstream.strategy;
  return Object.keys(u.headers).length ? 'service-account' : 'none';
}

/** How callers prove the user on this route (config `inbound`; stdio routes take tokens only). */
export function inboundOf(route: Route): readonly InboundSource[] {
  return route.upstream.transport === 'stdio' ? ['token', 'token-exchange'] : route.upstream.inbound;
}

/** Public halves of the gateway's signing keys, for upstreams that verify its user assertions. */
export const JWKS_PATH = '/.well-known/jwks.json';

export type Endpoint = 'mcp' | 'sse' | 'messages' | 'metadata';

export function buildRoutes(upstreams: Record<string, UpstreamConfig>, baseUrl: string): Map<string, Route> {
  const base = baseUrl.replace(/\/$/, '');
  const routes = new Map<string, Route>();
  for (const [name, upstream] of Object.entries(upstreams)) {
    const mcpPath = `/mcp/${name}`;
    routes.set(name, {
      name,
      upstream,
      resource: `${base}${mcpPath}`,
      metadataUrl: `${base}/.well-known/oauth-protected-resource${mcpPath}`,
      mcpPath,
      ssePath: `${mcpPath}/sse`,
      messagesPath: `${mcpPath}/messages`,
      downstreamStrategy: downstreamStrategyOf(upstream),
    });
  }
  return routes;
}

const MCP_PATH = /^\/mcp\/([a-z0-9][a-z0-9_-]{0,62})(\/sse|\/messages)?\/?$/;
const METADATA_PATH =
  /^\/\.well-known\/oauth-protected-resource\/mcp\/([a-z0-9][a-z0-9_-]{0,62})(?:\/sse|\/messages)?\/?$/;

export function resolveRoute(
  pathname: string,
  routes: Map<string, Route>,
): { route: Route; endpoint: Endpoint } | undefined {
  const meta = METADATA_PATH.exec(pathname);
  if (meta) {
    const route = routes.get(meta[1]!);
    return route && { route, endpoint: 'metadata' };
  }
  const m = MCP_PATH.exec(pathname);
  if (!m) return undefined;
  const route = routes.get(m[1]!);
  if (!route) return undefined;
  const endpoint: Endpoint = m[2] === '/sse' ? 'sse' : m[2] === '/messages' ? 'messages' : 'mcp';
  return { route, endpoint };
}
