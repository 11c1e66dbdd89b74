/**
 * The revocation set's matching (src/revocation/revocation-set.ts): each
 * kind cuts off exactly what it names — a user by issuer or on every issuer,
 * only her tokens issued before it; a client; an API key only where it was
 * the credential; a token by jti or fingerprint; the key that signed it; a
 * session by fingerprint — and an expired revocation is forgotten. Each case
 * has a principal that must still pass beside it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Principal } from '../src/identity/principal.js';
import type { Revocation } from '../src/revocation/entry.js';
import { parseRevocation } from '../src/revocation/entry.js';
import { RevocationSet } from '../src/revocation/revocation-set.js';
import { RevocationService } from '../src/revocation/service.js';
import { AuditLog } from '../src/audit/audit-log.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { BehalfError } from '../src/errors.js';
import { forward } from '../src/gateway/message/steps/forward.js';
import type { MessageContext } from '../src/gateway/message/context.js';

const NOW = 1_800_000_000_000;
const ISS = 'https://idp.test';

function p(
  o: {
    sub?: string;
    client?: string;
    method?: Principal['client']['method'];
    cred?: string;
    iat?: number;
    jti?: string;
    kid?: string;
    iss?: string;
  } = {},
): Principal {
  return {
    client: { id: o.client ?? 'agent', method: o.method ?? 'api-key', credentialId: o.cred ?? 'k1' },
    user: {
      issuer: o.iss ?? ISS,
      subject: o.sub ?? 'alice',
      claims: {},
      scopes: [],
      tokenId: o.jti ?? 'jti-1',
      issuedAt: o.iat ?? NOW / 1000 - 60,
      keyId: o.kid ?? 'kid-1',
      expiresAt: NOW / 1000 + 600,
      tokenFingerprint: 'fp-1',
    },
  };
}

function set(...rs: Array<Partial<Revocation> & Pick<Revocation, 'kind' | 'value'>>): RevocationSet {
  const s = new RevocationSet();
  for (const r of rs) s.add({ reason: '', actor: 'test', source: 'admin', at: NOW, expiresAt: NOW + 60_000, ...r });
  return s;
}

describe('revocation matching', () => {
  it('a user on one issuer: her tokens issued before it, not after; not her namesake at another issuer', () => {
    const s = set({ kind: 'user', value: 'alice', issuer: ISS });
    assert.ok(s.refusalFor(p(), NOW));
    assert.ok(s.refusalFor(p({ iat: NOW / 1000 }), NOW), 'issued in the same second');
    assert.equal(s.refusalFor(p({ iat: NOW / 1000 + 1 }), NOW), undefined, 'issued after');
    assert.equal(s.refusalFor(p({ iss: 'https://other.test' }), NOW), undefined);
    assert.equal(s.refusalFor(p({ sub: 'bob' }), NOW), undefined);
    assert.ok(
      set({ kind: 'user', value: 'alice' }).refusalFor(p({ iss: 'https://other.test' }), NOW),
      'no issuer: every issuer',
    );
  });

  it('a client, an API key (only as the credential), a token, a signing key', () => {
    assert.ok(set({ kind: 'client', value: 'agent' }).refusalFor(p(), NOW));
    assert.equal(set({ kind: 'client', value: 'agent' }).refusalFor(p({ client: 'other' }), NOW), undefined);
    assert.ok(set({ kind: 'key', value: 'k1' }).refusalFor(p(), NOW));
    assert.equal(
      set({ kind: 'key', value: 'k1' }).refusalFor(p({ method: 'mtls' }), NOW),
      undefined,
      'an mTLS id is no key id',
    );
    assert.ok(set({ kind: 'token', value: 'jti-1' }).refusalFor(p(), NOW));
    assert.ok(set({ kind: 'token', value: 'fp-1' }).refusalFor(p({ jti: 'x' }), NOW), 'by fingerprint');
    assert.equal(set({ kind: 'token', value: 'jti-1' }).refusalFor(p({ jti: 'jti-2' }), NOW)?.kind, undefined);
    assert.ok(set({ kind: 'signing-key', value: 'kid-1', issuer: ISS }).refusalFor(p(), NOW));
    assert.equal(
      set({ kind: 'signing-key', value: 'kid-1', issuer: ISS }).refusalFor(p({ kid: 'kid-2' }), NOW),
      undefined,
    );
  });

  it('a session by fingerprint; an expired revocation is forgotten; nothing revoked is one size test', () => {
    const s = set({ kind: 'session', value: 'abcd' }, { kind: 'user', value: 'alice', expiresAt: NOW + 10 });
    assert.ok(s.hasSessions);
    assert.ok(s.sessionRefusal('abcd', NOW));
    assert.equal(s.sessionRefusal('dcba', NOW), undefined);
    assert.ok(s.refusalFor(p(), NOW));
    assert.equal(s.refusalFor(p(), NOW + 11), undefined);
    assert.equal(s.size, 1);
    s.purge(NOW + 60_001);
    assert.equal(s.size, 0);
    assert.equal(s.hasSessions, false);
  });

  it('what comes over the wire is parsed strictly, never thrown', () => {
    assert.equal(parseRevocation('not json'), undefined);
    assert.equal(parseRevocation('{"kind":"everything","value":"x"}'), undefined);
    const r = { kind: 'user', value: 'alice', reason: '', actor: 'a', source: 'admin', at: 1, expiresAt: 2 };
    assert.deepEqual(parseRevocation(JSON.stringify(r)), r);
    assert.equal(parseRevocation(JSON.stringify({ ...r, extra: 1 })), undefined);
  });
});

describe('a call decided before its user was revoked', () => {
  it('is not forwarded: the forward step checks again and refuses, before touching any upstream', async () => {
    const audit = new AuditLog(new SqliteAuditStore(':memory:'));
    const service = new RevocationService({ ttlMs: 60_000, audit, log: () => {}, instanceId: 't' });
    try {
      const alice = p({ iat: Math.floor(Date.now() / 1000) - 5 });
      // Nothing but what forward reads before it would reach the upstream: the runtime's revocations and the principal.
      const m = { http: { rt: { revocations: { service } } }, principal: alice } as unknown as MessageContext;
      await service.revoke({ kind: 'user', value: 'alice', actor: 'test', source: 'admin' });
      await assert.rejects(
        async () => forward.run(m),
        (err: unknown) =>
          err instanceof BehalfError && err.code === 'forbidden' && /revoked while in flight/.test(err.message),
      );
      // Positive control: bob's message gets past the check (and then fails only for want of a session here).
      const bob = { ...m, principal: p({ sub: 'bob' }) } as MessageContext;
      await assert.rejects(
        async () => forward.run(bob),
        (err: unknown) => !(err instanceof BehalfError && err.code === 'forbidden'),
      );
    } finally {
      service.close();
      await audit.close();
    }
  });
});
