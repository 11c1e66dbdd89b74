/**
 * Bounded resources (README, Limits and abuse): connections per remote address and
 * in total (with /healthz still answered at the cap), request bodies buffered
 * at once, the header deadline, and the cost of failed authentications on the
 * audit trail; each refusal logged once per interval, not once per connection.
 * The gateway runs as its own process with small limits; hostile connections
 * come from other loopback addresses than alice's, and each test ends with
 * alice served again.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { openSession, postJson, rawRequest, rpcResult, toolCall, type RawResponse } from './helpers/raw-http.js';
import { OWN_ROOT, startSpawnedGateway, type SpawnedGateway } from './helpers/spawned-gateway.js';

const PER_IP = 20;
const MAX_CONNECTIONS = 40;
const OVERFLOW = 16; // max(16, maxConnections / 16)
const BUFFERED = 1_048_576;
const HEADERS_TIMEOUT_MS = 3000;

interface Conn {
  socket: Socket;
  /** Resolves when the server ends it: after how long (from connect), with what it said. */
  closed: Promise<{ afterMs: number; text: string }>;
  isClosed(): boolean;
}

/** Opens `n` connections from `localAddress`, each sending `first` (or nothing) once connected. */
async function openConns(n: number, localAddress: string, url: string, first?: string): Promise<Conn[]> {
  const u = new URL(url);
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Conn>((resolve) => {
          const socket = connect({ host: u.hostname, port: Number(u.port), localAddress });
          let text = '';
          let closed = false;
          let connectedAt = 0;
          socket.setEncoding('latin1');
          socket.on('data', (d: string) => (text += d));
          socket.on('error', () => undefined); // a reset is one of the outcomes measured here
          const done = new Promise<{ afterMs: number; text: string }>((r) =>
            socket.on('close', () => {
              closed = true;
              r({ afterMs: Date.now() - connectedAt, text });
            }),
          );
          socket.on('connect', () => {
            connectedAt = Date.now();
            if (first) socket.write(first);
            resolve({ socket, closed: done, isClosed: () => closed });
          });
        }),
    ),
  );
}

async function destroyAll(conns: Conn[]): Promise<void> {
  for (const c of conns) c.socket.destroy();
  await Promise.all(conns.map((c) => c.closed));
  await sleep(200); // the gateway sees the closes
}

function busy(r: RawResponse): void {
  assert.equal(r.status, 503, r.text);
  assert.equal(r.headers['retry-after'], '1');
  assert.deepEqual(r.json, {
    jsonrpc: '2.0',
    id: null,
    error: { code: -32000, message: 'Server busy: try again later' },
  });
}

describe('limits: connections, buffered bodies, deadlines and failed authentications are bounded', () => {
  let gw: SpawnedGateway;
  let sid: string;
  const call = (body: unknown = toolCall('get_customer', { customer_id: 'c-100' })) =>
    postJson(gw.url, gw.alice, body, sid);
  const served = async () => {
    const result = rpcResult(await call()) as { structuredContent?: { owner?: string } };
    assert.equal(result.structuredContent?.owner, 'alice');
  };
  const logged = (re: RegExp) => gw.output.filter((l) => re.test(l));

  before(async () => {
    gw = await startSpawnedGateway({
      server: {
        maxConnectionsPerIp: PER_IP,
        maxConnections: MAX_CONNECTIONS,
        maxBufferedBodyBytes: BUFFERED,
        headersTimeoutMs: HEADERS_TIMEOUT_MS,
      },
    });
    sid = await openSession(gw.url, gw.alice);
  });
  after(async () => gw?.close());

  it(`one address past maxConnectionsPerIp (${PER_IP}): closed at once, unanswered, logged once; others are served`, async () => {
    const conns = await openConns(PER_IP + 10, '127.0.0.2', gw.url);
    await sleep(500);
    const refused = conns.filter((c) => c.isClosed());
    assert.equal(refused.length, 10, 'exactly the connections past the cap were closed');
    for (const c of refused) {
      const { afterMs, text } = await c.closed;
      assert.equal(text, '', 'closed without an answer');
      assert.ok(afterMs < 500, `closed at once (${afterMs} ms)`);
    }
    await served();
    assert.equal((await rawRequest(`${gw.baseUrl}/healthz`)).status, 200);
    assert.equal(logged(/connection from 127\.0\.0\.2 closed: server\.maxConnectionsPerIp \(20\) reached/).length, 1);
    await destroyAll(conns);
  });

  it(`past maxConnections (${MAX_CONNECTIONS}): 503 with Retry-After, /healthz still answers, past the overflow closed at once`, async () => {
    const hogs = [...(await openConns(PER_IP, '127.0.0.3', gw.url)), ...(await openConns(PER_IP, '127.0.0.4', gw.url))];
    await sleep(300);
    assert.ok(
      hogs.every((c) => !c.isClosed()),
      'the cap itself is reached, not passed',
    );
    busy(await call());
    assert.equal((await rawRequest(`${gw.baseUrl}/healthz`)).status, 200, 'liveness answers at the cap');
    await sleep(200);
    const more = await openConns(OVERFLOW + 5, '127.0.0.5', gw.url);
    await sleep(500);
    assert.equal(more.filter((c) => c.isClosed()).length, 5, 'past the overflow, connections are closed at once');
    assert.equal(logged(/request refused with 503: server\.maxConnections \(40\) reached/).length, 1);
    assert.equal(logged(/server\.maxConnections \(40\) and its overflow reached/).length, 1);
    await destroyAll([...hogs, ...more]);
    await served();
  });

  it(`request headers must arrive within headersTimeoutMs (${HEADERS_TIMEOUT_MS} ms): 408, closed`, async () => {
    const [slow] = await openConns(
      1,
      '127.0.0.6',
      gw.url,
      `POST /mcp/crm HTTP/1.1\r\nHost: ${new URL(gw.url).host}\r\n`,
    );
    const { afterMs, text } = await slow!.closed;
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.ok(afterMs >= HEADERS_TIMEOUT_MS - 100 && afterMs < HEADERS_TIMEOUT_MS + 2500, `closed after ${afterMs} ms`);
    await served();
  });

  it(`bodies buffered at once past maxBufferedBodyBytes (${BUFFERED}): 503 with Retry-After, served again once released`, async () => {
    const u = new URL(gw.url);
    const head = (length: number) =>
      `POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\ncontent-type: application/json\r\naccept: application/json\r\n` +
      `x-api-key: ${gw.alice['x-api-key']}\r\nauthorization: ${gw.alice.authorization}\r\ncontent-length: ${length}\r\n\r\n{`;
    // alice herself (authenticated) holds two unfinished 400 kB bodies: 800 kB of the budget are taken.
    const holds = await openConns(2, '127.0.0.7', gw.url, head(400_000));
    await sleep(300);
    const [third] = await openConns(1, '127.0.0.7', gw.url, head(400_000));
    const refusedThird = await third!.closed;
    assert.match(refusedThird.text, /^HTTP\/1\.1 503 /);
    assert.match(refusedThird.text, /\r\nretry-after: 1\r\n/i);
    await served(); // a small body still fits
    const big = toolCall('get_customer', { customer_id: 'c-100', pad: 'x'.repeat(300_000) });
    busy(await call(big));
    assert.equal(logged(/request refused with 503: server\.maxBufferedBodyBytes \(1048576\) reached/).length, 1);
    await destroyAll(holds);
    const result = rpcResult(await call(big)) as { structuredContent?: { owner?: string } };
    assert.equal(result.structuredContent?.owner, 'alice', 'the same body is served once the budget is free');
  });

  it('failed authentications from one source: the first 20 recorded one by one, the rest as one record with a count', async () => {
    for (let i = 0; i < 60; i++) {
      const r = await postJson(gw.url, {}, toolCall('get_customer', { customer_id: 'c-100' }));
      assert.equal(r.status, 401);
    }
    await served();
    // The per-address refusals of the first test are summed up when their 10 s interval ends.
    const until = Date.now() + 12_000;
    while (Date.now() < until && logged(/maxConnectionsPerIp \(20\) reached: 9 more in the last 10 s/).length === 0)
      await sleep(250);
    assert.equal(logged(/maxConnectionsPerIp \(20\) reached: 9 more in the last 10 s/).length, 1);

    await gw.close(); // writes what was counted
    const store = new SqliteAuditStore(gw.auditPath);
    try {
      const failures = (await store.query({ kind: 'auth-failure', limit: 1000 })).filter((f) =>
        f.reason?.startsWith('client_auth_required'),
      );
      const single = failures.filter((f) => f.reason === 'client_auth_required: Client authentication required');
      const summed = failures.filter((f) => !single.includes(f));
      assert.equal(single.length, 20);
      assert.deepEqual(
        summed.map((f) => [f.reason, f.route, f.refusedBy]),
        [
          [
            'client_auth_required: Client authentication required (40 more from 127.0.0.1 in the last 10 s, not recorded one by one)',
            'crm',
            'authenticate',
          ],
        ],
      );
    } finally {
      await store.close();
    }
    const verify = spawnSync(
      process.execPath,
      [join(OWN_ROOT, 'src/cli/main.js'), 'audit', 'verify', '--db', gw.auditPath],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(verify.status, 0, `${verify.stdout}${verify.stderr}`);
  });
});
