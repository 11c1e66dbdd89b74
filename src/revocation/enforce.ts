import type { Principal } from '../identity/principal.js';
import type { GatewayRuntime } from '../gateway/runtime.js';
import { endSession } from '../gateway/session-binding.js';
import type { GatewaySession } from '../gateway/session.js';
import { describeRevocation, type Revocation } from './entry.js';
import type { RevocationService } from './service.js';

/**
 * What a revocation ends at once on this instance (docs/revocation.md):
 * every session of the revoked principal, token, client, key or session —
 * with its GET or legacy SSE stream, its streamed POST responses, its
 * upstream session (ended upstream too, not only left) and, on stdio routes,
 * its per-user process; on signed-context routes the revoked user's own
 * upstream connection inside an agent's session; and the downstream
 * credentials cached for the users whose sessions ended. Requests still to
 * come are refused by the per-request check and, for calls already past it,
 * by the check right before forwarding.
 */
export function enforceRevocations(rt: GatewayRuntime, service: RevocationService): void {
  service.onRevoked((r) => endRevoked(rt, service, r));
}

function endRevoked(rt: GatewayRuntime, service: RevocationService, r: Revocation): void {
  const reason = `revoked: ${describeRevocation(r)}`.slice(0, 500);
  const users = new Map<string, Principal>();
  for (const s of rt.sessions.all()) {
    if (service.check(s.principal) || service.sessionRevoked(s.fingerprint)) {
      if (s.principal.user) users.set(s.boundTo, s.principal);
      endSession(rt, s, reason, { everywhere: true });
      continue;
    }
    endRevokedUserUpstreams(s, service, users);
  }
  for (const p of users.values()) for (const d of rt.delegation.values()) d.forgetUser?.(p);
}

/** A signed-context session belongs to the agent; only the revoked users' connections inside it end. */
function endRevokedUserUpstreams(s: GatewaySession, service: RevocationService, users: Map<string, Principal>): void {
  if (!s.userUpstreams) return;
  for (const [key, entry] of s.userUpstreams) {
    if (!service.check(entry.principal)) continue;
    users.set(key, entry.principal);
    s.userUpstreams.delete(key);
    // A connection that never opened has nothing to close; its failure already answered the call that opened it.
    void entry.connection.then(
      (c) => c.close(),
      () => undefined,
    );
  }
}

/**
 * API keys revoked in the key store (`behalf keys revoke`, or the fleet's
 * revocations): the next request with one is refused by the authenticator;
 * the streams it holds open end here — a legacy SSE stream with its session
 * (the stream is the session), a GET stream and streamed POST responses on
 * their own. A Streamable session belongs to its client and user, not to one
 * of the client's keys, so it stays for the client's other keys (rotation);
 * `behalf revoke --key` ends it too.
 */
export function endKeyStreams(rt: GatewayRuntime, keyIds: readonly string[]): void {
  const ids = new Set(keyIds);
  for (const s of rt.sessions.all()) {
    const c = s.principal.client;
    if (c.method !== 'api-key' || !ids.has(c.credentialId)) continue;
    if (s.kind === 'legacy-sse') {
      endSession(rt, s, `revoked: API key ${c.credentialId} revoked in the key store`, { everywhere: true });
      continue;
    }
    s.stream?.close();
    for (const p of s.postStreams) p.close();
  }
}
