/**
 * The demo policy's whole decision matrix, through the real gateway: the dev
 * IdP issues real tokens for alice and bob (reps: alice owns c-100..c-104,
 * bob c-200..c-204) and carol (manager), and every CRM tool, the
 * account_summary prompt and the customer resources are called by each of
 * them on their own and on others' customers.
 *
 * The table is the specification. Every row is (user, call, allow/deny, the
 * rule ids the audit log must name). Every denial has a positive control: the
 * same call made by its rightful user (the owner of the data, else the
 * manager) is allowed — checked on the table itself before anything runs, so
 * a denial can never pass because the call was broken for everyone (BND-05).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { seedCustomers, type Customer } from '../demo/crm/data.js';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { openSession, postJson, rpcResult, type RawResponse } from './helpers/raw-http.js';

type User = 'alice' | 'bob' | 'carol';
const USERS: readonly User[] = ['alice', 'bob', 'carol'];

const CUSTOMERS: ReadonlyMap<string, Customer> = new Map(seedCustomers().map((c) => [c.id, c]));
const OWNED_BY = (user: string) =>
  [...CUSTOMERS.values()]
    .filter((c) => c.owner === user)
    .map((c) => c.id)
    .sort();

/** The one answer a denied call gets: fixed, without data. */
const DENIED = { code: -32003, message: 'Forbidden: not allowed for this user' };

interface Call {
  method: 'tools/call' | 'prompts/get' | 'resources/read';
  params: Record<string, unknown>;
}
interface Row {
  user: User;
  call: Call;
  expect: 'allow' | 'deny';
  /** What the decision record must name: the allow rule, or [] for "no rule allows this". */
  ruleIds: string[];
}

const NOTES = 'policy-matrix: updated';
const tool = (name: string, args: Record<string, unknown> = {}): Call => ({
  method: 'tools/call',
  params: { name, arguments: args },
});
const list = (owner?: string) => tool('list_customers', owner === undefined ? {} : { owner });
const get = (id: string) => tool('get_customer', { customer_id: id });
const update = (id: string) => tool('update_customer', { customer_id: id, notes: NOTES });
const exportAll = () => tool('export_all_customers');
const prompt = (id: string): Call => ({
  method: 'prompts/get',
  params: { name: 'account_summary', arguments: { customer_id: id } },
});
const resource = (id: string): Call => ({ method: 'resources/read', params: { uri: `crm://customers/${id}` } });

const allow = (user: User, call: Call, ...ruleIds: string[]): Row => ({ user, call, expect: 'allow', ruleIds });
const deny = (user: User, call: Call): Row => ({ user, call, expect: 'deny', ruleIds: [] });

/** The rep's own customer and the other rep's, for each rep. */
const REPS = {
  alice: { own: 'c-101', other: 'c-201', otherRep: 'bob' },
  bob: { own: 'c-201', other: 'c-101', otherRep: 'alice' },
} as const;

const ROWS: readonly Row[] = [
  ...(['alice', 'bob'] as const).flatMap((rep): Row[] => {
    const { own, other, otherRep } = REPS[rep];
    return [
      allow(rep, list(rep), 'reps-list-own'),
      deny(rep, list(otherRep)),
      deny(rep, list()),
      allow(rep, get(own), 'reps-read-own'),
      deny(rep, get(other)),
      allow(rep, update(own), 'reps-update-own'),
      deny(rep, update(other)),
      deny(rep, exportAll()),
      allow(rep, prompt(own), 'account-summary-prompt'),
      deny(rep, prompt(other)),
      allow(rep, resource(own), 'customer-resources'),
      deny(rep, resource(other)),
    ];
  }),
  allow('carol', list('carol'), 'managers-read-all'),
  allow('carol', list('alice'), 'managers-read-all'),
  allow('carol', list('bob'), 'managers-read-all'),
  allow('carol', list(), 'managers-read-all'),
  ...['c-101', 'c-201'].flatMap((id): Row[] => [
    allow('carol', get(id), 'managers-read-all'),
    allow('carol', update(id), 'managers-update-all'),
    allow('carol', prompt(id), 'account-summary-prompt'),
    allow('carol', resource(id), 'customer-resources'),
  ]),
  allow('carol', exportAll(), 'managers-read-all'),
];

/** Whose data a call reaches: the owner of the customer or of the listed customers; undefined = everyone's. */
function dataOwner(call: Call): string | undefined {
  const args = (call.params.arguments ?? {}) as Record<string, unknown>;
  if (typeof args.customer_id === 'string') return CUSTOMERS.get(args.customer_id)!.owner;
  if (typeof call.params.uri === 'string') return CUSTOMERS.get(call.params.uri.replace('crm://customers/', ''))!.owner;
  if (typeof args.owner === 'string') return args.owner;
  return undefined;
}

/** Who may rightfully make a call: the owner of the data it reaches, or the manager for everyone's data. */
function rightfulUser(call: Call): User {
  const owner = dataOwner(call);
  return owner === 'alice' || owner === 'bob' ? owner : 'carol';
}

function describeRow(r: Row): string {
  const p = r.call.params;
  const what =
    r.call.method === 'resources/read' ? `read ${String(p.uri)}` : `${String(p.name)}(${JSON.stringify(p.arguments)})`;
  return `${r.user} ${what} → ${r.expect}${r.ruleIds.length ? ` by ${r.ruleIds.join(', ')}` : ''}`;
}

/** What an allowed call returned, as one customer record or a list of them. */
function returnedRecords(call: Call, result: Record<string, unknown>): Array<Partial<Customer>> {
  switch (call.method) {
    case 'tools/call': {
      assert.notEqual(result.isError, true, JSON.stringify(result));
      const structured = result.structuredContent as Record<string, unknown>;
      const text = (result.content as Array<{ type: string; text: string }>)[0]!.text;
      assert.deepEqual(JSON.parse(text), structured, 'text and structured content agree');
      return Array.isArray(structured.customers)
        ? (structured.customers as Customer[])
        : [structured as Partial<Customer>];
    }
    case 'resources/read': {
      const contents = result.contents as Array<{ uri: string; text: string }>;
      assert.equal(contents.length, 1);
      assert.equal(contents[0]!.uri, call.params.uri);
      return [JSON.parse(contents[0]!.text) as Customer];
    }
    case 'prompts/get': {
      const messages = result.messages as Array<{ content: { text: string } }>;
      const text = messages[0]!.content.text;
      return [JSON.parse(text.slice(text.indexOf('{'))) as Customer];
    }
  }
}

/** The CRM's data for an allowed row: exactly the records the call names, nothing else. */
function assertData(row: Row, result: Record<string, unknown>): void {
  const records = returnedRecords(row.call, result);
  const args = (row.call.params.arguments ?? {}) as Record<string, unknown>;
  const name = row.call.params.name;
  if (name === 'list_customers' || name === 'export_all_customers') {
    const expected = typeof args.owner === 'string' ? OWNED_BY(args.owner) : [...CUSTOMERS.keys()].sort();
    assert.deepEqual(records.map((c) => c.id).sort(), expected);
    for (const c of records) assert.equal(c.owner, CUSTOMERS.get(c.id!)!.owner);
    if (name === 'export_all_customers')
      for (const c of records) assert.equal(c.annualRevenue, CUSTOMERS.get(c.id!)!.annualRevenue);
    return;
  }
  const id =
    typeof args.customer_id === 'string'
      ? args.customer_id
      : String(row.call.params.uri).replace('crm://customers/', '');
  const seed = CUSTOMERS.get(id)!;
  assert.equal(records.length, 1);
  assert.equal(records[0]!.id, id);
  assert.equal(records[0]!.owner, seed.owner);
  assert.equal(records[0]!.company, seed.company);
  if (name === 'update_customer') assert.equal(records[0]!.notes, NOTES);
  if (row.call.method === 'prompts/get')
    assert.match(String(result.description), new RegExp(`${seed.name} \\(${id}\\)`));
}

/** Values that identify a customer: none of another user's may appear in what a rep gets back. */
function identifying(c: Customer): string[] {
  return [c.name, c.email, c.company, c.phone];
}

let nextId = 1;

describe("the demo policy's decision matrix through the real gateway", () => {
  let fx: Fixture;
  let url: string;
  const headers = new Map<User, Record<string, string>>();
  const sessions = new Map<User, string>();

  async function send(
    user: User,
    call: Call,
    h = headers.get(user)!,
    sid = sessions.get(user)!,
  ): Promise<{ r: RawResponse; id: number }> {
    const id = nextId++;
    return { r: await postJson(url, h, { jsonrpc: '2.0', id, method: call.method, params: call.params }, sid), id };
  }

  async function lastDecision(user: User) {
    const rows = await fx.gateway.runtime.audit.query({ kind: 'decision', subject: user, limit: 1 });
    assert.equal(rows.length, 1, `no decision recorded for ${user}`);
    return rows[0]!;
  }

  before(async () => {
    fx = await startFixture({ policy: DEMO_POLICY });
    url = fx.gateway.urlFor('crm');
    for (const u of USERS) {
      headers.set(u, await fx.headersFor(u));
      sessions.set(u, await openSession(url, headers.get(u)!));
    }
  });
  after(async () => {
    await fx?.close();
  });

  describe('the table', () => {
    it('covers every user × every CRM tool, the prompt and the resource', () => {
      for (const u of USERS) {
        const names = new Set(ROWS.filter((r) => r.user === u).map((r) => String(r.call.params.name ?? r.call.method)));
        assert.deepEqual(
          [...names].sort(),
          [
            'account_summary',
            'export_all_customers',
            'get_customer',
            'list_customers',
            'resources/read',
            'update_customer',
          ],
          u,
        );
        const owners = ROWS.filter((r) => r.user === u && r.call.params.name === 'list_customers').map((r) =>
          dataOwner(r.call),
        );
        assert.ok(
          owners.includes(u) && owners.includes(undefined) && owners.some((o) => o !== undefined && o !== u),
          `${u}: list_customers with owner self, other, absent`,
        );
      }
    });

    it("has a positive control for every denial: the rightful user's same call is an allow row", () => {
      const denials = ROWS.filter((r) => r.expect === 'deny');
      assert.ok(denials.length >= 10);
      for (const d of denials) {
        const rightful = rightfulUser(d.call);
        assert.notEqual(rightful, d.user, `${describeRow(d)}: the denied user is the rightful one`);
        const control = ROWS.find(
          (r) => r.expect === 'allow' && r.user === rightful && JSON.stringify(r.call) === JSON.stringify(d.call),
        );
        assert.ok(control, `${describeRow(d)} has no positive control by ${rightful}`);
      }
    });

    it('names the deciding allow rule for every allow row, and the rule exists in the demo policy', () => {
      const ids = new Set(DEMO_POLICY.map((r) => r.id));
      for (const r of ROWS) {
        if (r.expect === 'allow') assert.ok(r.ruleIds.length === 1 && ids.has(r.ruleIds[0]!), describeRow(r));
        else assert.deepEqual(r.ruleIds, []);
      }
    });
  });

  describe('each row', () => {
    for (const row of ROWS) {
      it(describeRow(row), async () => {
        const { r, id } = await send(row.user, row.call);
        assert.equal(r.status, 200, r.text);
        if (row.expect === 'allow') {
          assertData(row, rpcResult(r));
          if (row.user !== 'carol') {
            // A rep's allowed answer carries her own customers only.
            for (const c of CUSTOMERS.values()) {
              if (c.owner !== row.user)
                for (const v of identifying(c)) assert.ok(!r.text.includes(v), `${row.user} got ${c.owner}'s ${v}`);
            }
          }
        } else {
          assert.deepEqual(r.json, { jsonrpc: '2.0', id, error: DENIED });
          for (const c of CUSTOMERS.values())
            for (const v of identifying(c)) assert.ok(!r.text.includes(v), `the denial carries ${v}`);
        }
        const d = await lastDecision(row.user);
        assert.equal(d.method, row.call.method);
        assert.equal(d.target, row.call.params.name ?? row.call.params.uri);
        assert.equal(d.decision, row.expect);
        assert.deepEqual(d.ruleIds, row.ruleIds);
        assert.equal(d.userSubject, row.user);
        assert.equal(d.reason, row.expect === 'allow' ? 'allowed by rule' : 'no rule allows this');
      });
    }
  });

  describe('update_customer needs the crm:write scope (step-up)', () => {
    const STEP_UP_NOTES = 'policy-matrix: written without crm:write';

    for (const [user, id, rule] of [
      ['alice', 'c-103', 'reps-update-own'],
      ['carol', 'c-203', 'managers-update-all'],
    ] as const) {
      it(`${user} without crm:write: HTTP 403 insufficient_scope naming crm:write, nothing written; the same call with it succeeds`, async () => {
        const narrow = {
          'x-api-key': fx.apiKey,
          authorization: `Bearer ${await fx.userToken(user, { scope: 'mcp:tools crm:read' })}`,
        };
        const sid = await openSession(url, narrow);
        const call = tool('update_customer', { customer_id: id, notes: STEP_UP_NOTES });

        // Reading works with the narrow token: the scope gates writing only.
        const before = await send(user, get(id), narrow, sid);
        assert.equal((rpcResult(before.r).structuredContent as Customer).notes, CUSTOMERS.get(id)!.notes);

        const { r } = await send(user, call, narrow, sid);
        assert.equal(r.status, 403, r.text);
        const challenge = String(r.headers['www-authenticate']);
        assert.match(challenge, /^Bearer /);
        assert.match(challenge, /error="insufficient_scope"/);
        const scope = /scope="([^"]*)"/.exec(challenge)?.[1];
        assert.ok(scope?.split(' ').includes('crm:write'), challenge);
        assert.ok(!r.text.includes(CUSTOMERS.get(id)!.name));
        const d = await lastDecision(user);
        assert.deepEqual(
          [d.target, d.decision, d.ruleIds, d.reason],
          ['update_customer', 'deny', [rule], 'insufficient scope'],
        );

        const unchanged = await send(user, get(id), narrow, sid);
        assert.equal(
          (rpcResult(unchanged.r).structuredContent as Customer).notes,
          CUSTOMERS.get(id)!.notes,
          'the refused write reached the CRM',
        );

        // Step-up: a token with crm:write on the same session, same call.
        const wide = await send(
          user,
          call,
          { 'x-api-key': fx.apiKey, authorization: `Bearer ${await fx.userToken(user)}` },
          sid,
        );
        const updated = rpcResult(wide.r).structuredContent as Customer;
        assert.deepEqual([updated.id, updated.owner, updated.notes], [id, CUSTOMERS.get(id)!.owner, STEP_UP_NOTES]);
        const allowed = await lastDecision(user);
        assert.deepEqual([allowed.target, allowed.decision, allowed.ruleIds], ['update_customer', 'allow', [rule]]);
      });
    }

    it("alice without crm:write on bob's customer: the plain denial, not a step-up hint (more scope would not help)", async () => {
      const narrow = {
        'x-api-key': fx.apiKey,
        authorization: `Bearer ${await fx.userToken('alice', { scope: 'mcp:tools crm:read' })}`,
      };
      const sid = await openSession(url, narrow);
      const { r, id } = await send('alice', update('c-202'), narrow, sid);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['www-authenticate'], undefined);
      assert.deepEqual(r.json, { jsonrpc: '2.0', id, error: DENIED });
      const d = await lastDecision('alice');
      assert.deepEqual(
        [d.target, d.decision, d.ruleIds, d.reason],
        ['update_customer', 'deny', [], 'no rule allows this'],
      );
    });
  });
});
