/**
 * The demo CRM MCP server, exercised with the SDK 1.x client over stdio,
 * Streamable HTTP and legacy HTTP+SSE.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { CustomerStore, seedCustomers, type Customer } from '../demo/crm/data.js';
import { startCrmHttp, type CrmHttpServer, type CrmRequestInfo } from '../demo/crm/http.js';
import type { ObservedCredential } from '../demo/crm/observer.js';
import { startDevIdp, type DevIdp } from '../demo/idp/index.js';

const STDIO_ENTRY = fileURLToPath(new URL('../demo/crm/stdio.js', import.meta.url));
const HTTP_MODULE = new URL('../demo/crm/http.js', import.meta.url).href;
const CANARY = 'x-behalf-canary';

type Kind = 'stdio' | 'streamable-http' | 'sse';

interface Harness {
  client: Client;
  transport: Transport;
  crm?: CrmHttpServer;
  seen: CrmRequestInfo[];
  canary: string;
}

async function connect(kind: Kind): Promise<Harness> {
  const seen: CrmRequestInfo[] = [];
  const canary = `canary-${kind}-${Math.random().toString(36).slice(2)}`;
  const headers = { [CANARY]: canary };
  let crm: CrmHttpServer | undefined;
  let transport: Transport;
  if (kind === 'stdio') {
    transport = new StdioClientTransport({ command: process.execPath, args: [STDIO_ENTRY], stderr: 'pipe' });
  } else {
    crm = await startCrmHttp({ onRequest: (info) => seen.push(info) });
    transport =
      kind === 'sse'
        ? new SSEClientTransport(new URL(crm.sseUrl), { requestInit: { headers } })
        : new StreamableHTTPClientTransport(new URL(crm.url), { requestInit: { headers } });
  }
  const client = new Client({ name: 'demo-crm-test', version: '0.0.0' });
  await client.connect(transport);
  return { client, transport, crm, seen, canary };
}

async function callTool(client: Client, name: string, args: Record<string, unknown> = {}): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

/** Resolves with `p`, or rejects with `message` after `ms`; never leaves a timer behind. */
async function within<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function textOf(result: CallToolResult): string {
  const first = result.content[0];
  assert.ok(first && first.type === 'text', 'first content block is text');
  return first.text;
}

for (const kind of ['stdio', 'streamable-http', 'sse'] as const) {
  describe(`demo CRM over ${kind}`, () => {
    let h: Harness;
    before(async () => {
      h = await connect(kind);
    });
    after(async () => {
      await h.client.close();
      await h.crm?.close();
    });

    test('tools/list lists the four tools with titles, schemas and annotations', async () => {
      const { tools } = await h.client.listTools();
      const byName = new Map(tools.map((t) => [t.name, t]));
      assert.deepEqual([...byName.keys()].sort(), [
        'export_all_customers',
        'get_customer',
        'list_customers',
        'update_customer',
      ]);
      for (const t of tools) {
        assert.ok(t.title, `${t.name} has a title`);
        assert.ok(t.description, `${t.name} has a description`);
        assert.equal(t.inputSchema.type, 'object');
        assert.ok(t.outputSchema, `${t.name} has an output schema`);
        assert.equal(typeof t.annotations?.readOnlyHint, 'boolean', `${t.name} has readOnlyHint`);
        assert.equal(typeof t.annotations?.destructiveHint, 'boolean', `${t.name} has destructiveHint`);
        assert.equal(typeof t.annotations?.idempotentHint, 'boolean', `${t.name} has idempotentHint`);
      }
      assert.equal(byName.get('get_customer')?.annotations?.readOnlyHint, true);
      assert.equal(byName.get('export_all_customers')?.annotations?.readOnlyHint, true);
      assert.equal(byName.get('update_customer')?.annotations?.readOnlyHint, false);
      assert.equal(byName.get('update_customer')?.annotations?.destructiveHint, true);
      assert.deepEqual(byName.get('get_customer')?.inputSchema.required, ['customer_id']);
    });

    test("get_customer c-100 returns alice's customer as text and structuredContent", async () => {
      const result = await callTool(h.client, 'get_customer', { customer_id: 'c-100' });
      assert.notEqual(result.isError, true);
      const record = result.structuredContent as unknown as Customer;
      assert.equal(record.id, 'c-100');
      assert.equal(record.owner, 'alice');
      assert.equal(typeof record.annualRevenue, 'number');
      assert.deepEqual(JSON.parse(textOf(result)), record);
    });

    test('an unknown customer is a tool error', async () => {
      const result = await callTool(h.client, 'get_customer', { customer_id: 'c-999' });
      assert.equal(result.isError, true);
      assert.match(textOf(result), /Unknown customer: c-999/);
      const update = await callTool(h.client, 'update_customer', { customer_id: 'c-999', notes: 'x' });
      assert.equal(update.isError, true);
    });

    test('invalid arguments are a tool error', async () => {
      const result = await callTool(h.client, 'get_customer', {});
      assert.equal(result.isError, true);
    });

    test('update_customer changes the record', async () => {
      const notes = `updated over ${kind}`;
      const result = await callTool(h.client, 'update_customer', { customer_id: 'c-201', notes, phone: '+1-555-9999' });
      assert.notEqual(result.isError, true);
      const updated = result.structuredContent as unknown as Customer;
      assert.equal(updated.notes, notes);
      assert.equal(updated.phone, '+1-555-9999');
      assert.equal(updated.owner, 'bob');
      assert.equal(updated.name, 'Greta Sandoval', 'fields not given are unchanged');
      const reread = await callTool(h.client, 'get_customer', { customer_id: 'c-201' });
      assert.equal((reread.structuredContent as unknown as Customer).notes, notes);
    });

    test('list_customers and export_all_customers return all ten customers', async () => {
      const list = await callTool(h.client, 'list_customers');
      const { customers } = list.structuredContent as { customers: Array<Record<string, unknown>> };
      assert.equal(customers.length, 10);
      assert.deepEqual(Object.keys(customers[0] ?? {}).sort(), ['id', 'name', 'owner']);
      assert.equal(customers.filter((c) => c.owner === 'alice').length, 5);
      assert.equal(customers.filter((c) => c.owner === 'bob').length, 5);
      const exported = await callTool(h.client, 'export_all_customers');
      const all = (exported.structuredContent as { customers: Customer[] }).customers;
      assert.equal(all.length, 10);
      assert.ok(all.every((c) => typeof c.annualRevenue === 'number' && c.email.includes('@')));
    });

    test('resources/list, resources/read and prompts/get work', async () => {
      const { resourceTemplates } = await h.client.listResourceTemplates();
      assert.ok(resourceTemplates.some((t) => t.uriTemplate === 'crm://customers/{customer_id}'));
      const { resources } = await h.client.listResources();
      assert.equal(resources.length, 10);
      const read = await h.client.readResource({ uri: 'crm://customers/c-200' });
      const content = read.contents[0];
      assert.ok(content && 'text' in content);
      assert.equal((JSON.parse(content.text) as Customer).owner, 'bob');
      await assert.rejects(h.client.readResource({ uri: 'crm://customers/c-999' }), /not found/i);

      const { prompts } = await h.client.listPrompts();
      assert.deepEqual(
        prompts.map((p) => p.name),
        ['account_summary'],
      );
      const prompt = await h.client.getPrompt({ name: 'account_summary', arguments: { customer_id: 'c-102' } });
      const message = prompt.messages[0];
      assert.ok(message && message.content.type === 'text');
      assert.match(message.content.text, /Lenz Optics/);
      assert.match(message.content.text, /alice/);
    });

    if (kind !== 'stdio') {
      test('the onRequest canary sees every request with its headers', () => {
        assert.ok(h.seen.length >= 3, 'several requests reached the CRM');
        for (const info of h.seen) {
          assert.equal(info.headers[CANARY], h.canary, `${info.method} ${info.path} carried the canary header`);
        }
        if (kind === 'sse') {
          assert.ok(h.seen.some((i) => i.method === 'GET' && i.path === '/sse'));
          const post = h.seen.find((i) => i.method === 'POST' && i.path === '/messages');
          assert.ok(post, 'a POST /messages was seen');
          assert.match(post.url, /^\/messages\?sessionId=/);
        } else {
          assert.ok(h.seen.every((i) => i.path === '/mcp'));
          assert.ok(
            h.seen.some((i) => i.method === 'POST' && i.headers['mcp-session-id'] === undefined),
            'initialize without session',
          );
          assert.ok(
            h.seen.some((i) => i.method === 'POST' && typeof i.headers['mcp-session-id'] === 'string'),
            'later POSTs carry the session',
          );
        }
      });
    }

    if (kind === 'streamable-http') {
      test('DELETE ends the session; the id is then unknown', async () => {
        const transport = h.transport as StreamableHTTPClientTransport;
        const sessionId = transport.sessionId;
        assert.ok(sessionId);
        await transport.terminateSession();
        assert.ok(h.seen.some((i) => i.method === 'DELETE' && i.headers['mcp-session-id'] === sessionId));
        const res = await fetch(h.crm?.url ?? '', {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'mcp-session-id': sessionId,
            'mcp-protocol-version': '2025-06-18',
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
        });
        assert.equal(res.status, 404);
      });
    }
  });
}

describe('demo CRM data', () => {
  test('seedCustomers returns independent copies', () => {
    const a = seedCustomers();
    const b = seedCustomers();
    const first = a[0];
    assert.ok(first);
    first.notes = 'mutated';
    assert.notEqual(b[0]?.notes, 'mutated');
    assert.deepEqual(
      a.map((c) => c.id),
      ['c-100', 'c-101', 'c-102', 'c-103', 'c-104', 'c-200', 'c-201', 'c-202', 'c-203', 'c-204'],
    );
    assert.deepEqual([...new Set(a.map((c) => c.owner))], ['alice', 'bob']);
  });

  test('the store hands out copies and ignores undefined patch fields', () => {
    const store = new CustomerStore();
    const got = store.get('c-100');
    assert.ok(got);
    got.name = 'changed outside';
    assert.equal(store.get('c-100')?.name, 'Ada Whitfield');
    const updated = store.update('c-100', { email: 'new@example.com', name: undefined });
    assert.equal(updated?.email, 'new@example.com');
    assert.equal(updated?.name, 'Ada Whitfield');
    assert.equal(store.update('c-999', { notes: 'x' }), undefined);
    assert.equal(
      new CustomerStore().get('c-100')?.email,
      'ada.whitfield@northwind.example',
      'stores do not share state',
    );
  });
});

describe('demo CRM HTTP edge', () => {
  let crm: CrmHttpServer;
  before(async () => {
    crm = await startCrmHttp({});
  });
  after(async () => {
    await crm.close();
  });

  /** A raw request, so the Host header can be set freely. */
  function raw(path: string, headers: Record<string, string>, method = 'POST', body = '{}'): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: crm.port,
          path,
          method,
          headers: { 'content-type': 'application/json', ...headers },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(method === 'GET' ? undefined : body);
    });
  }

  test('urls point at loopback', () => {
    assert.equal(crm.url, `http://127.0.0.1:${crm.port}/mcp`);
    assert.equal(crm.sseUrl, `http://127.0.0.1:${crm.port}/sse`);
  });

  test('a foreign Host or Origin is refused (DNS-rebinding protection)', async () => {
    assert.equal(await raw('/mcp', { host: `evil.example:${crm.port}` }), 403);
    assert.equal(await raw('/sse', { host: `attacker.example` }, 'GET'), 403);
    assert.equal(await raw('/mcp', { host: `127.0.0.1:${crm.port}`, origin: 'http://evil.example' }), 403);
  });

  test('loopback names are accepted on any port', async () => {
    // Not an initialize request: reaches the MCP handler and is refused there with 400, not 403.
    assert.equal(await raw('/mcp', { host: 'localhost:1' }), 400);
    assert.equal(await raw('/mcp', { host: `127.0.0.1:${crm.port}`, origin: 'http://localhost:3000' }), 400);
  });

  test('unknown sessions, paths and methods are refused', async () => {
    assert.equal(await raw('/mcp', { 'mcp-session-id': 'nope' }), 404);
    assert.equal(await raw('/messages?sessionId=nope', {}), 404);
    assert.equal(await raw('/mcp', {}, 'GET'), 400);
    assert.equal(await raw('/mcp', {}, 'PUT'), 405);
    assert.equal(await raw('/elsewhere', {}, 'GET'), 404);
    assert.equal(await raw('/mcp', {}, 'POST', 'not json'), 400);
  });
});

describe('demo CRM as a downstream observer (GET /observed)', () => {
  let idp: DevIdp;
  let crm: CrmHttpServer;
  const agent = { clientId: 'agent', clientSecret: 'agent-secret' };
  before(async () => {
    idp = await startDevIdp({
      users: [{ sub: 'alice', password: 'pw', claims: { role: 'rep' } }],
      clients: [{ ...agent, grantTypes: ['password'] }],
    });
    crm = await startCrmHttp({ auth: { issuer: idp.issuer }, observe: { max: 4 } });
  });
  after(async () => {
    await crm?.close();
    await idp?.close();
  });

  const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
  async function observed(): Promise<{ text: string; body: { seen: ObservedCredential[]; total: number } }> {
    const res = await fetch(crm.observedUrl!);
    assert.equal(res.status, 200);
    const text = await res.text();
    return { text, body: JSON.parse(text) as { seen: ObservedCredential[]; total: number } };
  }

  test('lists fingerprints and verified claims of what it received, never the credential itself', async () => {
    assert.equal(crm.observedUrl, `http://127.0.0.1:${crm.port}/observed`);
    const { accessToken } = await idp.passwordToken({
      ...agent,
      username: 'alice',
      password: 'pw',
      resource: crm.url,
      scope: 'crm:read',
    });
    const before = (await observed()).body.total;
    const client = new Client({ name: 'observer-test', version: '0.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(crm.url), {
        requestInit: { headers: { authorization: `Bearer ${accessToken}`, 'x-api-key': 'leaked-agent-key' } },
      }),
    );
    try {
      // Positive control: the token works at the CRM, so it was verified.
      assert.notEqual((await callTool(client, 'list_customers')).isError, true);
    } finally {
      await client.close();
    }
    const { text, body } = await observed();
    assert.ok(body.total > before, 'new entries were recorded');
    const bearer = body.seen.filter((e) => e.header === 'authorization');
    assert.ok(bearer.length > 0);
    for (const e of bearer) {
      assert.equal(e.fingerprint, sha(accessToken), 'sha256 of the token as received, without "Bearer "');
      assert.equal(e.verified, true);
      assert.deepEqual(e.claims, { sub: 'alice', aud: crm.url, iss: idp.issuer });
    }
    const apiKey = body.seen.find((e) => e.header === 'x-api-key');
    assert.ok(apiKey, 'an API key reaching the CRM is seen too');
    assert.equal(apiKey.fingerprint, sha('leaked-agent-key'));
    assert.equal(apiKey.claims, undefined);
    assert.ok(
      !text.includes(accessToken) && !text.includes('leaked-agent-key') && !text.includes('eyJ'),
      'no credential in the answer',
    );
    // Each entry numbered, so a reader sees what is new after older ones dropped off (max 4 kept).
    assert.equal(body.seen.length, 4);
    assert.deepEqual(
      body.seen.map((e) => e.seq),
      [body.total - 3, body.total - 2, body.total - 1, body.total],
    );
  });

  test('a refused credential is recorded without claims', async () => {
    const res = await fetch(crm.url, {
      method: 'POST',
      headers: { authorization: 'Bearer not-a-token', 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(res.status, 401);
    const last = (await observed()).body.seen.at(-1);
    assert.deepEqual(
      { ...last, seq: 0, at: '' },
      { seq: 0, at: '', header: 'authorization', fingerprint: sha('not-a-token'), verified: false },
    );
  });

  test('GET only; a foreign Origin is refused; a CRM without observe has no such path', async () => {
    assert.equal((await fetch(crm.observedUrl!, { method: 'POST' })).status, 405);
    assert.equal((await fetch(crm.observedUrl!, { headers: { origin: 'http://evil.example' } })).status, 403);
    const plain = await startCrmHttp({});
    try {
      assert.equal(plain.observedUrl, undefined);
      assert.equal((await fetch(`http://127.0.0.1:${plain.port}/observed`)).status, 404);
    } finally {
      await plain.close();
    }
  });
});

describe('process lifecycle', () => {
  test('stdio: stdout carries only JSON-RPC and the server exits when stdin closes', async () => {
    const child = spawn(process.execPath, [STDIO_ENTRY], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.resume();
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
    };
    child.stdin.write(`${JSON.stringify(init)}\n`);
    const deadline = Date.now() + 5000;
    while (!stdout.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(stdout.includes('\n'), 'the server answered initialize');
    const exited = once(child, 'exit');
    child.stdin.end();
    const [code] = (await within(exited, 5000, 'stdio server did not exit').finally(() => child.kill())) as [
      number | null,
    ];
    assert.equal(code, 0);
    const lines = stdout.split('\n').filter((l) => l.length > 0);
    assert.ok(lines.length >= 1);
    for (const line of lines) {
      const msg = JSON.parse(line) as { jsonrpc?: string };
      assert.equal(msg.jsonrpc, '2.0');
    }
    assert.match(lines[0] ?? '', /"serverInfo"/);
  });

  test('http: close() with open sessions lets the process exit on its own', async () => {
    // The child starts the server and, on a line on stdin, calls close() and does nothing else:
    // it must then exit by itself (no process.exit), even with clients still connected.
    const script = `
      import { startCrmHttp } from ${JSON.stringify(HTTP_MODULE)};
      const crm = await startCrmHttp({});
      process.stdout.write(JSON.stringify({ url: crm.url, sseUrl: crm.sseUrl }) + '\\n');
      process.stdin.once('data', () => { process.stdin.destroy(); void crm.close(); });
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const [line] = (await once(child.stdout.setEncoding('utf8'), 'data')) as [string];
    const { url, sseUrl } = JSON.parse(line) as { url: string; sseUrl: string };

    const streamable = new Client({ name: 'lifecycle', version: '0' });
    await streamable.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        reconnectionOptions: {
          maxRetries: 0,
          initialReconnectionDelay: 10,
          maxReconnectionDelay: 10,
          reconnectionDelayGrowFactor: 1,
        },
      }),
    );
    const sse = new Client({ name: 'lifecycle', version: '0' });
    await sse.connect(new SSEClientTransport(new URL(sseUrl)));
    assert.equal((await sse.listTools()).tools.length, 4);

    try {
      const exited = once(child, 'exit');
      child.stdin.write('close\n');
      const [code] = (await within(exited, 5000, 'http server process did not exit after close()')) as [number | null];
      assert.equal(code, 0);
    } finally {
      child.kill();
      await streamable.close();
      await sse.close();
    }
  });
});
