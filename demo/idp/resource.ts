import './runtime-notice.js';
import { errors, type AsymmetricSigningAlgorithm, type ResourceServer } from 'oidc-provider';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Default audience policy: only http(s) URLs on this machine, since the dev IdP only serves local demos and tests. */
export function isLoopbackResource(resource: string): boolean {
  const url = URL.parse(resource);
  return (
    url !== null &&
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    LOOPBACK_HOSTS.has(url.hostname) &&
    url.username === '' &&
    url.password === '' &&
    url.hash === ''
  );
}

export interface ResourcePolicy {
  acceptResource: (resource: string) => boolean;
  scopes: readonly string[];
  signingAlg: string;
}

/**
 * What oidc-provider should issue for a `resource`: an RFC 9068 JWT whose `aud` is the resource
 * string exactly as requested, carrying at most the configured scopes. Shared by the built-in
 * client_credentials grant (through `getResourceServerInfo`) and our password grant.
 */
export function resourceServerInfo(policy: ResourcePolicy, resource: string): ResourceServer {
  if (!policy.acceptResource(resource)) {
    throw new errors.InvalidTarget('resource is not served by this development IdP');
  }
  return {
    scope: policy.scopes.join(' '),
    audience: resource,
    accessTokenFormat: 'jwt',
    // Explicit, so the token's alg follows the configured key and never a client default.
    jwt: { sign: { alg: policy.signingAlg as AsymmetricSigningAlgorithm } },
  };
}
