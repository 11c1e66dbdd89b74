import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { connectStreamable, toolJson } from './helpers/clients.js';
import { openSession, postJson } from './helpers/raw-http.js';
import { tempDir } from './helpers/tmp.js';

const BIN = fileURLToPath(new URL('../../bin/behalf.js', import.meta.url));

async function waitFor(path: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > until) throw new Error(`${path} did not appear`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the quickstart as a user runs it (bin/behalf.js quickstart)', () => {
  it('comes up, tells the truth in quickstart.json, mints fresh headers, and stops cleanly on Ctrl-C', async () => {
    const dir = tempDir();
    const env = { ...process.env, BEHALF_STATE_DIR: dir, BEHALF_PORT: '' };
    const child = spawn(process.execPath, [BIN, 'quickstart'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const file = join(dir, 'quickstart.json');
      await waitFor(file, 20_000);
      const qs = JSON.parse(readFileSync(file, 'utf8')) as {
        gateway: string;
        users: Record<string, { headers: Record<string, string> }>;
      };
      assert.match(out, /Ctrl-C stops everything/);
      assert.ok(out.includes(qs.gateway), 'the banner names the gateway URL');

      const alice = await connectStreamable(qs.gateway, qs.users.alice!.headers);
      assert.equal(
        toolJson(await alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-102' } })).owner,
        'alice',
      );
      await assert.rejects(alice.callTool({ name: 'get_customer', arguments: { customer_id: 'c-202' } }), /Forbidden/);
      await alice.close();

      const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'token', '--user', 'bob'], { env });
      const fresh = JSON.parse(stdout) as { headers: Record<string, string> };
      assert.deepEqual(Object.keys(fresh.headers).sort(), ['authorization', 'x-api-key']);
      assert.notEqual(
        fresh.headers.authorization,
        qs.users.bob!.headers.authorization,
        'a fresh token, not the one in the file',
      );
      const bob = await connectStreamable(qs.gateway, fresh.headers);
      assert.equal(
        toolJson(await bob.callTool({ name: 'get_customer', arguments: { customer_id: 'c-202' } })).owner,
        'bob',
      );
      await bob.close();

      await assert.rejects(
        promisify(execFile)(process.execPath, [BIN, 'token', '--user', 'mallory'], { env }),
        /unknown quickstart user/,
      );

      // Step-up: a token without crm:write reads, but updating asks for the scope (403 insufficient_scope).
      const readOnly = JSON.parse(
        (
          await promisify(execFile)(
            process.execPath,
            [BIN, 'token', '--user', 'alice', '--scope', 'mcp:tools crm:read'],
            { env },
          )
        ).stdout,
      ) as { headers: Record<string, string> };
      const reader = await connectStreamable(qs.gateway, readOnly.headers);
      assert.equal(
        toolJson(await reader.callTool({ name: 'get_customer', arguments: { customer_id: 'c-100' } })).owner,
        'alice',
      );
      await assert.rejects(
        reader.callTool({ name: 'update_customer', arguments: { customer_id: 'c-100', notes: 'x' } }),
        /Insufficient scope/,
      );
      await reader.close();

      // A token for the files upstream works there and only there.
      const filesToken = JSON.parse(
        (await promisify(execFile)(process.execPath, [BIN, 'token', '--user', 'alice', '--upstream', 'files'], { env }))
          .stdout,
      ) as { headers: Record<string, string> };
      const filesUrl = qs.gateway.replace(/\/mcp\/crm$/, '/mcp/files');
      const files = await connectStreamable(filesUrl, filesToken.headers);
      assert.ok((await files.listTools()).tools.some((t) => t.name === 'read_text_file'));
      await files.close();
      await assert.rejects(connectStreamable(qs.gateway, filesToken.headers), /401|invalid|Unauthorized/i);

      // The signed-context pattern from the command line: a request bound to one call, sent with the agent's API key alone.
      const signed = JSON.parse(
        (
          await promisify(execFile)(
            process.execPath,
            [
              BIN,
              'token',
              '--user',
              'bob',
              '--signed-context',
              '--tool',
              'get_customer',
              '--args',
              '{"customer_id":"c-201"}',
            ],
            { env },
          )
        ).stdout,
      ) as { url: string; headers: Record<string, string>; request: Record<string, unknown> };
      const sid = await openSession(signed.url, signed.headers);
      assert.match((await postJson(signed.url, signed.headers, signed.request, sid)).text, /c-201/);
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0);
    assert.equal(
      existsSync(join(dir, 'quickstart.json')),
      false,
      'a stopped quickstart leaves no stale credentials file',
    );
  });
});
