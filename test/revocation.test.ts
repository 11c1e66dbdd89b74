/**
 * Revocation (docs/revocation.md): each source — the admin endpoint, the
 * `behalf revoke` CLI, RFC 7662 introspection, a signed Shared Signals SET,
 * a key withdrawn from the issuer's JWKS — ends, within 1 s, a Streamable
 * HTTP session, its GET stream, a legacy SSE stream, a streamed POST
 * response and a per-user process of the revoked user, while bob's session,
 * streams and process stay up (the positive control). Forged input to every
 * source is refused. One rig serves every case.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { openSession, postJson, rawStream, rpc, type RawStream } from './helpers/raw-http.js';
import { ISS_A, ISS_B, SSF_AUD, SSF_ISS, startRig, type Rig } from './helpers/revocation-rig.js';
import { openStream, type StreamedResponse } from './helpers/sse-client.js';
import type { GatewaySession } from '../src/gateway/session.js';
import { updateKeyStore } from '../src/keys/store.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** The bound every enforcement must meet: a revocation ends what is open within a second. */
const WITHIN_MS = 1000;

interface Open {
  sub: string;
  sid: string;
  get: RawStream;
  post: StreamedResponse;
  sse: RawStream;
  procSid: string;
  pid: number;
  headers: Record<string, string>;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    // ESRCH: the process is gone, which is what the caller asks about.
    return false;
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('revocation ends everything a revoked user has open, within a second', () => {
  let rig: Rig;
  let bob: Open;
  const streams: Array<{ close(): void }> = [];

  /** Opens the five things of one user: a session, its GET stream, a streamed POST, a legacy SSE stream, a per-user process. */
  async function openAll(sub: string, o: Parameters<Rig['headers']>[2] = {}): Promise<Open> {
    const rawUrl = rig.gw.urlFor('raw');
    const headers = await rig.headers(sub, 'raw', o);
    const sid = await openSession(rawUrl, headers);
    const get = await rawStream(rawUrl, { ...headers, 'mcp-session-id': sid });
    assert.equal(get.status, 200);
    const post = await openStream(rawUrl, {
      headers: { ...headers, accept: 'application/json, text/event-stream', 'mcp-session-id': sid },
      body: {
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'sleep', arguments: { ms: 6000 }, _meta: { progressToken: 'p' } },
      },
    });
    await post.waitFor((e) => e.json?.method === 'notifications/progress', 5000);
    const sse = await rawStream(`${rig.gw.baseUrl}/mcp/raw/sse`, headers);
    assert.equal((await sse.nextEvent()).event, 'endpoint');
    const procHeaders = await rig.headers(sub, 'proc', o);
    const procSid = await openSession(rig.gw.urlFor('proc'), procHeaders);
    const session = rig.gw.runtime.sessions.peek(procSid) as GatewaySession;
    const pid = (session.upstream as unknown as { transport: { pid?: number } }).transport.pid!;
    assert.ok(alive(pid));
    streams.push(get, post, sse);
    return { sub, sid, get, post, sse, procSid, pid, headers };
  }

  async function assertEnded(u: Open, since: number): Promise<void> {
    const deadline = since + WITHIN_MS;
    const by = (p: Promise<unknown>) =>
      Promise.race([p.then(() => true), sleep(deadline - Date.now()).then(() => false)]);
    assert.ok(await by(u.get.ended), `${u.sub}: GET stream still open after ${WITHIN_MS} ms`);
    assert.ok(await by(u.post.ended), `${u.sub}: streamed POST response still open`);
    assert.ok(await by(u.sse.ended), `${u.sub}: legacy SSE stream still open`);
    while (alive(u.pid) && Date.now() < deadline) await sleep(20);
    assert.ok(!alive(u.pid), `${u.sub}: per-user process still running`);
    assert.equal(rig.gw.runtime.sessions.peek(u.sid), undefined, `${u.sub}: session still held`);
    assert.equal(rig.gw.runtime.sessions.peek(u.procSid), undefined, `${u.sub}: process session still held`);
    // The revoked token is refused from now on.
    assert.equal((await postJson(rig.gw.urlFor('raw'), u.headers, rpc('tools/list'), u.sid)).status, 401);
  }

  async function assertBobUp(): Promise<void> {
    for (const s of [bob.get, bob.sse]) assert.equal(s.isEnded, false, 'bob: a stream ended');
    assert.ok(alive(bob.pid), "bob's process ended");
    const r = await postJson(rig.gw.urlFor('raw'), bob.headers, rpc('tools/list'), bob.sid);
    assert.equal(r.status, 200, `bob: ${r.text}`);
  }

  before(async () => {
    rig = await startRig();
    bob = await openAll('bob');
  });
  after(async () => {
    for (const s of streams) s.close();
    await rig?.close();
  });

  it('admin endpoint: an admin key revokes; an agent key, no key, or a bad request do not', async () => {
    const alice = await openAll('alice-admin');
    const url = `${rig.gw.runtime.revocations!.adminUrl}/revocations`;
    const body = JSON.stringify({ kind: 'user', value: 'alice-admin', issuer: ISS_A, reason: 'laptop stolen' });
    const post = (auth?: string, b = body) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
        body: b,
      });
    assert.equal((await post(rig.apiKey)).status, 401, "an agent's key is not an admin credential");
    assert.equal((await post()).status, 401);
    assert.equal((await post(rig.adminKey, '{"kind":"everything","value":"x"}')).status, 400);
    assert.equal(alice.get.isEnded, false, 'nothing was revoked by the refused calls');
    // The admin key is no agent credential either.
    const asAgent = await postJson(
      rig.gw.urlFor('raw'),
      { ...bob.headers, 'x-api-key': rig.adminKey },
      rpc('tools/list'),
      bob.sid,
    );
    assert.equal(asAgent.status, 401);
    const at = Date.now();
    const res = await post(rig.adminKey);
    assert.equal(res.status, 201);
    assert.equal(((await res.json()) as { revocation: { actor: string } }).revocation.actor, 'admin key admin-1');
    await assertEnded(alice, at);
    await assertBobUp();
    const records = await rig.gw.runtime.audit.query({ kind: 'revocation', limit: 10 });
    assert.ok(
      records.some(
        (r) => /alice-admin/.test(r.reason!) && /laptop stolen/.test(r.reason!) && /admin key admin-1/.test(r.reason!),
      ),
    );
    // A token alice obtains after the revocation works again: the revocation counts from its time.
    await sleep(1100);
    const fresh = await rig.headers('alice-admin', 'raw');
    assert.equal(
      (
        await postJson(rig.gw.urlFor('raw'), fresh, {
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } },
        })
      ).status,
      200,
    );
  });

  it('behalf revoke: through the admin endpoint, found from admin.json in a state folder', async () => {
    const alice = await openAll('alice-cli');
    const stateDir = join(rig.dir, 'state');
    await run('mkdir', ['-p', stateDir]);
    writeFileSync(
      join(stateDir, 'admin.json'),
      JSON.stringify({ url: rig.gw.runtime.revocations!.adminUrl, key: `file:${rig.adminKeyFile}` }),
    );
    const at = Date.now();
    const out = await run(process.execPath, [
      CLI,
      'revoke',
      '--user',
      'alice-cli',
      '--reason',
      'left the company',
      '--state-dir',
      stateDir,
    ]);
    assert.match(out.stdout, /revoked user alice-cli/);
    await assertEnded(alice, at);
    await assertBobUp();
    // With an agent's key the CLI is refused, and says so.
    writeFileSync(join(rig.dir, 'agent-key'), rig.apiKey);
    const refused = await run(process.execPath, [
      CLI,
      'revoke',
      '--user',
      'bob',
      '--admin',
      rig.gw.runtime.revocations!.adminUrl!,
      '--admin-key',
      `file:${join(rig.dir, 'agent-key')}`,
    ]).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    assert.ok(refused && refused.code === 2 && /401/.test(refused.stderr), 'an agent key cannot revoke');
    await assertBobUp();
  });

  it('introspection, on an issuer failing closed and one failing open: an inactive token ends its sessions; down, closed gives 503 and open serves', async () => {
    const alice = await openAll('alice-intro');
    const dora = await openAll('dora-intro', { iss: ISS_B, key: rig.keyB });
    const at = Date.now();
    rig.intro.inactive.add('alice-intro');
    rig.intro.inactive.add('dora-intro');
    await assertEnded(alice, at + 300);
    await assertEnded(dora, at + 300);
    await assertBobUp();
    rig.intro.down = true;
    try {
      const closed = await postJson(rig.gw.urlFor('raw'), await rig.headers('carol-closed', 'raw'), rpc('tools/list'));
      assert.equal(closed.status, 503, 'issuer A fails closed');
      const open = await rig.headers('carol-open', 'raw', { iss: ISS_B, key: rig.keyB });
      const sid = await openSession(rig.gw.urlFor('raw'), open);
      assert.ok(sid, 'issuer B fails open for a verified token');
    } finally {
      rig.intro.down = false;
    }
  });

  it('Shared Signals: a signed session-revoked SET ends the user; unsigned, wrong-audience and foreign-key SETs are refused', async () => {
    const alice = await openAll('alice-set');
    const url = `${rig.gw.runtime.revocations!.adminUrl}/ssf/events`;
    const events = {
      'https://schemas.openid.net/secevent/caep/event-type/session-revoked': {
        subject: { format: 'iss_sub', iss: ISS_A, sub: 'alice-set' },
        event_timestamp: Math.floor(Date.now() / 1000),
      },
    };
    const set = (aud = SSF_AUD, key = rig.transmitter.key) =>
      new SignJWT({ events })
        .setProtectedHeader({ alg: 'ES256', kid: rig.transmitter.kid, typ: 'secevent+jwt' })
        .setIssuer(SSF_ISS)
        .setAudience(aud)
        .setIssuedAt()
        .setJti(`set-${Math.random()}`)
        .sign(key);
    const push = (body: string) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body });
    const unsigned = new UnsecuredJWT({ events })
      .setIssuer(SSF_ISS)
      .setAudience(SSF_AUD)
      .setIssuedAt()
      .setJti('u')
      .encode();
    const refusals: Array<[string, Response]> = [
      ['unsigned', await push(unsigned)],
      ['wrong audience', await push(await set('https://someone-else.test'))],
      ['foreign key', await push(await set(SSF_AUD, (await generateKeyPair('ES256')).privateKey))],
    ];
    for (const [what, r] of refusals) assert.equal(r.status, 400, what);
    assert.equal(((await refusals[1]![1].json()) as { err: string }).err, 'invalid_audience');
    assert.equal(alice.get.isEnded, false, 'no forged SET revoked anything');
    const at = Date.now();
    assert.equal((await push(await set())).status, 202);
    await assertEnded(alice, at);
    await assertBobUp();
  });

  it('JWKS: a key the issuer withdraws ends the tokens it signed, cached or not', async () => {
    const alice = await openAll('alice-jwks', { key: rig.keyA2 });
    const at = Date.now();
    rig.jwksA.publish([rig.keyA1]);
    await assertEnded(alice, at + 300);
    await assertBobUp();
  });

  it("admin endpoint, one session by id: that session and its streams end, the same user's other sessions stay", async () => {
    const erin = await openAll('erin-session');
    const at = Date.now();
    const res = await fetch(`${rig.gw.runtime.revocations!.adminUrl}/revocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${rig.adminKey}` },
      body: JSON.stringify({ kind: 'session', value: erin.sid, reason: 'session hijack suspected' }),
    });
    assert.equal(res.status, 201);
    const deadline = (p: Promise<unknown>) =>
      Promise.race([p.then(() => true), sleep(at + WITHIN_MS - Date.now()).then(() => false)]);
    assert.ok(await deadline(erin.get.ended), 'the GET stream of the revoked session ended');
    assert.ok(await deadline(erin.post.ended), 'its streamed POST ended');
    assert.equal((await postJson(rig.gw.urlFor('raw'), erin.headers, rpc('tools/list'), erin.sid)).status, 404);
    assert.equal(erin.sse.isEnded, false, "erin's other session (legacy SSE) stays");
    assert.ok(alive(erin.pid), "erin's per-user process stays");
    await assertBobUp();
  });

  it('behalf keys revoke (the key store): the streams the revoked API key holds open end, not only its next request', async () => {
    const frank = await openAll('frank-key', { apiKey: rig.storeKey });
    const at = Date.now();
    await updateKeyStore(join(rig.dir, 'keys.json'), (doc) => {
      const k = doc.keys.find((x) => x.id === 'agent-store-1')!;
      k.status = 'revoked';
      k.revokedAt = new Date().toISOString();
    });
    const by = (p: Promise<unknown>) =>
      Promise.race([p.then(() => true), sleep(at + WITHIN_MS - Date.now()).then(() => false)]);
    assert.ok(await by(frank.get.ended), 'GET stream still open');
    assert.ok(await by(frank.post.ended), 'streamed POST still open');
    assert.ok(await by(frank.sse.ended), 'legacy SSE stream still open');
    assert.equal((await postJson(rig.gw.urlFor('raw'), frank.headers, rpc('tools/list'), frank.sid)).status, 401);
    // The session is the client's and the user's, not the key's: the client's other key goes on with it.
    const other = { ...frank.headers, 'x-api-key': rig.apiKey };
    assert.equal((await postJson(rig.gw.urlFor('raw'), other, rpc('tools/list'), frank.sid)).status, 200);
    await assertBobUp();
  });

  it('token hygiene: too old, issued in the future, client-credentials marks; the ordinary token passes', async () => {
    const url = rig.gw.urlFor('raw');
    const now = Math.floor(Date.now() / 1000);
    const send = async (token: string) =>
      (await postJson(url, { 'x-api-key': rig.apiKey, authorization: `Bearer ${token}` }, rpc('tools/list'), bob.sid))
        .status;
    assert.equal(await send(await rig.token('bob', 'raw', { iat: now - 700 })), 401, 'older than maxTokenAgeSeconds');
    assert.equal(await send(await rig.token('bob', 'raw', { iat: now + 120 })), 401, 'iat in the future beyond skew');
    assert.equal(await send(await rig.token('bob', 'raw', { claims: { gty: 'client-credentials' } })), 401);
    assert.equal(await send(await rig.token('agent@clients', 'raw')), 401);
    assert.equal(
      await send(await rig.token('bob', 'raw', { claims: { act: { sub: 'agent' }, client_id: 'other' } })),
      401,
    );
    assert.equal(await send(await rig.token('bob', 'raw')), 200, 'positive control');
  });
});
