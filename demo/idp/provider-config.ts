import type { AsymmetricSigningAlgorithm, ClientMetadata, Configuration } from 'oidc-provider';
import { signingAlgOf } from './keys.js';
import { createMemoryAdapter } from './memory-adapter.js';
import { resourceServerInfo, type ResourcePolicy } from './resource.js';
import type { DevClient, DevUser } from './types.js';

export interface ProviderSettings {
  users: ReadonlyMap<string, DevUser>;
  clients: readonly DevClient[];
  policy: ResourcePolicy;
  ttlSeconds: number;
  jwks: { keys: object[] };
  /** Claims particular to one token (an exchanged token's `act`), by token instance. */
  extraClaims: WeakMap<object, Record<string, unknown>>;
}

export const ROUTES = { token: '/token', jwks: '/jwks' } as const;

export function resourcePolicyFor(
  jwks: { keys: object[] },
  scopes: readonly string[],
  acceptResource: (resource: string) => boolean,
): ResourcePolicy {
  const first = jwks.keys[0];
  if (!first) throw new Error('dev IdP: jwks must hold at least one signing key');
  return { acceptResource, scopes, signingAlg: signingAlgOf(first) };
}

function toClientMetadata(c: DevClient): ClientMetadata {
  return {
    client_id: c.clientId,
    client_secret: c.clientSecret,
    grant_types: [...c.grantTypes],
    // No browser flows: without these the schema would demand redirect URIs for the code flow.
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic', // oidc-provider also accepts client_secret_post for it
    ...(c.scope ? { scope: c.scope } : {}),
  };
}

export function providerConfig(s: ProviderSettings): Configuration {
  return {
    adapter: createMemoryAdapter(),
    jwks: s.jwks as Configuration['jwks'],
    clients: s.clients.map(toClientMetadata),
    // Listing the resource scopes here is what lets a client's `scope` metadata restrict them.
    scopes: [...s.policy.scopes],
    routes: ROUTES,
    // The client schema insists this default is an algorithm the keystore can sign with (it is RS256).
    clientDefaults: { id_token_signed_response_alg: s.policy.signingAlg as AsymmetricSigningAlgorithm },
    // For client_credentials tokens oidc-provider sets sub = client_id (as RFC 9068 suggests) and there is no user to add.
    // An exchanged token also names its actor; the user's may_act constrained the subject token, not this one.
    extraTokenClaims: (_ctx, token) => {
      if (token.kind !== 'AccessToken') return undefined;
      const claims = structuredClone(s.users.get(token.accountId)?.claims ?? {});
      const extra = s.extraClaims.get(token);
      if (extra) delete claims.may_act;
      const all = { ...claims, ...extra };
      return Object.keys(all).length ? all : undefined;
    },
    // No browser flows at all, so discovery advertises only the grants that work here.
    responseTypes: [],
    features: {
      // Its login pages are for manual trials; we issue user tokens through the password grant only.
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: (_ctx, resource) => resourceServerInfo(s.policy, resource),
      },
    },
    // Numbers rather than the defaults, whose functions print a "you SHOULD change" notice on first use.
    ttl: { AccessToken: s.ttlSeconds, ClientCredentials: s.ttlSeconds, Grant: s.ttlSeconds },
    // Token requests come from Node, never from browser pages; the default prints a notice.
    clientBasedCORS: () => false,
  };
}
