import { BehalfError } from '../errors.js';
import type { Step } from '../gateway/context.js';
import { headerValue } from '../gateway/http-io.js';
import { sessionFingerprint } from '../state/sessions.js';
import { describeRevocation } from './entry.js';

/**
 * After authentication, on every request (docs/revocation.md): an admin
 * credential is not an agent's; a revoked client, key, user, token, signing
 * key or session is refused; and, for issuers that introspect, the token
 * must still be active. While nothing is revoked the check is one size test.
 */
export const checkRevocation: Step = {
  name: 'check_revocation',
  why: 'a credential valid by itself may have been cut off since it was issued: revoked here, in the fleet, by its issuer or by a security event',
  async run(ctx) {
    const { rt } = ctx;
    const p = ctx.principal;
    if (!p) return;
    if (rt.revocations?.adminClient === p.client.id)
      throw new BehalfError('client_auth_invalid', 'an admin credential is not an agent credential');
    const service = rt.revocations?.service;
    if (service && service.set.size > 0) {
      const r = service.check(p);
      if (r)
        throw new BehalfError(
          r.kind === 'client' || r.kind === 'key' ? 'client_auth_invalid' : 'user_token_invalid',
          `revoked: ${describeRevocation(r)}`,
        );
      const sid = service.set.hasSessions
        ? (headerValue(ctx.req, 'mcp-session-id') ?? ctx.url.searchParams.get('sessionId') ?? undefined)
        : undefined;
      if (sid && service.sessionRevoked(sessionFingerprint(sid))) throw new BehalfError('session_unknown');
    }
    await rt.revocations?.introspection?.check(p);
  },
};
