/**
 * Published MCP servers behind the gateway, unmodified, as stdio children:
 * `@modelcontextprotocol/server-everything` and
 * `@modelcontextprotocol/server-filesystem`, over both downstream
 * transports. An allow-all policy lets everything through; a narrower one
 * hides the other tools from tools/list and denies calling them. Server→client
 * traffic (progress, sampling, elicitation) crosses the gateway. And a stdio
 * child inherits exactly the allow-listed environment and a private cwd.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { tempDir } from './helpers/tmp.js';
import { assertDenied, closeAll, connectVia, DOWNSTREAMS, type Downstream } from './helpers/transport-clients.js';
import type { ProcessReport } from './helpers/transport-env-server.js';
import { nodeStdio, packageBin, resultText } from './helpers/transport-third-party.js';

const EVERYTHING = packageBin('@modelcontextprotocol/server-everything');
const FILESYSTEM = packageBin('@modelcontextprotocol/server-filesystem');
const ENV_PROBE = fileURLToPath(new URL('./helpers/transport-env-server.js', import.meta.url));

const SECRET = 'sk-live-behalf-test-secret-must-not-leak';
/** Set in the test process itself: a child must not inherit the gateway's own environment either. */
const PARENT_ONLY = 'BEHALF_TEST_PARENT_ONLY_SECRET';
const FILE_TEXT = 'hello from behind the gateway\n';

const POLICY = [
  {
    id: 'allow-all',
    effect: 'allow',
    upstreams: ['everything', 'fs', 'fs-roots', 'envprobe'],
    tools: ['*'],
    prompts: ['*'],
    resources: ['*'],
  },
  { id: 'echo-and-sum-only', effect: 'allow', upstreams: ['everything-some'], tools: ['echo', 'get-sum'] },
  { id: 'read-only-files', effect: 'allow', upstreams: ['fs-read'], tools: ['read_text_file', 'list_directory'] },
];
const RULE_IDS = POLICY.map((r) => r.id);

describe('third-party MCP servers behind the gateway', () => {
  let fx: Fixture;
  let dir: string;
  const clients: Client[] = [];

  async function connect(
    kind: Downstream,
    route: string,
    user = 'alice',
    options?: Parameters<typeof connectVia>[4],
    setup?: Parameters<typeof connectVia>[5],
  ): Promise<Client> {
    const client = await connectVia(fx, kind, route, await fx.headersFor(user, { upstream: route }), options, setup);
    clients.push(client);
    return client;
  }

  before(async () => {
    dir = tempDir('behalf-fs-upstream-');
    writeFileSync(join(dir, 'hello.txt'), FILE_TEXT);
    process.env[PARENT_ONLY] = SECRET;
    fx = await startFixture({
      upstreams: {
        everything: nodeStdio(EVERYTHING, ['stdio']),
        'everything-some': nodeStdio(EVERYTHING, ['stdio']),
        fs: nodeStdio(FILESYSTEM, [dir]),
        'fs-read': nodeStdio(FILESYSTEM, [dir]),
        'fs-roots': { ...nodeStdio(FILESYSTEM, [dir]), forwardClientRoots: true },
        envprobe: nodeStdio(ENV_PROBE, ['serve'], {
          envAllow: ['PATH', 'BEHALF_ALLOWED'],
          env: { BEHALF_DECLARED: { value: 'declared-value' } },
        }),
      },
      policy: POLICY,
      gateway: {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          BEHALF_ALLOWED: 'allowed-value',
          BEHALF_UPSTREAM_SECRET: SECRET,
          AWS_SECRET_ACCESS_KEY: SECRET,
        },
      },
    });
  });
  after(async () => {
    await closeAll(clients);
    await fx?.close();
    delete process.env[PARENT_ONLY];
  });

  for (const down of DOWNSTREAMS) {
    describe(`server-everything over ${down}`, () => {
      it('tools/list and tools/call work with an allow-all policy', async () => {
        const client = await connect(down, 'everything');
        assert.equal(client.getServerVersion()?.name, 'mcp-servers/everything');
        const names = (await client.listTools()).tools.map((t) => t.name);
        for (const n of ['echo', 'get-sum', 'get-env', 'trigger-long-running-operation'])
          assert.ok(names.includes(n), `${n} listed`);
        assert.equal(
          resultText(await client.callTool({ name: 'echo', arguments: { message: 'hi from alice' } })),
          'Echo: hi from alice',
        );
        assert.match(resultText(await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } })), /is 5\./);
        assert.ok((await client.listPrompts()).prompts.some((p) => p.name === 'simple-prompt'));
      });

      it('a policy allowing only echo and get-sum hides everything else and denies calling it', async () => {
        const client = await connect(down, 'everything-some');
        assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['echo', 'get-sum']);
        assert.deepEqual((await client.listPrompts()).prompts, []);
        assert.equal(
          resultText(await client.callTool({ name: 'echo', arguments: { message: 'allowed' } })),
          'Echo: allowed',
        );
        await assertDenied(client.callTool({ name: 'get-env', arguments: {} }), RULE_IDS);
        await assertDenied(
          client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.1, steps: 1 } }),
          RULE_IDS,
        );
        await assertDenied(client.getPrompt({ name: 'simple-prompt' }), RULE_IDS);
      });

      it('progress notifications of a call reach the caller', async () => {
        const client = await connect(down, 'everything');
        const progress: number[] = [];
        const result = await client.callTool(
          { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
          undefined,
          {
            onprogress: (p) => progress.push(p.progress),
          },
        );
        assert.match(resultText(result), /completed/);
        // The SDK 1.x client handles notifications a microtask after responses, so the
        // last progress may lose the race with the result it precedes (also without the gateway).
        assert.deepEqual(progress.slice(0, 2), [1, 2]);
      });

      it('sampling and elicitation requests from the server reach the client, and its answers get back', async () => {
        const client = await connect(
          down,
          'everything',
          'alice',
          { capabilities: { sampling: {}, elicitation: {} } },
          (c) => {
            c.setRequestHandler(CreateMessageRequestSchema, (req) => {
              const first = req.params.messages[0]?.content;
              const text = first && !Array.isArray(first) && first.type === 'text' ? first.text : '';
              return { role: 'assistant', model: 'test-model', content: { type: 'text', text: `sampled<${text}>` } };
            });
            c.setRequestHandler(ElicitRequestSchema, () => ({ action: 'accept', content: { name: 'Alice Example' } }));
          },
        );
        const names = (await client.listTools()).tools.map((t) => t.name);
        // Registered only when the client's capabilities arrived intact through initialize.
        assert.ok(names.includes('trigger-sampling-request') && names.includes('trigger-elicitation-request'));
        const sampled = resultText(
          await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'ping', maxTokens: 5 } }),
        );
        assert.match(sampled, /sampled<[^>]*ping>/);
        const elicited = resultText(await client.callTool({ name: 'trigger-elicitation-request', arguments: {} }));
        assert.match(elicited, /Alice Example/);
      });
    });

    describe(`server-filesystem over ${down}`, () => {
      it('list_directory and read_text_file work with an allow-all policy', async () => {
        const client = await connect(down, 'fs');
        const names = (await client.listTools()).tools.map((t) => t.name);
        for (const n of ['read_text_file', 'list_directory', 'write_file', 'move_file'])
          assert.ok(names.includes(n), `${n} listed`);
        assert.match(
          resultText(await client.callTool({ name: 'list_directory', arguments: { path: dir } })),
          /\[FILE\] hello\.txt/,
        );
        assert.equal(
          resultText(await client.callTool({ name: 'read_text_file', arguments: { path: join(dir, 'hello.txt') } })),
          FILE_TEXT,
        );
      });

      it('a read-only policy hides the writing tools and denies calling them, so nothing is written', async () => {
        const client = await connect(down, 'fs-read');
        assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), [
          'list_directory',
          'read_text_file',
        ]);
        assert.equal(
          resultText(await client.callTool({ name: 'read_text_file', arguments: { path: join(dir, 'hello.txt') } })),
          FILE_TEXT,
        );
        const target = join(dir, `written-over-${down}.txt`);
        await assertDenied(
          client.callTool({ name: 'write_file', arguments: { path: target, content: 'x' } }),
          RULE_IDS,
        );
        await assertDenied(
          client.callTool({ name: 'move_file', arguments: { source: join(dir, 'hello.txt'), destination: target } }),
          RULE_IDS,
        );
        assert.equal(existsSync(target), false);
        assert.equal(existsSync(join(dir, 'hello.txt')), true);
      });
    });
  }

  describe('what a stdio child inherits', () => {
    async function describeProcess(user: string): Promise<ProcessReport> {
      const client = await connect('streamable-http', 'envprobe', user);
      const names = [
        'BEHALF_ALLOWED',
        'BEHALF_DECLARED',
        'BEHALF_UPSTREAM_SECRET',
        'AWS_SECRET_ACCESS_KEY',
        PARENT_ONLY,
      ];
      return JSON.parse(
        resultText(await client.callTool({ name: 'describe_process', arguments: { names } })),
      ) as ProcessReport;
    }

    it("exactly the allow-listed and declared variables: no secrets from the gateway's environment or process", async () => {
      const report = await describeProcess('alice');
      assert.deepEqual(report.envNames, ['BEHALF_ALLOWED', 'BEHALF_DECLARED', 'PATH']);
      assert.deepEqual(report.values, {
        BEHALF_ALLOWED: 'allowed-value',
        BEHALF_DECLARED: 'declared-value',
        BEHALF_UPSTREAM_SECRET: null,
        AWS_SECRET_ACCESS_KEY: null,
        [PARENT_ONLY]: null,
      });
    });

    it("a private, empty working directory, never the gateway's own", async () => {
      const report = await describeProcess('alice');
      assert.notEqual(report.cwd, process.cwd());
      assert.match(basename(report.cwd), /^behalf-envprobe-/);
      assert.deepEqual(readdirSync(report.cwd), []);
    });

    it('one child per session: alice and bob never share a process', async () => {
      const [a, b] = [await describeProcess('alice'), await describeProcess('bob')];
      assert.notEqual(a.pid, b.pid);
      assert.notEqual(a.cwd, b.cwd);
    });

    it("server-everything's own get-env sees only PATH (the default allow-list)", async () => {
      const client = await connect('streamable-http', 'everything');
      const text = resultText(await client.callTool({ name: 'get-env', arguments: {} }));
      assert.deepEqual(Object.keys(JSON.parse(text) as Record<string, string>), ['PATH']);
      assert.ok(!text.includes(SECRET));
    });
  });

  describe('MCP roots', () => {
    /** Connects as an agent that offers /etc as its root, announces it, and returns what the server then allows. */
    async function allowedAfterOfferingEtc(route: string): Promise<string> {
      const client = await connect(
        'streamable-http',
        route,
        'alice',
        { capabilities: { roots: { listChanged: true } } },
        (c) => {
          c.setRequestHandler(ListRootsRequestSchema, () => ({ roots: [{ uri: 'file:///etc', name: 'etc' }] }));
        },
      );
      // Wait for the GET stream, then announce the roots so the server asks for them.
      await new Promise((r) => setTimeout(r, 300));
      await client.sendRootsListChanged();
      await new Promise((r) => setTimeout(r, 500));
      return resultText(await client.callTool({ name: 'list_allowed_directories', arguments: {} }));
    }

    it("the agent cannot widen server-filesystem's allowed directory by offering roots (default route)", async () => {
      const allowed = await allowedAfterOfferingEtc('fs');
      assert.doesNotMatch(allowed, /^\/etc$/m);
      assert.match(allowed, new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      const denied = (await fx.gateway.runtime.audit.query({ kind: 'decision', limit: 200 })).filter(
        (e) => e.method === 'notifications/roots/list_changed' && e.route === 'fs',
      );
      assert.ok(
        denied.length > 0 && denied.every((e) => e.decision === 'deny'),
        'the roots notification is denied and audited',
      );
    });

    it('positive control: on a route with forwardClientRoots the same roots do reach the server', async () => {
      assert.match(await allowedAfterOfferingEtc('fs-roots'), /^\/etc$/m);
    });
  });
});
