import type { Principal } from '../identity/principal.js';
import type { PolicyInput } from './rules.js';

const NO_USER = { authenticated: false, issuer: '', sub: '', claims: {}, scopes: [] as string[] };

/** The principal-side variables of a decision; the call-side ones (tool, args, …) are added per message. */
export function principalInput(p: Principal, upstream: string, method: string, transport: string): PolicyInput {
  return {
    user: p.user
      ? {
          authenticated: true,
          issuer: p.user.issuer,
          sub: p.user.subject,
          claims: p.user.claims,
          scopes: p.user.scopes,
        }
      : NO_USER,
    client: { id: p.client.id, method: p.client.method },
    upstream,
    request: { method, transport },
  };
}
