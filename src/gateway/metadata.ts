import type { GatewayConfig } from '../config/schema.js';
import type { GatewayRuntime } from './runtime.js';
import type { Route } from './route.js';

/** RFC 9728 protected-resource metadata of one resource: a gateway route, or a server protected in-process (src/sdk/). */
export function resourceMetadata(config: GatewayConfig, resource: string, name: string): Record<string, unknown> {
  return {
    resource,
    authorization_servers: config.userAuth.issuers.map((i) => i.issuer),
    bearer_methods_supported: ['header'],
    ...(config.userAuth.scopes.length ? { scopes_supported: config.userAuth.scopes } : {}),
    resource_name: name,
  };
}

/** RFC 9728 protected-resource metadata for one upstream route. */
export function protectedResourceMetadata(rt: GatewayRuntime, route: Route): Record<string, unknown> {
  return resourceMetadata(rt.config, route.resource, `behalf gateway: ${route.name}`);
}

/** Where RFC 9728 §3.1 puts the metadata of `resource`: the well-known path inserted before the resource's path. */
export function metadataUrlFor(resource: string): string {
  const u = new URL(resource);
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
  return `${u.origin}/.well-known/oauth-protected-resource${path}`;
}
