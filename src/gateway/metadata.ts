import type { GatewayRuntime } from './runtime.js';
import type { Route } from './route.js';

/** RFC 9728 protected-resource metadata for one upstream route. */
export function protectedResourceMetadata(rt: GatewayRuntime, route: Route): Record<string, unknown> {
  return {
    resource: route.resource,
    authorization_servers: rt.config.userAuth.issuers.map((i) => i.issuer),
    bearer_methods_supported: ['header'],
    ...(rt.config.userAuth.scopes.length ? { scopes_supported: rt.config.userAuth.scopes } : {}),
    resource_name: `behalf gateway: ${route.name}`,
  };
}
