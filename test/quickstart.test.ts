import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { JWK } from 'jose';
import { signUserContext } from '../demo/quickstart/keys.js';
import { startQuickstart, type Quickstart } from '../demo/quickstart/run.js';
import { DEMO_USERS, userClaims } from '../demo/quickstart/users.js';
import { openSession, postJson, rpcError } from './helpers/raw-http.js';
import { connectSse, connectStreamable, toolJson } from './helpers/clients.js';
import { tempDir } from './helpers/tmp.js';

describe('quickstart: alice, bob and carol through the gateway', () => {
  let qs: Quickstart;
  let file: Quickstart['file'];

  before(async () => {
    qs = await startQuickstart({ ...process.env, BEHALF_STATE_DIR: tempDir(), BEHALF_PORT: '' });
    file = JSON.parse(readFileSync(join(qs.stateDir, 'quickstart.json'), 'utf8')) as Quickstart['file'];
  });
  after(async () => qs?.close());

  it('writes quickstart.json privately, with every documented field', () => {
    assert.equal(statSync(join(qs.stateDir, 'quickstart.json')).mode & 0o777, 0o600);
    assert.match(file.gateway, /^http:\/\/127\.0\.0\.1:\d+\/mcp\/crm$/);
    assert.match(file.sse, /^http:\/\/127\.0\.0\.1:\d+\/mcp\/crm\/sse$/);
    assert.equal(file.issuer, qs.idp.issuer);
    assert.deepEqual(Object.keys(file.users).sort(), ['alice', 'bob', 'carol']);
    assert.deepEqual(file.users.alice!.owns, ['c-100', 'c-101', 'c-102', 'c-103', 'c-104']);
    assert.equal(file.users.carol!.role, 'manager');
    assert.equal(file.tokenCommand, 'npx behalf token --user <name>');
  });

  it('serves the RFC 9728 document it names', async () => {
    const res = await fetch(file.resourceMetadata);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { resource: string; authorization_servers: string[] };
    assert.equal(doc.resource, file.gateway);
    assert.deepEqual(doc.authorization_servers, [file.issuer]);
  });

  it("alice reads her own customer (positive control) and is denied bob's", async () => {
    const alice = await connectStreamable(file.gateway, file.users.alice!.headers);
    try {
      const own = await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } });
      assert.equal(toolJson(own).owner, 'alice');
      await assert.rejects(
        alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-200' } }),
        (err: unknown) => {
          assert.ok(err instanceof McpError);
          assert.equal(err.code, -32003);
          assert.doesNotMatch(err.message, /c-200|bob|rule/);
          return true;
        },
      );
    } finally {
      await alice.close();
    }
  });

  it("records alice's calls with the customer id kept and every other argument value redacted, chained, by the policy file's version", async () => {
    const alice = await connectStreamable(file.gateway, file.users.alice!.headers);
    try {
      await alice.callTool({
        name: 'update_customer',
        arguments: { customer_id: 'c-101', notes: 'QS-NOTE-4711 called back' },
      });
    } finally {
      await alice.close();
    }
    const [d] = await qs.gateway.runtime.audit.query({
      kind: 'decision',
      subject: 'alice',
      target: 'update_customer',
      limit: 1,
    });
    assert.ok(d, 'a decision record for the update');
    assert.deepEqual(JSON.parse(d.args!).customer_id, 'c-101');
    assert.doesNotMatch(d.args!, /QS-NOTE-4711/);
    assert.match(d.argsDigest!, /^[0-9a-f]{64}$/);
    assert.match(d.hash, /^[0-9a-f]{64}$/);
    assert.equal(d.policyVersion, qs.gateway.runtime.policy.current.version);
    // The policy in force is the watched file the banner names.
    assert.match(readFileSync(join(qs.stateDir, 'policy.yaml'), 'utf8'), /id: reps-read-own/);
  });

  it("bob reads his own customer c-200 (the positive control for alice's denial)", async () => {
    const bob = await connectStreamable(file.gateway, file.users.bob!.headers);
    try {
      const res = await bob.callTool({ name: 'get_customer', arguments: { customer_id: 'c-200' } });
      assert.equal(toolJson(res).owner, 'bob');
    } finally {
      await bob.close();
    }
  });

  it("carol, a manager, reads everyone's customers and may export; alice may not export", async () => {
    const carol = await connectStreamable(file.gateway, file.users.carol!.headers);
    const alice = await connectStreamable(file.gateway, file.users.alice!.headers);
    try {
      assert.equal(
        toolJson(await carol.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } })).owner,
        'alice',
      );
      assert.equal(
        toolJson(await carol.callTool({ name: 'get_customer', arguments: { customer_id: 'c-200' } })).owner,
        'bob',
      );
      const all = toolJson(await carol.callTool({ name: 'export_all_customers', arguments: {} }));
      assert.equal((all.customers as unknown[]).length, 10);
      await assert.rejects(alice.callTool({ name: 'export_all_customers', arguments: {} }), /Forbidden/);
    } finally {
      await carol.close();
      await alice.close();
    }
  });

  it('lists to each user only the tools she may call', async () => {
    const alice = await connectStreamable(file.gateway, file.users.alice!.headers);
    const carol = await connectStreamable(file.gateway, file.users.carol!.headers);
    try {
      const a = (await alice.listTools()).tools.map((t) => t.name).sort();
      const c = (await carol.listTools()).tools.map((t) => t.name).sort();
      assert.deepEqual(a, ['get_customer', 'list_customers', 'update_customer']);
      assert.deepEqual(c, ['export_all_customers', 'get_customer', 'list_customers', 'update_customer']);
    } finally {
      await alice.close();
      await carol.close();
    }
  });

  it("on the files upstream alice reaches her own folder (positive control) and is denied bob's", async () => {
    assert.match(file.files.gateway, /^http:\/\/127\.0\.0\.1:\d+\/mcp\/files$/);
    const alice = await connectStreamable(file.files.gateway, file.files.users.alice!.headers);
    const bob = await connectStreamable(file.files.gateway, file.files.users.bob!.headers);
    try {
      const own = await alice.callTool({
        name: 'read_text_file',
        arguments: { path: join(file.files.users.alice!.folder, 'welcome.txt') },
      });
      assert.match(JSON.stringify(own.content), /Welcome, alice/);
      const bobsWelcome = join(file.files.users.bob!.folder, 'welcome.txt');
      await assert.rejects(
        alice.callTool({ name: 'read_text_file', arguments: { path: bobsWelcome } }),
        (err: unknown) => {
          assert.ok(err instanceof McpError);
          assert.equal(err.code, -32003);
          return true;
        },
      );
      assert.match(
        JSON.stringify((await bob.callTool({ name: 'read_text_file', arguments: { path: bobsWelcome } })).content),
        /Welcome, bob/,
      );
      // Her own process is rooted at her own folder: the server itself knows no other.
      const dirs = JSON.stringify((await alice.callTool({ name: 'list_allowed_directories', arguments: {} })).content);
      assert.ok(dirs.includes(file.files.users.alice!.folder), dirs);
      assert.ok(!dirs.includes(file.files.users.bob!.folder), dirs);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('the same holds over legacy SSE', async () => {
    const alice = await connectSse(file.sse, file.users.alice!.headers);
    try {
      assert.equal(
        toolJson(await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-101' } })).owner,
        'alice',
      );
      await assert.rejects(alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-201' } }), /Forbidden/);
    } finally {
      await alice.close();
    }
  });

  it("opening the policy wide (hot reload) still does not give alice bob's customer: the CRM decides by her own token", async () => {
    const policyFile = join(qs.stateDir, 'policy.yaml');
    const original = readFileSync(policyFile, 'utf8');
    const before = qs.gateway.runtime.policy.current.version;
    writeFileSync(policyFile, 'rules:\n  - { id: wide-open, effect: allow, upstreams: [crm], tools: ["*"] }\n');
    try {
      for (let i = 0; i < 200 && qs.gateway.runtime.policy.current.version === before; i++)
        await new Promise((r) => setTimeout(r, 25));
      assert.notEqual(qs.gateway.runtime.policy.current.version, before, 'the wide policy is in force');
      const alice = await connectStreamable(file.gateway, file.users.alice!.headers);
      try {
        // The gateway now allows it; the CRM answers as for an unknown customer.
        const theirs = await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-200' } });
        assert.equal(theirs.isError, true);
        assert.doesNotMatch(JSON.stringify(theirs), /"owner":"bob"/);
        const [d] = await qs.gateway.runtime.audit.query({
          kind: 'decision',
          subject: 'alice',
          target: 'get_customer',
          limit: 1,
        });
        assert.deepEqual(d!.ruleIds, ['wide-open']);
        // Positive control under the same policy: her own customer.
        assert.equal(
          toolJson(await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } })).owner,
          'alice',
        );
        const [o] = await qs.gateway.runtime.audit.query({
          kind: 'outcome',
          subject: 'alice',
          target: 'get_customer',
          limit: 1,
        });
        assert.equal(o!.downstreamStrategy, 'token-exchange');
        assert.match(o!.downstreamCredentialId ?? '', /.+/, "the exchanged token's id is on the record");
      } finally {
        await alice.close();
      }
    } finally {
      writeFileSync(policyFile, original);
      // The next test needs the demo policy back in force, not just written.
      for (let i = 0; i < 200 && qs.gateway.runtime.policy.current.version !== before; i++)
        await new Promise((r) => setTimeout(r, 25));
      assert.equal(qs.gateway.runtime.policy.current.version, before);
    }
  });

  it("the token-exchange pattern: the agent exchanges alice's token (act = the agent) and the gateway accepts it", async () => {
    const secrets = JSON.parse(readFileSync(file.tokenExchange.clientSecretIn, 'utf8')) as {
      agent: { clientId: string; clientSecret: string; apiKey: string };
    };
    const subjectToken = file.users.alice!.headers.authorization!.slice('Bearer '.length);
    const exchanged = await qs.idp.exchangeToken({
      clientId: file.tokenExchange.clientId,
      clientSecret: secrets.agent.clientSecret,
      subjectToken,
      resource: file.tokenExchange.resource,
    });
    assert.equal(
      (
        JSON.parse(Buffer.from(exchanged.accessToken.split('.')[1]!, 'base64url').toString()) as {
          act?: { sub?: string };
        }
      ).act?.sub,
      file.tokenExchange.clientId,
    );
    const alice = await connectStreamable(file.gateway, {
      'x-api-key': secrets.agent.apiKey,
      authorization: `Bearer ${exchanged.accessToken}`,
    });
    try {
      assert.equal(
        toolJson(await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-102' } })).owner,
        'alice',
      );
    } finally {
      await alice.close();
    }
  });

  it("the signed-context pattern: per-call assertions decided for each user, once, bound to the call; the CRM gets the gateway's assertion on a connection per user", async () => {
    const secrets = JSON.parse(readFileSync(file.signedContext.privateKeyIn, 'utf8')) as {
      agentPlatform: { privateJwk: JWK };
    };
    const sign = (user: string, customer: string) =>
      signUserContext({
        privateJwk: secrets.agentPlatform.privateJwk,
        resource: file.signedContext.gateway,
        user,
        claims: userClaims(DEMO_USERS.find((u) => u.name === user)!),
        clientId: 'demo-agent',
        call: { method: 'tools/call', params: { name: 'get_customer', arguments: { customer_id: customer } } },
      });
    const call = (customer: string, jws: string) => ({
      jsonrpc: '2.0',
      id: 5,
      method: 'tools/call',
      params: { name: 'get_customer', arguments: { customer_id: customer }, _meta: { 'behalf/user': jws } },
    });
    const url = file.signedContext.gateway;
    const headers = file.signedContext.headers;
    // One agent session (API key only) carries both users.
    const sid = await openSession(url, headers);
    const jws = await sign('alice', 'c-103');
    assert.match(
      (await postJson(url, headers, call('c-103', jws), sid)).text,
      /\\"owner\\": \\"alice\\"|"owner": ?"alice"/,
    );
    assert.match(
      (await postJson(url, headers, call('c-203', await sign('bob', 'c-203')), sid)).text,
      /\\"owner\\": \\"bob\\"|"owner": ?"bob"/,
      'bob on the same agent session reads his own',
    );
    // Used once: the same assertion again is refused.
    assert.equal(rpcError(await postJson(url, headers, call('c-103', jws), sid)).code, -32003);
    // Bound to its call: alice's assertion for c-103 does not open c-203.
    assert.equal(rpcError(await postJson(url, headers, call('c-203', await sign('alice', 'c-103')), sid)).code, -32003);
    // Her own assertion for bob's customer: decided for alice, denied.
    assert.equal(rpcError(await postJson(url, headers, call('c-203', await sign('alice', 'c-203')), sid)).code, -32003);
    const [o] = await qs.gateway.runtime.audit.query({
      kind: 'outcome',
      subject: 'alice',
      target: 'get_customer',
      limit: 1,
    });
    assert.equal(o!.downstreamStrategy, 'user-assertion');
  });
});
