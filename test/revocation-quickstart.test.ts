/**
 * The quickstart with `npx behalf revoke --user alice` (README, revocation):
 * run in the quickstart's folder, the CLI finds the admin endpoint and its
 * key in .behalf/admin.json, and alice's open legacy SSE stream ends within
 * a second while bob's stays open; alice's token is refused afterwards, and
 * a fresh one from `behalf token` works again.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startQuickstart, type Quickstart } from '../demo/quickstart/run.js';
import { postJson, rawStream, rpc } from './helpers/raw-http.js';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

describe('quickstart: npx behalf revoke --user alice', () => {
  let qs: Quickstart;

  before(async () => {
    qs = await startQuickstart({ ...process.env, BEHALF_STATE_DIR: join(tempDir(), '.behalf'), BEHALF_PORT: '' });
  });
  after(async () => qs?.close());

  it("ends alice's open stream at once, leaves bob's, and refuses her token until she gets a new one", async () => {
    assert.equal(statSync(join(qs.stateDir, 'admin.json')).mode & 0o777, 0o600);
    assert.equal(statSync(join(qs.stateDir, 'admin-key')).mode & 0o777, 0o600);
    const file = qs.file;
    const alice = await rawStream(file.sse, file.users.alice!.headers);
    const bob = await rawStream(file.sse, file.users.bob!.headers);
    try {
      for (const s of [alice, bob]) assert.equal((await s.nextEvent()).event, 'endpoint');
      const at = Date.now();
      // Run where a user runs it: in the folder holding .behalf/.
      const out = await run(process.execPath, [CLI, 'revoke', '--user', 'alice', '--reason', 'laptop stolen'], {
        cwd: dirname(qs.stateDir),
      });
      assert.match(out.stdout, /revoked user alice/);
      const ended = await Promise.race([
        alice.ended,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000)),
      ]);
      assert.ok(ended !== undefined && ended - at <= 1000 + 500, "alice's stream still open a second later");
      assert.equal(bob.isEnded, false, "bob's stream stays open");
      const refused = await postJson(file.gateway, file.users.alice!.headers, rpc('tools/list'));
      assert.equal(refused.status, 401);
      const records = await qs.gateway.runtime.audit.query({ kind: 'revocation', limit: 5 });
      assert.match(records[0]!.reason!, /user alice revoked by admin key quickstart-admin .*laptop stolen/);
      // A token issued after the revocation (the next second) works again.
      await new Promise((r) => setTimeout(r, 1100 - (Date.now() % 1000)));
      const fresh = JSON.parse(
        (await run(process.execPath, [CLI, 'token', '--user', 'alice', '--state-dir', qs.stateDir])).stdout,
      ) as { headers: Record<string, string> };
      const init = await postJson(file.gateway, fresh.headers, {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } },
      });
      assert.equal(init.status, 200, init.text);
      assert.ok(JSON.parse(readFileSync(join(qs.stateDir, 'admin.json'), 'utf8')).url);
    } finally {
      alice.close();
      bob.close();
    }
  });
});
