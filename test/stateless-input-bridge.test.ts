/**
 * Input-required results bridged for a 2025-era upstream (docs/architecture.md
 * §4): a stateless (2026-07-28) client has no stream for the upstream's
 * mid-call requests, so the gateway answers the call with `input_required`,
 * parks the upstream call, and continues it when the client retries with
 * `inputResponses` and the `requestState` handle. The upstream is the raw
 * test server (official SDK 1.x, which speaks 2025-11-25) over stdio and HTTP.
 * Every refusal has its positive control: the rightful continuation works.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { AuditRecord } from '../src/audit/event.js';
import { MAX_PARKED_PER_PRINCIPAL } from '../src/gateway/stateless/input-bridge.js';
import { OTHER_AGENT, startFixture, type Fixture } from './helpers/fixture.js';
import { RAW_INPUT_TOOLS } from './helpers/raw-input-tools.js';
import { startRawHttpServer, type RawHttpServer } from './helpers/raw-mcp-http.js';
import { RAW_SERVER_STDIO } from './helpers/raw-mcp-server.js';
import { postRpc } from './helpers/transport-clients.js';
import { statelessHeaders, statelessMessage } from './helpers/transport-stateless.js';

const INVALID_PARAMS = -32602;
const FORBIDDEN = -32003;
const SHORT_TIMEOUT_MS = 1500;
const CAPS_KEY = 'io.modelcontextprotocol/clientCapabilities';
const ALL = { elicitation: {}, sampling: {}, roots: {} };

interface Reply {
  id?: number | string;
  result?: {
    resultType?: string;
    content?: Array<{ text: string }>;
    inputRequests?: Record<string, { method: string; params?: Record<string, unknown> }>;
    requestState?: string;
  };
  error?: { code: number; message: string };
}

const accept = (answer: string) => ({ action: 'accept', content: { answer } });

describe('input-required results bridged for a 2025-era upstream', () => {
  let fx: Fixture;
  let raw: RawHttpServer;
  const heads = new Map<string, Record<string, string>>();

  before(async () => {
    raw = await startRawHttpServer();
    fx = await startFixture({
      upstreams: {
        raw: RAW_SERVER_STDIO,
        rawhttp: { transport: 'streamable-http', url: raw.url },
        rawroots: { ...RAW_SERVER_STDIO, forwardClientRoots: true },
        rawshort: { ...RAW_SERVER_STDIO, requestTimeoutMs: SHORT_TIMEOUT_MS },
      },
      policy: [
        {
          id: 'input-tools',
          effect: 'allow',
          upstreams: ['raw', 'rawhttp', 'rawroots', 'rawshort'],
          tools: RAW_INPUT_TOOLS.filter((t) => t !== 'ask_about'),
        },
        {
          id: 'ask-about-own-customers',
          effect: 'allow',
          upstreams: ['raw'],
          tools: ['ask_about'],
          when: 'user.claims.role == "rep" && args.customer_id in user.claims.customers',
        },
      ],
    });
  });
  after(async () => {
    await fx?.close();
    await raw?.close();
  });

  async function headersOf(user: string, route: string): Promise<Record<string, string>> {
    const key = `${user}@${route}`;
    if (!heads.has(key)) heads.set(key, await fx.headersFor(user, { upstream: route }));
    return heads.get(key)!;
  }

  /** One stateless request declaring `caps`. */
  async function send(
    user: string,
    route: string,
    method: string,
    params: Record<string, unknown>,
    caps: Record<string, unknown> = ALL,
  ): Promise<Reply> {
    const msg = statelessMessage(method, params);
    (msg.params._meta as Record<string, unknown>)[CAPS_KEY] = caps;
    const reply = await postRpc(
      fx.gateway.urlFor(route),
      await headersOf(user, route),
      msg,
      statelessHeaders(method, params),
    );
    const body = reply.body as Reply;
    assert.equal(body.id, msg.id, `answered under its own id: ${JSON.stringify(body)}`);
    return body;
  }

  const call = (user: string, route: string, name: string, args: Record<string, unknown> = {}, more = {}) =>
    send(user, route, 'tools/call', { name, arguments: args, ...more });

  /** A continuation: the same call, with answers and the handle. */
  const resume = (
    user: string,
    route: string,
    name: string,
    args: Record<string, unknown>,
    requestState: unknown,
    inputResponses: unknown,
    caps?: Record<string, unknown>,
  ) => send(user, route, 'tools/call', { name, arguments: args, inputResponses, requestState }, caps);

  function inputRequired(r: Reply): { keys: string[]; state: string; reply: Reply } {
    assert.equal(r.result?.resultType, 'input_required', JSON.stringify(r));
    assert.equal(typeof r.result.requestState, 'string');
    assert.match(r.result.requestState!, /^bh1\.[A-Za-z0-9_-]{32}$/);
    return { keys: Object.keys(r.result.inputRequests ?? {}), state: r.result.requestState!, reply: r };
  }

  function textOf(r: Reply): string {
    assert.equal(r.result?.resultType, 'complete', JSON.stringify(r));
    return r.result.content![0]!.text;
  }

  async function newRecords(afterSeq: number): Promise<AuditRecord[]> {
    return fx.gateway.runtime.audit.query({ afterSeq, limit: 1000 });
  }
  /** The first `count` new records that match, waiting for outcome records, which may be written a little later. */
  async function waitForRecords(
    afterSeq: number,
    match: (r: AuditRecord) => boolean,
    count: number,
  ): Promise<AuditRecord[]> {
    let found: AuditRecord[] = [];
    for (let i = 0; i < 100 && found.length < count; i++) {
      found = (await newRecords(afterSeq)).filter(match);
      if (found.length < count) await new Promise((r) => setTimeout(r, 50));
    }
    return found;
  }
  async function headSeq(): Promise<number> {
    return (await fx.gateway.runtime.audit.query({ limit: 1 })).at(-1)?.seq ?? 0;
  }

  for (const route of ['raw', 'rawhttp']) {
    it(`${route}: an elicitation becomes input_required; the continuation completes with the answer`, async () => {
      const mark = await headSeq();
      const first = inputRequired(await call('alice', route, 'ask', { count: 1 }));
      assert.equal(first.keys.length, 1);
      const request = first.reply.result!.inputRequests![first.keys[0]!]!;
      assert.equal(request.method, 'elicitation/create');
      assert.equal(request.params?.message, 'question 1');
      const done = await resume('alice', route, 'ask', { count: 1 }, first.state, { [first.keys[0]!]: accept('42') });
      assert.equal(textOf(done), 'answers: 42');

      // Both requests are decided and recorded; the continuation's records link to the first request.
      const records = (await newRecords(mark)).filter((r) => r.target === 'ask');
      const decisions = records.filter((r) => r.kind === 'decision');
      assert.equal(decisions.length, 2, JSON.stringify(records));
      assert.equal(decisions[0]!.decision, 'allow');
      assert.equal(decisions[0]!.continuationOf, undefined);
      assert.equal(decisions[1]!.decision, 'allow');
      assert.equal(decisions[1]!.continuationOf, decisions[0]!.callId);
    });
  }

  for (const route of ['raw', 'rawhttp']) {
    it(`${route}: the official 2.x client answers the input requests itself and gets the result`, async () => {
      const client = new Client(
        { name: 'behalf-2x-input', version: '0.0.0' },
        { capabilities: { elicitation: {}, sampling: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } },
      );
      const asked: string[] = [];
      client.setRequestHandler('elicitation/create', (req) => {
        asked.push(String(req.params.message));
        return { action: 'accept', content: { answer: `a${asked.length}` } };
      });
      client.setRequestHandler('sampling/createMessage', () => ({
        role: 'assistant',
        content: { type: 'text', text: 'Paris' },
        model: 'm',
      }));
      await client.connect(
        new StreamableHTTPClientTransport(new URL(fx.gateway.urlFor(route)), {
          requestInit: { headers: await headersOf('alice', route) },
        }),
      );
      try {
        const r = await client.callTool({ name: 'ask', arguments: { count: 2 } });
        assert.deepEqual(r.content, [{ type: 'text', text: 'answers: a1, a2' }]);
        assert.deepEqual(asked, ['question 1', 'question 2']);
        const both = await client.callTool({ name: 'ask_and_sample', arguments: {} });
        assert.deepEqual(both.content, [{ type: 'text', text: 'elicited: a3 | sampled: Paris' }]);
      } finally {
        await client.close();
      }
    });
  }

  it('the outcome of a request answered with input_required says so, and links like its decision', async () => {
    const mark = await headSeq();
    const first = inputRequired(await call('alice', 'raw', 'ask', { count: 1 }));
    await resume('alice', 'raw', 'ask', { count: 1 }, first.state, { [first.keys[0]!]: accept('x') });
    const outcomes = await waitForRecords(mark, (r) => r.kind === 'outcome' && r.target === 'ask', 2);
    assert.deepEqual(
      outcomes.map((r) => r.outcome),
      ['input_required', 'ok'],
    );
    assert.equal(outcomes[1]!.continuationOf, outcomes[0]!.callId);
  });

  it('sampling becomes input_required and the sampled text reaches the tool', async () => {
    const first = inputRequired(await call('alice', 'raw', 'sample'));
    const req = first.reply.result!.inputRequests![first.keys[0]!]!;
    assert.equal(req.method, 'sampling/createMessage');
    const answer = { role: 'assistant', content: { type: 'text', text: 'Paris' }, model: 'm', stopReason: 'endTurn' };
    const done = await resume('alice', 'raw', 'sample', {}, first.state, { [first.keys[0]!]: answer });
    assert.equal(textOf(done), 'sampled: Paris');
  });

  it('several rounds: each has its own handle, and a used handle is refused (replay)', async () => {
    const args = { count: 2 };
    const r1 = inputRequired(await call('alice', 'raw', 'ask', args));
    const r2 = inputRequired(await resume('alice', 'raw', 'ask', args, r1.state, { [r1.keys[0]!]: accept('one') }));
    assert.notEqual(r2.state, r1.state);
    assert.equal(r2.reply.result!.inputRequests![r2.keys[0]!]!.params?.message, 'question 2');
    const replay = await resume('alice', 'raw', 'ask', args, r1.state, { [r1.keys[0]!]: accept('one') });
    assert.equal(replay.error?.code, INVALID_PARAMS, JSON.stringify(replay));
    const done = await resume('alice', 'raw', 'ask', args, r2.state, { [r2.keys[0]!]: accept('two') });
    assert.equal(textOf(done), 'answers: one, two');
    const again = await resume('alice', 'raw', 'ask', args, r2.state, { [r2.keys[0]!]: accept('two') });
    assert.equal(again.error?.code, INVALID_PARAMS, 'a completed call cannot be continued again');
  });

  it('two requests sent together come in one result; a missing answer is asked again under its key', async () => {
    const r1 = inputRequired(await call('alice', 'raw', 'ask_two'));
    assert.equal(r1.keys.length, 2, JSON.stringify(r1.reply));
    const byMessage = (r: Reply, text: string) =>
      Object.entries(r.result!.inputRequests!).find(([, v]) => v.params?.message === text)![0];
    const firstKey = byMessage(r1.reply, 'first');
    const secondKey = byMessage(r1.reply, 'second');
    const r2 = inputRequired(await resume('alice', 'raw', 'ask_two', {}, r1.state, { [firstKey]: accept('A') }));
    assert.deepEqual(r2.keys, [secondKey]);
    const done = await resume('alice', 'raw', 'ask_two', {}, r2.state, {
      [secondKey]: accept('B'),
      unknown_extra_key: accept('ignored'),
    });
    assert.equal(textOf(done), 'first=A second=B');
  });

  it('a call left waiting does not stop the next: each gets its own requests and completes', async () => {
    const left = inputRequired(await call('alice', 'raw', 'ask', { count: 1 }));
    const next = inputRequired(await call('alice', 'raw', 'ask', { count: 1 }));
    assert.notEqual(next.state, left.state);
    const two = await resume('alice', 'raw', 'ask', { count: 1 }, next.state, { [next.keys[0]!]: accept('two') });
    assert.equal(textOf(two), 'answers: two');
    const one = await resume('alice', 'raw', 'ask', { count: 1 }, left.state, { [left.keys[0]!]: accept('one') });
    assert.equal(textOf(one), 'answers: one');
  });

  it('parked calls are bounded per principal; at her cap nobody else is touched, and one answered frees a place', async () => {
    const states: { keys: string[]; state: string }[] = [];
    for (let i = 0; i < MAX_PARKED_PER_PRINCIPAL; i++)
      states.push(inputRequired(await call('carol', 'raw', 'ask', { count: 1 })));
    const over = await call('carol', 'raw', 'ask', { count: 1 });
    assert.match(over.error?.message ?? '', /too many of your calls wait for input/, JSON.stringify(over));
    const bobs = inputRequired(await call('bob', 'raw', 'ask', { count: 1 }));
    const first = states.shift()!;
    const done = await resume('carol', 'raw', 'ask', { count: 1 }, first.state, { [first.keys[0]!]: accept('c') });
    assert.equal(textOf(done), 'answers: c');
    states.push(inputRequired(await call('carol', 'raw', 'ask', { count: 1 })));
    for (const [user, s] of [...states.map((x) => ['carol', x] as const), ['bob', bobs] as const]) {
      const r = await resume(user, 'raw', 'ask', { count: 1 }, s.state, { [s.keys[0]!]: accept('z') });
      assert.equal(textOf(r), 'answers: z');
    }
  });

  it('invalid inputResponses are -32602 and use nothing up; the valid retry then completes', async () => {
    const first = inputRequired(await call('alice', 'raw', 'ask', { count: 1 }));
    const key = first.keys[0]!;
    for (const bad of [null, 12345, [accept('x')], { [key]: 12345 }, { [key]: null }]) {
      const r = await resume('alice', 'raw', 'ask', { count: 1 }, first.state, bad);
      assert.equal(r.error?.code, INVALID_PARAMS, `inputResponses ${JSON.stringify(bad)}: ${JSON.stringify(r)}`);
    }
    const done = await resume('alice', 'raw', 'ask', { count: 1 }, first.state, { [key]: accept('fine') });
    assert.equal(textOf(done), 'answers: fine');
  });

  it('a tampered or made-up requestState is refused and recorded; the genuine one still works', async () => {
    const first = inputRequired(await call('alice', 'raw', 'ask', { count: 1 }));
    const answers = { [first.keys[0]!]: accept('real') };
    const flip = first.state.slice(0, -1) + (first.state.endsWith('A') ? 'B' : 'A');
    const mark = await headSeq();
    const errors: Reply['error'][] = [];
    for (const bad of [`${first.state}-TAMPERED`, flip, 'bh1.' + 'A'.repeat(32), 'not-a-handle', 7]) {
      const r = await resume('alice', 'raw', 'ask', { count: 1 }, bad, answers);
      assert.equal(r.error?.code, INVALID_PARAMS, `requestState ${String(bad)}: ${JSON.stringify(r)}`);
      errors.push(r.error);
    }
    // One answer for every bad state: nothing tells what was wrong with it.
    for (const e of errors) assert.deepEqual(e, errors[0]);
    const refusals = (await newRecords(mark)).filter((r) => r.kind === 'decision');
    assert.equal(refusals.length, 5);
    for (const r of refusals) {
      assert.equal(r.decision, 'deny');
      assert.equal(r.refusedBy, 'check_request_state');
      assert.deepEqual(r.ruleIds, ['bridge:request-state']);
      assert.equal(r.userSubject, 'alice');
    }
    const done = await resume('alice', 'raw', 'ask', { count: 1 }, first.state, answers);
    assert.equal(textOf(done), 'answers: real');
  });

  it("bob cannot continue alice's call: refused like an unknown handle, and hers still completes", async () => {
    const first = inputRequired(await call('alice', 'raw', 'ask', { count: 1 }));
    const answers = { [first.keys[0]!]: accept('bob was here') };
    const mark = await headSeq();
    const bobs = await resume('bob', 'raw', 'ask', { count: 1 }, first.state, answers);
    const unknown = await resume('bob', 'raw', 'ask', { count: 1 }, 'bh1.' + 'B'.repeat(32), answers);
    assert.equal(bobs.error?.code, INVALID_PARAMS, JSON.stringify(bobs));
    assert.deepEqual(bobs.error, unknown.error);
    const [record] = (await newRecords(mark)).filter((r) => r.kind === 'decision' && r.userSubject === 'bob');
    assert.equal(record?.refusedBy, 'check_request_state');
    assert.match(record!.reason!, /another principal/);
    // Another client for the same user is another principal too.
    const otherClient = {
      'x-api-key': fx.otherApiKey,
      authorization: `Bearer ${await fx.userToken('alice', { upstream: 'raw', client: OTHER_AGENT })}`,
    };
    const msg = statelessMessage('tools/call', {
      name: 'ask',
      arguments: { count: 1 },
      inputResponses: answers,
      requestState: first.state,
    });
    (msg.params._meta as Record<string, unknown>)[CAPS_KEY] = ALL;
    const other = (
      await postRpc(fx.gateway.urlFor('raw'), otherClient, msg, statelessHeaders('tools/call', msg.params))
    ).body as Reply;
    assert.equal(other.error?.code, INVALID_PARAMS, JSON.stringify(other));
    const done = await resume('alice', 'raw', 'ask', { count: 1 }, first.state, { [first.keys[0]!]: accept('mine') });
    assert.equal(textOf(done), 'answers: mine');
  });

  it("a rep cannot continue a call with other arguments, to another rep's customer or her own", async () => {
    const denied = await call('alice', 'raw', 'ask_about', { customer_id: 'c-200' });
    assert.equal(denied.error?.code, FORBIDDEN, "bob's customer is denied to alice outright");
    for (const other of ['c-200', 'c-101']) {
      const first = inputRequired(await call('alice', 'raw', 'ask_about', { customer_id: 'c-100' }));
      const answers = { [first.keys[0]!]: accept('note') };
      const changed = await resume('alice', 'raw', 'ask_about', { customer_id: other }, first.state, answers);
      assert.equal(changed.error?.code, INVALID_PARAMS, `continued with ${other}: ${JSON.stringify(changed)}`);
      // The refused continuation used the handle up: the call is over.
      const after = await resume('alice', 'raw', 'ask_about', { customer_id: 'c-100' }, first.state, answers);
      assert.equal(after.error?.code, INVALID_PARAMS);
    }
    const first = inputRequired(await call('alice', 'raw', 'ask_about', { customer_id: 'c-100' }));
    const done = await resume('alice', 'raw', 'ask_about', { customer_id: 'c-100' }, first.state, {
      [first.keys[0]!]: accept('renewal due'),
    });
    assert.equal(textOf(done), 'note on c-100: renewal due');
  });

  it('only requests the client declared a capability for reach it; the others are refused to the upstream', async () => {
    const first = inputRequired(await call('alice', 'raw', 'ask_and_sample', {}, {}));
    // The default caps declare everything: both come.
    assert.equal(first.keys.length, 2);
    await resume('alice', 'raw', 'ask_and_sample', {}, first.state, {
      [first.keys[0]!]: accept('n'),
      [first.keys[1]!]: { role: 'assistant', content: { type: 'text', text: 'P' }, model: 'm' },
    });
    const samplingOnly = { sampling: {} };
    const r = inputRequired(
      await send('alice', 'raw', 'tools/call', { name: 'ask_and_sample', arguments: {} }, samplingOnly),
    );
    assert.deepEqual(
      Object.values(r.reply.result!.inputRequests!).map((q) => q.method),
      ['sampling/createMessage'],
    );
    const answer = { role: 'assistant', content: { type: 'text', text: 'Paris' }, model: 'm', stopReason: 'endTurn' };
    const done = await resume('alice', 'raw', 'ask_and_sample', {}, r.state, { [r.keys[0]!]: answer }, samplingOnly);
    assert.match(textOf(done), /^elicited: elicitation failed: .*-32021.* \| sampled: Paris$/);
    // With no capability at all nothing is asked: the call completes with the upstream's own handling.
    const none = await send('alice', 'raw', 'tools/call', { name: 'ask', arguments: { count: 1 } }, {});
    assert.match(textOf(none), /^answers: elicitation failed: .*-32021/);
  });

  it('roots are bridged only where the route forwards roots; elsewhere the upstream is refused as before', async () => {
    const refused = await call('alice', 'raw', 'list_roots');
    assert.match(textOf(refused), /^roots: roots failed: .*not available through this gateway route/i);
    const first = inputRequired(await call('alice', 'rawroots', 'list_roots'));
    assert.equal(first.reply.result!.inputRequests![first.keys[0]!]!.method, 'roots/list');
    const done = await resume('alice', 'rawroots', 'list_roots', {}, first.state, {
      [first.keys[0]!]: { roots: [{ uri: 'file:///work', name: 'work' }] },
    });
    assert.equal(textOf(done), 'roots: file:///work');
  });

  it('a parked call expires: its upstream request is answered with an error, and the handle is gone', async () => {
    const mark = await headSeq();
    const first = inputRequired(await call('alice', 'rawshort', 'ask', { count: 1 }));
    const [expired] = await waitForRecords(mark, (r) => r.outcome === 'input_expired', 1);
    assert.ok(expired, 'an input_expired record');
    assert.equal(expired.userSubject, 'alice');
    const log = JSON.parse(textOf(await call('alice', 'rawshort', 'input_log'))) as string[];
    assert.ok(
      log.some((l) => /elicitation failed: .*did not answer this request in time/.test(l)),
      JSON.stringify(log),
    );
    const late = await resume('alice', 'rawshort', 'ask', { count: 1 }, first.state, {
      [first.keys[0]!]: accept('late'),
    });
    assert.equal(late.error?.code, INVALID_PARAMS);
  });
});
