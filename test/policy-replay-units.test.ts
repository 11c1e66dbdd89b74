import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { decisionInputFields } from '../src/audit/decision-inputs.js';
import type { AuditRecord } from '../src/audit/event.js';
import { sinceTime } from '../src/cli/policy-replay.js';
import { policyEnvironment } from '../src/policy/environment.js';
import { compilePolicy } from '../src/policy/policy.js';
import { Replayer } from '../src/policy/replay/decide.js';
import { ruleReads } from '../src/policy/replay/reads.js';

const reads = (expr: string) => ruleReads(policyEnvironment().parse(expr).ast);
const keys = (s: Set<string>) => [...s].sort();

function policy(rules = DEMO_POLICY) {
  return compilePolicy({ rules, rateLimits: [], methods: {} }, ['crm']);
}

/** A decision record as the gateway writes one for alice, overridable field by field. */
function record(o: Partial<AuditRecord>): AuditRecord {
  return {
    seq: 1,
    prevHash: '',
    hash: '',
    ts: 0,
    kind: 'decision',
    upstream: 'crm',
    transport: 'streamable-http',
    clientId: 'agent',
    clientMethod: 'api-key',
    userIssuer: 'https://idp',
    userSubject: 'alice',
    method: 'tools/call',
    target: 'get_customer',
    args: '{"customer_id":"c-100"}',
    decision: 'allow',
    ruleIds: ['reps-read-own'],
    reason: 'allowed by rule',
    userScopes: 'mcp:tools',
    userClaims: JSON.stringify({ claims: { role: 'rep', customers: ['c-100'] }, absent: [] }),
    ...o,
  };
}

describe('policy replay: what a rule reads', () => {
  it('tells value reads by a constant key from presence tests and reads of the whole map', () => {
    const r = reads('has(args.owner) && args.owner == user.sub && args["id"].x > 1 && user.claims.role == "rep"');
    assert.deepEqual(keys(r.args.keys), ['id', 'owner']);
    assert.deepEqual(keys(r.args.presence), ['owner']);
    assert.equal(r.args.whole, false);
    assert.deepEqual(keys(r.claims.keys), ['role']);
    assert.equal(r.scopes, false);
    for (const whole of ["'x' in args", 'size(args) > 0', 'args[user.sub] == 1', 'args.all(k, k == "x")'])
      assert.equal(reads(whole).args.whole, true, whole);
    assert.equal(reads('has(prompt.arguments.id)').promptArgs.presence.has('id'), true);
    assert.equal(reads('"a" in user.scopes').scopes, true);
    assert.equal(reads('tool.annotations.readOnlyHint == true').annotations.keys.has('readOnlyHint'), true);
    // A word in a string is no read.
    assert.equal(reads('"args.x" == user.sub').args.keys.size, 0);
  });
});

describe('policy replay: records written before scopes and claims were recorded', () => {
  it('decides what does not depend on them and names what does', () => {
    const replayer = new Replayer(policy());
    const old = { userScopes: undefined, userClaims: undefined };
    // Housekeeping reads nothing of the user.
    const init = replayer.replay(
      record({
        ...old,
        method: 'initialize',
        target: undefined,
        args: undefined,
        ruleIds: ['method-table:initialize'],
      }),
    );
    assert.equal(init.kind, 'decided');
    // A read decided by claims: the claims are not there.
    const read = replayer.replay(record(old));
    assert.equal(read.kind, 'undecidable');
    assert.deepEqual(read.kind === 'undecidable' ? [...new Set(read.unknown.map((u) => u.read))].sort() : [], [
      'user.claims.customers',
      'user.claims.role',
    ]);
    // With claims but no scopes: an update allowed with crm:write and refused without it cannot be told apart.
    const update = replayer.replay(
      record({ userScopes: undefined, target: 'update_customer', ruleIds: ['reps-update-own'] }),
    );
    assert.equal(update.kind, 'undecidable');
    assert.ok(update.kind === 'undecidable' && update.unknown.some((u) => u.read === 'user.scopes'));
    assert.deepEqual(update.kind === 'undecidable' ? update.rules : [], ['reps-update-own']);
    // Positive control: the same record with its scopes is decided (step-up, as recorded scopes lack crm:write).
    const withScopes = replayer.replay(record({ target: 'update_customer' }));
    assert.equal(withScopes.kind, 'decided');
    assert.ok(withScopes.kind === 'decided' && withScopes.stepUp);
  });

  it('a value redacted as a secret is undecidable and says it can never be recorded', () => {
    const replayer = new Replayer(policy());
    const v = replayer.replay(record({ args: '{"customer_id":"[redacted secret]"}' }));
    assert.equal(v.kind, 'undecidable');
    assert.deepEqual(v.kind === 'undecidable' ? v.unknown.map((u) => [u.read, u.why]) : [], [
      ['args.customer_id', 'secret'],
    ]);
  });
});

describe('policy replay: what a decision record keeps of the user', () => {
  it('the claims the policy reads and audit.claims.keep, never a secret-looking value', () => {
    const principal = {
      client: { id: 'agent', method: 'api-key' as const, credentialId: 'k1' },
      user: {
        issuer: 'https://idp',
        subject: 'alice',
        claims: {
          role: 'rep',
          api_token: 'plain-looking',
          badge: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz',
          unread: 'x',
        },
        scopes: ['mcp:tools', 'crm:read'],
        expiresAt: 0,
        tokenFingerprint: 'f',
      },
    };
    const f = decisionInputFields(principal, ['role', 'team'], ['api_token', 'badge']);
    assert.equal(f.userScopes, 'mcp:tools crm:read');
    assert.deepEqual(JSON.parse(f.userClaims!), {
      claims: { api_token: '[redacted secret]', badge: '[redacted secret]', role: 'rep' },
      absent: ['team'],
    });
    assert.ok(!f.userClaims!.includes('eyJ') && !f.userClaims!.includes('unread'));
    assert.deepEqual(decisionInputFields({ client: principal.client }, ['role'], []), {});
  });
});

describe('policy replay: --since', () => {
  it('takes durations back from now, ISO-8601 times and epoch ms', () => {
    assert.equal(sinceTime('7d', 1_000_000_000), 1_000_000_000 - 7 * 86_400_000);
    assert.equal(sinceTime('30m', 10_000_000), 10_000_000 - 1_800_000);
    assert.equal(sinceTime('2026-01-01T00:00:00Z'), Date.parse('2026-01-01T00:00:00Z'));
    assert.equal(sinceTime('12345'), 12345);
    assert.throws(() => sinceTime('soon'), /--since must be/);
  });
});
