import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { stringify } from 'yaml';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { RPC } from '../src/errors.js';
import { callBinding } from '../src/identity/user-context.js';
import { auditRows, PLATFORM, startFleet, type Fleet } from './helpers/fleet.js';
import { openSession, postJson, rpcError, rpcResult, toolCall, type RawResponse } from './helpers/raw-http.js';
import { dropPrefix, testPrefix } from './helpers/redis-test.js';
import { OWN_ROOT } from './helpers/spawned-gateway.js';

const run = promisify(execFile);

/** At most this long for a change made on one instance to be in force on all: the bound. */
const IN_FORCE_MS = 1000;

const RATE_LIMIT = { id: 'fleet-list', per: ['user'], tools: ['list_customers'], capacity: 5, refillPerSecond: 0.01 };
const POLICY = { rules: DEMO_POLICY, rateLimits: [RATE_LIMIT] };

type Msg = { jsonrpc: '2.0'; id: number; method: string; params: Record<string, unknown> };

describe('a fleet of three gateway processes sharing Redis: single-use state and changes in force', () => {
  const prefix = testPrefix();
  let fleet: Fleet;

  before(async () => {
    fleet = await startFleet({ size: 3, prefix, policy: POLICY });
  });
  after(async () => {
    await fleet?.close();
    await dropPrefix(prefix);
  });

  const agentOnly = () => ({ 'x-api-key': fleet.keys.main });
  const asUser = async (user: string, key = fleet.keys.main) => ({
    'x-api-key': key,
    authorization: `Bearer ${await fleet.tokenFor(user)}`,
  });

  /** The platform's assertion that `user` makes exactly `msg`, for the fleet's public resource. */
  async function assertion(user: string, owns: string[], msg: Msg): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    return new SignJWT({
      sub: user,
      role: 'rep',
      customers: owns,
      client_id: 'agent',
      jti: randomBytes(12).toString('base64url'),
      call: callBinding(msg),
    })
      .setProtectedHeader({ alg: 'ES256', kid: fleet.platformKey.kid, typ: 'JWT' })
      .setIssuer(PLATFORM)
      .setAudience(fleet.resource)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 30)
      .sign(fleet.platformKey.key);
  }
  const withAssertion = (msg: Msg, jwt: string) => ({
    ...msg,
    params: { ...msg.params, _meta: { 'behalf/user': jwt } },
  });

  it('a signed-context jti used on one instance is refused on the others; a fresh one passes', async () => {
    const [a, b, c] = fleet.instances;
    const sessions = await Promise.all(fleet.instances.map((i) => openSession(i.url, agentOnly())));
    const msg = toolCall('get_customer', { customer_id: 'c-100' }) as Msg;
    const body = withAssertion(msg, await assertion('alice', ['c-100'], msg));
    const first = await postJson(a!.url, agentOnly(), body, sessions[0]);
    assert.match(JSON.stringify(rpcResult(first)), /c-100/, 'positive control: first use on instance 1');
    for (const [n, i] of [b!, c!].entries()) {
      const replay = await postJson(i.url, agentOnly(), body, sessions[n + 1]);
      assert.deepEqual(rpcError(replay), { code: RPC.Forbidden, message: 'Signed user context is invalid' });
      const refused = auditRows(i, "kind = 'auth-failure' AND reason LIKE '%replayed%'");
      assert.equal(refused.length, 1, `${i.id} records the replay`);
    }
    // Positive control: the same call with a fresh assertion passes on the instance that refused the replay.
    const fresh = await postJson(
      b!.url,
      agentOnly(),
      withAssertion(msg, await assertion('alice', ['c-100'], msg)),
      sessions[1],
    );
    assert.match(JSON.stringify(rpcResult(fresh)), /c-100/);
  });

  it('a rate limit of 5 per user holds for the fleet: the 6th call is refused whichever instance takes it', async () => {
    const bob = await asUser('bob');
    const sessions = await Promise.all(fleet.instances.map((i) => openSession(i.url, bob)));
    const answers: RawResponse[] = [];
    for (let n = 0; n < 8; n++) {
      const i = n % 3;
      answers.push(
        await postJson(fleet.instances[i]!.url, bob, toolCall('list_customers', { owner: 'bob' }), sessions[i]),
      );
    }
    const codes = answers.map((r) => (r.json as { error?: { code: number } }).error?.code ?? 'ok');
    assert.deepEqual(codes, ['ok', 'ok', 'ok', 'ok', 'ok', RPC.RateLimited, RPC.RateLimited, RPC.RateLimited]);
    // Positive control: another user's bucket is her own.
    const alice = await asUser('alice');
    const r = await postJson(
      fleet.instances[2]!.url,
      alice,
      toolCall('list_customers', { owner: 'alice' }),
      await openSession(fleet.instances[2]!.url, alice),
    );
    assert.ok(rpcResult(r));
  });

  it('a key revoked on one instance is refused on every instance within 1 s; the other key still works', async () => {
    const carol = await asUser('carol');
    for (const i of fleet.instances) await openSession(i.url, carol); // positive control: the key works everywhere
    const [first] = fleet.instances;
    await run(process.execPath, [
      join(OWN_ROOT, 'src/cli/main.js'),
      'keys',
      'revoke',
      '--config',
      first!.configPath,
      '--id',
      'agent-main',
      '--reason',
      'fleet test',
    ]);
    await sleep(IN_FORCE_MS);
    for (const i of fleet.instances) {
      const r = await postJson(i.url, carol, toolCall('get_customer', { customer_id: 'c-100' }));
      assert.equal(r.status, 401, `${i.id} still takes the revoked key: ${r.text}`);
    }
    const spare = await asUser('carol', fleet.keys.spare);
    for (const i of fleet.instances) await openSession(i.url, spare);
    // Each instance records the revocation in force once, naming itself.
    for (const i of fleet.instances) {
      const rows = auditRows(i, "kind = 'key' AND outcome = 'key revoked' AND credential_id = 'agent-main'");
      assert.equal(rows.length, 1, `${i.id}: ${JSON.stringify(rows)}`);
      assert.equal(rows[0]!.instance_id, i.id);
    }
    assert.match(
      auditRows(fleet.instances[1]!, "kind = 'key' AND outcome = 'key revoked'")[0]!.reason as string,
      /fleet change/,
    );
  });

  it('a policy reloaded on one instance is in force on every instance within 1 s, recorded once by each', async () => {
    const carol = await asUser('carol', fleet.keys.spare);
    const sessions = await Promise.all(fleet.instances.map((i) => openSession(i.url, carol)));
    const call = () => toolCall('get_customer', { customer_id: 'c-200' });
    for (const [n, i] of fleet.instances.entries())
      assert.ok(rpcResult(await postJson(i.url, carol, call(), sessions[n])));
    // Managers lose get_customer; only instance 1 watches the file, the others hear of it from the fleet.
    const rules = DEMO_POLICY.map((r) => (r.id === 'managers-read-all' ? { ...r, tools: ['list_customers'] } : r));
    writeFileSync(fleet.policyPath, stringify({ rules, rateLimits: [RATE_LIMIT] }));
    await fleet.waitForLine(fleet.instances[0]!, /policy reloaded: version/, 5000);
    await sleep(IN_FORCE_MS);
    for (const [n, i] of fleet.instances.entries()) {
      const r = await postJson(i.url, carol, call(), sessions[n]);
      assert.deepEqual(rpcError(r), { code: RPC.Forbidden, message: 'Forbidden: not allowed for this user' }, i.id);
      const reloads = auditRows(i, "kind = 'policy' AND outcome = 'reloaded'");
      assert.equal(reloads.length, 1, `${i.id}: ${JSON.stringify(reloads)}`);
      assert.equal(reloads[0]!.instance_id, i.id);
      if (n > 0) assert.equal(reloads[0]!.reason, 'fleet change announced by gw-1');
    }
  });

  it('Redis unreachable: 503 with a clear message and a loud log line, then service resumes by itself', async () => {
    const spare = await asUser('alice', fleet.keys.spare);
    const sessions = await Promise.all(fleet.instances.map((i) => openSession(i.url, spare)));
    const marks = fleet.instances.map((i) => i.output.length);
    await fleet.proxy.stop();
    try {
      for (const [n, i] of fleet.instances.entries()) {
        await fleet.waitForLine(i, /SHARED STATE UNAVAILABLE/, 5000, marks[n]);
        const r = await postJson(i.url, spare, toolCall('get_customer', { customer_id: 'c-100' }), sessions[n]);
        assert.equal(r.status, 503, `${i.id}: ${r.text}`);
        assert.equal(r.headers['retry-after'], '1');
        assert.match(r.text, /shared gateway state unavailable/);
        assert.doesNotMatch(r.text, /redis|6379|ECONN/i, 'nothing internal');
      }
    } finally {
      await fleet.proxy.start();
    }
    for (const [n, i] of fleet.instances.entries()) {
      const deadline = Date.now() + 15_000;
      let r: RawResponse;
      do {
        await sleep(100);
        r = await postJson(i.url, spare, toolCall('get_customer', { customer_id: 'c-100' }), sessions[n]);
      } while (r.status === 503 && Date.now() < deadline);
      assert.match(JSON.stringify(rpcResult(r)), /c-100/, `${i.id} serves again`);
    }
    // What the fleet knew before the outage still holds: the revoked key stays refused.
    const main = await asUser('alice');
    for (const i of fleet.instances) assert.equal((await postJson(i.url, main, toolCall('x'))).status, 401);
  });
});
