/**
 * stdio upstreams run as the user: a child per session rooted at the user's
 * own folder (`{user}` in args), never shared, within caps — so even a policy
 * opened wide cannot give alice bob's files: her server does not know them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { filesystemServerEntry } from '../demo/quickstart/files.js';
import { connectStreamable } from './helpers/clients.js';
import { startFixture, type Fixture, type FixtureOptions } from './helpers/fixture.js';
import { openSession, postJson } from './helpers/raw-http.js';
import { tempDir } from './helpers/tmp.js';
import { TestSigner } from './helpers/test-signer.js';
import { packageBin, resultText } from './helpers/transport-third-party.js';

/** A fixture whose `files` upstream is server-filesystem, one child per user rooted at `<root>/<user>`, under a wide-open policy. */
function filesFixture(
  root: string,
  perUser: Record<string, unknown> = {},
  extra: Partial<FixtureOptions> = {},
): Promise<Fixture> {
  return startFixture({
    upstreams: {
      files: {
        transport: 'stdio',
        command: process.execPath,
        args: [filesystemServerEntry(), join(root, '{user}')],
        envAllow: ['PATH'],
        perUser,
      },
    },
    // Opened wide on purpose: the boundary under test is the process, not the policy.
    policy: [{ id: 'everything', effect: 'allow', upstreams: ['files'], tools: ['*'] }],
    ...extra,
  });
}

describe('per-user stdio processes', () => {
  let fx: Fixture;
  let root: string;
  before(async () => {
    root = realpathSync(tempDir());
    for (const u of ['alice', 'bob', 'carol']) {
      mkdirSync(join(root, u));
      writeFileSync(join(root, u, 'secret.txt'), `${u}'s secret ${u.toUpperCase()}-7731`);
    }
    fx = await filesFixture(root, { maxPerUser: 2, maxTotal: 10 });
  });
  after(() => fx?.close());

  it("alice's server is rooted at her folder: she reads her file (positive control) and her server refuses bob's", async () => {
    const alice = await connectStreamable(
      fx.gateway.urlFor('files'),
      await fx.headersFor('alice', { upstream: 'files' }),
    );
    try {
      const own = await alice.callTool({
        name: 'read_text_file',
        arguments: { path: join(root, 'alice', 'secret.txt') },
      });
      assert.match(JSON.stringify(own.content), /ALICE-7731/);
      const dirs = JSON.stringify((await alice.callTool({ name: 'list_allowed_directories', arguments: {} })).content);
      assert.ok(dirs.includes(join(root, 'alice')) && !dirs.includes(join(root, 'bob')), dirs);
      const theirs = await alice
        .callTool({ name: 'read_text_file', arguments: { path: join(root, 'bob', 'secret.txt') } })
        .catch((e: Error) => e);
      assert.doesNotMatch(JSON.stringify(theirs instanceof Error ? theirs.message : theirs), /BOB-7731/);
      assert.match(
        JSON.stringify(theirs instanceof Error ? theirs.message : theirs),
        /denied|outside|not allowed|Access/i,
      );
    } finally {
      await alice.close();
    }
    const bob = await connectStreamable(fx.gateway.urlFor('files'), await fx.headersFor('bob', { upstream: 'files' }));
    try {
      const own = await bob.callTool({ name: 'read_text_file', arguments: { path: join(root, 'bob', 'secret.txt') } });
      assert.match(JSON.stringify(own.content), /BOB-7731/);
    } finally {
      await bob.close();
    }
  });

  it("at her cap a user's least recently used child is ended, not anyone else's; past the upstream's total, new sessions are refused", async () => {
    const url = fx.gateway.urlFor('files');
    const carol = await fx.headersFor('carol', { upstream: 'files' });
    const bob = await fx.headersFor('bob', { upstream: 'files' });
    const bobs = await openSession(url, bob);
    const [first, second] = [await openSession(url, carol), await openSession(url, carol)];
    const third = await openSession(url, carol);
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
    assert.equal((await postJson(url, carol, list, first)).status, 404, 'her oldest session was ended');
    assert.equal((await postJson(url, carol, list, second)).status, 200);
    assert.equal((await postJson(url, carol, list, third)).status, 200);
    assert.equal((await postJson(url, bob, list, bobs)).status, 200, "bob's child is untouched");
    const live = fx.gateway.runtime.sessions.all().filter((s) => s.routeName === 'files').length;
    assert.ok(live <= 10);
  });

  it("past the upstream's total cap a new session is refused with 503, and the running one keeps working", async () => {
    const fx2 = await filesFixture(root, { maxTotal: 1 });
    try {
      const url = fx2.gateway.urlFor('files');
      const alice = await fx2.headersFor('alice', { upstream: 'files' });
      const sid = await openSession(url, alice);
      const bob = await postJson(url, await fx2.headersFor('bob', { upstream: 'files' }), {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      });
      assert.equal(bob.status, 503);
      assert.equal((await postJson(url, alice, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, sid)).status, 200);
    } finally {
      await fx2.close();
    }
  });

  it('a subject that could name another folder gets no child', async () => {
    const fx2 = await filesFixture(
      root,
      {},
      { idp: { users: [{ sub: '..', password: 'test-password', claims: { role: 'rep', customers: [] } }] } },
    );
    try {
      const r = await postJson(fx2.gateway.urlFor('files'), await fx2.headersFor('..', { upstream: 'files' }), {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      });
      assert.equal(r.status, 403);
    } finally {
      await fx2.close();
    }
  });

  it("the child gets its user's credential in its environment (user-assertion into USER_ASSERTION), and no other user's", async () => {
    const signer = await TestSigner.create();
    const fx2 = await startFixture({
      upstreams: {
        everything: {
          transport: 'stdio',
          command: process.execPath,
          args: [packageBin('@modelcontextprotocol/server-everything')],
          envAllow: ['PATH'],
          perUser: { credentialEnv: 'USER_ASSERTION' },
          downstream: { strategy: 'user-assertion', audience: 'urn:demo:everything', lifetimeSeconds: 300 },
        },
      },
      policy: [{ id: 'everything', effect: 'allow', upstreams: ['everything'], tools: ['*'] }],
      gateway: { signer },
    });
    try {
      for (const user of ['alice', 'bob']) {
        const c = await connectStreamable(
          fx2.gateway.urlFor('everything'),
          await fx2.headersFor(user, { upstream: 'everything' }),
        );
        try {
          const env = JSON.parse(resultText(await c.callTool({ name: 'get-env', arguments: {} }))) as Record<
            string,
            string
          >;
          const jwt = env.USER_ASSERTION!;
          const { payload } = await jwtVerify(jwt, createLocalJWKSet(signer.jwks() as unknown as JSONWebKeySet), {
            audience: 'urn:demo:everything',
            issuer: signer.issuer,
          });
          assert.equal(payload.sub, user);
          assert.ok(
            !Object.values(env).some((v) => v.includes(fx2.apiKey)),
            "the agent's key is not in the child's environment",
          );
        } finally {
          await c.close();
        }
      }
    } finally {
      await fx2.close();
    }
  });

  it("a crashed child fails that user's call alone, is audited, and her next session gets a fresh child", async () => {
    const url = fx.gateway.urlFor('files');
    const alice = await fx.headersFor('alice', { upstream: 'files' });
    const bob = await fx.headersFor('bob', { upstream: 'files' });
    const aliceSid = await openSession(url, alice);
    const bobSid = await openSession(url, bob);
    const read = (who: string) => ({
      jsonrpc: '2.0',
      id: 9,
      method: 'tools/call',
      params: { name: 'read_text_file', arguments: { path: join(root, who, 'secret.txt') } },
    });
    // Kill alice's child (found by its own folder argument), as a crash would.
    const pids = execFileSync('pgrep', ['-f', join(root, 'alice')])
      .toString()
      .trim()
      .split('\n')
      .map(Number)
      .filter((p) => p !== process.pid);
    assert.ok(pids.length >= 1);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    const failed = await postJson(url, alice, read('alice'), aliceSid);
    assert.ok(
      failed.status === 404 || (failed.json as { error?: { code: number } }).error?.code === -32010,
      `status ${failed.status} ${failed.text}`,
    );
    assert.doesNotMatch(failed.text, /ALICE-7731|BOB-7731/);
    const ended = await fx.gateway.runtime.audit.query({ kind: 'session', limit: 50 });
    assert.ok(
      ended.some((e) => e.userSubject === 'alice' && /upstream closed/.test(e.outcome ?? '')),
      'the end of her child is on the record',
    );
    // bob's child never noticed.
    assert.match((await postJson(url, bob, read('bob'), bobSid)).text, /BOB-7731/);
    // alice starts again with a fresh child of her own.
    const again = await openSession(url, alice);
    assert.match((await postJson(url, alice, read('alice'), again)).text, /ALICE-7731/);
  });

  it('an idle child is stopped after perUser.idleTimeoutSeconds; a busy one is not', async () => {
    const fx2 = await filesFixture(root, { idleTimeoutSeconds: 1 });
    try {
      const url = fx2.gateway.urlFor('files');
      const alice = await fx2.headersFor('alice', { upstream: 'files' });
      const bob = await fx2.headersFor('bob', { upstream: 'files' });
      const idle = await openSession(url, alice);
      const busy = await openSession(url, bob);
      const list = { jsonrpc: '2.0', id: 3, method: 'tools/list' };
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 300));
        assert.equal((await postJson(url, bob, list, busy)).status, 200, 'a child in use stays');
      }
      assert.equal((await postJson(url, alice, list, idle)).status, 404, 'the idle child and its session are gone');
      const ended = await fx2.gateway.runtime.audit.query({ kind: 'session', subject: 'alice', limit: 10 });
      assert.ok(ended.some((e) => e.outcome === 'ended: idle'));
    } finally {
      await fx2.close();
    }
  });
});
