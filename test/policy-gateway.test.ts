/**
 * Policy behaviour through the real gateway, dev IdP and demo CRM: unknown
 * and configured methods, evaluation errors (fail closed, audited), rules on
 * the tool annotations the upstream declared, rate limits, and step-up
 * scopes on both HTTP transports. Every denial has its positive control.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import type { AuditRecord } from '../src/audit/event.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import {
  openSession,
  postJson,
  rawRequest,
  rawStream,
  rpc,
  rpcError,
  rpcResult,
  toolCall,
  type RawResponse,
} from './helpers/raw-http.js';

const FORBIDDEN = { code: -32003, message: 'Forbidden: not allowed for this user' };

const EXTRA_RULES = [
  {
    // Wrong type on purpose: startsWith on a number has no overload, so it throws at evaluation.
    id: 'odd-ids-deny',
    effect: 'deny',
    upstreams: ['crm'],
    tools: ['get_customer'],
    when: 'args.customer_id.startsWith("c-9")',
  },
  {
    id: 'reps-no-destructive',
    effect: 'deny',
    upstreams: ['crm'],
    tools: ['*'],
    when: 'user.claims.role == "rep" && tool.annotations.destructiveHint == true',
  },
  {
    id: 'managers-stats',
    effect: 'allow',
    upstreams: ['crm'],
    methods: ['crm/stats'],
    when: 'user.claims.role == "manager"',
  },
];

describe('policy in the gateway', () => {
  let fx: Fixture;
  let url: string;
  const sessions = new Map<string, { headers: Record<string, string>; sid: string }>();

  async function as(user: string) {
    let s = sessions.get(user);
    if (!s) {
      const headers = await fx.headersFor(user);
      s = { headers, sid: await openSession(url, headers) };
      sessions.set(user, s);
    }
    return s;
  }
  async function send(user: string, body: Record<string, unknown>): Promise<RawResponse> {
    const s = await as(user);
    return postJson(url, s.headers, body, s.sid);
  }
  async function lastDecision(): Promise<AuditRecord> {
    return (await fx.gateway.runtime.audit.query({ kind: 'decision', limit: 1 }))[0]!;
  }

  before(async () => {
    fx = await startFixture({
      policy: {
        rules: [...DEMO_POLICY, ...EXTRA_RULES],
        methods: { 'crm/stats': { reason: 'vendor extension: aggregate counts', decide: 'rules' } },
        rateLimits: [
          { id: 'list-per-user', per: ['user', 'tool'], tools: ['list_customers'], capacity: 2, refillPerSecond: 0.01 },
        ],
      },
    });
    url = fx.gateway.urlFor('crm');
  });
  after(() => fx?.close());

  it('an unknown method is denied and audited, while tools/list on the same session works', async () => {
    rpcResult(await send('alice', rpc('tools/list')));
    const r = await send('alice', rpc('tools/delete', { name: 'get_customer' }));
    assert.deepEqual(rpcError(r), FORBIDDEN);
    const d = await lastDecision();
    assert.deepEqual([d.method, d.decision, d.ruleIds], ['tools/delete', 'deny', ['method-table:unknown']]);
  });

  it("a configured custom method needs an allow rule: carol's reaches the upstream, alice's does not", async () => {
    const carol = await send('carol', rpc('crm/stats'));
    // The CRM does not implement it: its own "method not found" proves the call was forwarded.
    assert.equal(rpcError(carol).code, -32601);
    assert.deepEqual((await lastDecision()).ruleIds, ['managers-stats']);
    assert.deepEqual(rpcError(await send('alice', rpc('crm/stats'))), FORBIDDEN);
    assert.deepEqual((await lastDecision()).reason, 'no rule allows this');
  });

  it('a rule that throws (wrong type) denies and is audited as an evaluation error; the well-typed call passes', async () => {
    const bad = await send('alice', toolCall('get_customer', { customer_id: 100 }));
    assert.deepEqual(rpcError(bad), FORBIDDEN);
    const d = await lastDecision();
    assert.deepEqual([d.decision, d.reason, d.ruleIds], ['deny', 'rule evaluation error', ['odd-ids-deny']]);
    const good = rpcResult(await send('alice', toolCall('get_customer', { customer_id: 'c-100' })));
    assert.match(JSON.stringify(good), /c-100/);
  });

  it('a rule that reads a missing argument denies (never allows) and is audited', async () => {
    assert.deepEqual(rpcError(await send('alice', toolCall('get_customer', {}))), FORBIDDEN);
    const d = await lastDecision();
    assert.equal(d.decision, 'deny');
    assert.equal(d.reason, 'rule evaluation error');
    assert.ok(d.ruleIds!.includes('reps-read-own'), `ruleIds ${JSON.stringify(d.ruleIds)}`);
  });

  it('rules see the annotations the upstream declared: reps are denied destructive tools, managers are not', async () => {
    const denied = await send('alice', toolCall('update_customer', { customer_id: 'c-100', notes: 'x' }));
    assert.deepEqual(rpcError(denied), FORBIDDEN);
    assert.deepEqual((await lastDecision()).ruleIds, ['reps-no-destructive']);
    rpcResult(await send('carol', toolCall('update_customer', { customer_id: 'c-100', notes: 'checked by carol' })));
    // The same annotations hide the tool from alice's list, and only there.
    const names = (u: string) =>
      send(u, rpc('tools/list')).then((r) => (rpcResult(r).tools as { name: string }[]).map((t) => t.name));
    assert.ok(!(await names('alice')).includes('update_customer'));
    assert.ok((await names('carol')).includes('update_customer'));
  });

  it('a tool the upstream does not list cannot be called, whatever the rules', async () => {
    assert.deepEqual(rpcError(await send('carol', toolCall('drop_database', {}))), FORBIDDEN);
    assert.deepEqual((await lastDecision()).ruleIds, ['catalog:unlisted-tool']);
  });

  it('a rate limit per user and tool refuses the third call with a retry hint; bob and other tools are unaffected', async () => {
    for (let i = 0; i < 2; i++) rpcResult(await send('alice', toolCall('list_customers', { owner: 'alice' })));
    const limited = await send('alice', toolCall('list_customers', { owner: 'alice' }));
    const err = limited.json as {
      error: { code: number; message: string; data: { retryAfterMs: number; retryAfterSeconds: number } };
    };
    assert.equal(err.error.code, -32029);
    assert.equal(err.error.message, 'Rate limit exceeded');
    assert.ok(
      err.error.data.retryAfterMs > 0 && err.error.data.retryAfterMs <= 100_000,
      `retryAfterMs ${err.error.data.retryAfterMs}`,
    );
    assert.equal(err.error.data.retryAfterSeconds, Math.ceil(err.error.data.retryAfterMs / 1000));
    const d = await lastDecision();
    assert.deepEqual([d.decision, d.ruleIds], ['deny', ['rate-limit:list-per-user']]);
    // Positive controls: the limit is per user and per tool.
    rpcResult(await send('bob', toolCall('list_customers', { owner: 'bob' })));
    rpcResult(await send('alice', toolCall('get_customer', { customer_id: 'c-101' })));
  });
});

describe('step-up scopes', () => {
  let fx: Fixture;
  let url: string;
  before(async () => {
    fx = await startFixture({});
    url = fx.gateway.urlFor('crm');
  });
  after(() => fx?.close());

  const update = toolCall('update_customer', { customer_id: 'c-100', notes: 'step-up' });

  function assertStepUpChallenge(r: RawResponse) {
    assert.equal(r.status, 403);
    const challenge = String(r.headers['www-authenticate']);
    assert.match(challenge, /^Bearer error="insufficient_scope"/);
    const scope = /scope="([^"]*)"/.exec(challenge)?.[1]?.split(' ') ?? [];
    assert.ok(scope.includes('crm:write'), `challenge ${challenge}`);
    assert.match(challenge, /resource_metadata="[^"]+\/.well-known\/oauth-protected-resource\/mcp\/crm"/);
  }

  it('Streamable HTTP: a token without crm:write gets 403 insufficient_scope naming it; with crm:write the call succeeds', async () => {
    const readOnly = {
      'x-api-key': fx.apiKey,
      authorization: `Bearer ${await fx.userToken('alice', { scope: 'mcp:tools crm:read' })}`,
    };
    const sid = await openSession(url, readOnly);
    // Reading needs no step-up: the same token and session work for get_customer.
    rpcResult(await postJson(url, readOnly, toolCall('get_customer', { customer_id: 'c-100' }), sid));
    assertStepUpChallenge(await postJson(url, readOnly, update, sid));
    const d = (await fx.gateway.runtime.audit.query({ kind: 'decision', limit: 1 }))[0]!;
    assert.deepEqual([d.decision, d.reason, d.ruleIds], ['deny', 'insufficient scope', ['reps-update-own']]);
    // One refusal, one record: the pipeline does not add an auth-failure row for an already audited decision.
    const failures = await fx.gateway.runtime.audit.query({ kind: 'auth-failure', limit: 10 });
    assert.equal(failures.filter((f) => f.reason?.startsWith('insufficient_scope')).length, 0);

    const full = await fx.headersFor('alice');
    const sid2 = await openSession(url, full);
    rpcResult(await postJson(url, full, update, sid2));
  });

  it('inside a batch the same refusal is a JSON-RPC error carrying the scopes', async () => {
    const readOnly = {
      'x-api-key': fx.apiKey,
      authorization: `Bearer ${await fx.userToken('alice', { scope: 'mcp:tools crm:read' })}`,
    };
    // A revision with batches (2025-06-18 removed them).
    const sid = await openSession(url, readOnly, '2025-03-26');
    const r = await postJson(
      url,
      readOnly,
      [
        { ...update, id: 41 },
        { ...toolCall('get_customer', { customer_id: 'c-100' }), id: 42 },
      ],
      sid,
    );
    assert.equal(r.status, 200, r.text);
    const answers = r.json as {
      id: number;
      error?: { code: number; data?: { error: string; scope: string } };
      result?: unknown;
    }[];
    const stepUp = answers.find((a) => a.id === 41)!;
    assert.equal(stepUp.error?.code, -32003);
    assert.equal(stepUp.error?.data?.error, 'insufficient_scope');
    assert.ok(stepUp.error?.data?.scope.split(' ').includes('crm:write'));
    assert.ok(answers.find((a) => a.id === 42)!.result, 'the other call of the batch is answered');
  });

  it('legacy SSE: the POST is refused with 403 before it is acknowledged; nothing reaches the stream', async () => {
    const readOnly = {
      'x-api-key': fx.apiKey,
      authorization: `Bearer ${await fx.userToken('alice', { scope: 'mcp:tools crm:read' })}`,
    };
    const stream = await rawStream(`${url}/sse`, readOnly);
    try {
      const endpoint = await stream.nextEvent();
      const messagesUrl = new URL(endpoint.data, url).href;
      const post = (body: unknown) =>
        rawRequest(messagesUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...readOnly },
          body: JSON.stringify(body),
        });
      assert.equal(
        (
          await post({
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 't', version: '1' } },
          })
        ).status,
        202,
      );
      await stream.nextEvent();
      assertStepUpChallenge(await post(update));
      // Positive control on the same stream: a read is acknowledged and answered there.
      assert.equal((await post({ ...toolCall('get_customer', { customer_id: 'c-100' }), id: 7 })).status, 202);
      const answer = JSON.parse((await stream.nextEvent()).data) as { id: number; result?: unknown };
      assert.equal(answer.id, 7);
      assert.ok(answer.result);
    } finally {
      stream.close();
    }
  });
});
