/**
 * Bounded JSON, per-client body caps, authentication before the body, and
 * batches only where the protocol revision has them (docs/architecture.md §2,
 * README, Limits and abuse), against a gateway running as its own process. Each
 * refusal comes with its positive control: the same request within the bound
 * is served.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  openSession,
  postJson,
  rawRequest,
  rawStream,
  rpcResult,
  toolCall,
  type RawResponse,
  type RawStream,
} from './helpers/raw-http.js';
import { startSpawnedGateway, type SpawnedGateway } from './helpers/spawned-gateway.js';

const MAX_KEYS = 1000;
const CLIENT_MAX_BODY = 65_536;
const ping = (id: number | string) => ({ jsonrpc: '2.0', id, method: 'ping' });

function assertRefused(r: RawResponse, status: number, code: number, message: string): void {
  assert.equal(r.status, status, r.text);
  assert.deepEqual(r.json, { jsonrpc: '2.0', id: null, error: { code, message } });
}

function assertAlicesCustomer(r: RawResponse): void {
  const result = rpcResult(r) as { structuredContent?: { owner?: string } };
  assert.equal(result.structuredContent?.owner, 'alice', r.text);
}

/** A get_customer call for c-100 carrying `extra` as a further argument (the CRM ignores it). */
function callWith(extra: string): string {
  return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_customer","arguments":{"customer_id":"c-100","extra":${extra}}}}`;
}

describe('limits: bounded JSON, per-client body caps, batches by protocol version', () => {
  let gw: SpawnedGateway;
  let sid: string;
  before(async () => {
    gw = await startSpawnedGateway({
      server: { maxJsonKeys: MAX_KEYS },
      client: { maxBodyBytes: CLIENT_MAX_BODY },
    });
    sid = await openSession(gw.url, gw.alice);
  });
  after(async () => gw?.close());

  describe('nesting depth (server.maxJsonDepth, default 64)', () => {
    // Envelope, params and arguments are three levels; `extra` nested n deep adds n.
    const nested = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

    it('arguments nested 9,000 deep: 400, -32602 "nesting too deep", before anything is parsed or forwarded', async () => {
      const r = await postJson(gw.url, gw.alice, callWith(nested(9000)), sid);
      assertRefused(r, 400, -32602, 'Invalid params: nesting too deep (more than 64 levels)');
    });

    it('one level past the bound is refused, exactly at the bound is served (positive control)', async () => {
      assertRefused(
        await postJson(gw.url, gw.alice, callWith(nested(62)), sid),
        400,
        -32602,
        'Invalid params: nesting too deep (more than 64 levels)',
      );
      assertAlicesCustomer(await postJson(gw.url, gw.alice, callWith(nested(61)), sid));
      // Brackets inside strings are text, not nesting.
      assertAlicesCustomer(await postJson(gw.url, gw.alice, callWith(JSON.stringify('[{'.repeat(500))), sid));
    });
  });

  describe(`keys and array elements (server.maxJsonKeys, here ${MAX_KEYS})`, () => {
    // The envelope has 4 keys, params 2, arguments customer_id and extra: 8 before what `extra` holds.
    const keys = (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":0`).join(',')}}`;
    const elements = (n: number) => `[${Array.from({ length: n }, () => '0').join(',')}]`;

    it('one key or element past the bound: 413, -32600; exactly at the bound: served (positive control)', async () => {
      const tooMany = 'Request too large: more than 1000 keys and array elements';
      assertRefused(await postJson(gw.url, gw.alice, callWith(keys(MAX_KEYS - 7)), sid), 413, -32600, tooMany);
      assertRefused(await postJson(gw.url, gw.alice, callWith(elements(MAX_KEYS - 7)), sid), 413, -32600, tooMany);
      assertAlicesCustomer(await postJson(gw.url, gw.alice, callWith(keys(MAX_KEYS - 8)), sid));
      assertAlicesCustomer(await postJson(gw.url, gw.alice, callWith(elements(MAX_KEYS - 8)), sid));
      // Colons and commas inside strings are not counted.
      assertAlicesCustomer(await postJson(gw.url, gw.alice, callWith(JSON.stringify(':,'.repeat(5000))), sid));
    });
  });

  describe('authentication before the body, and per-client body caps', () => {
    const padded = (bytes: number) => {
      const base = callWith('""');
      return callWith(JSON.stringify('x'.repeat(bytes - base.length)));
    };

    it("the client's own maxBodyBytes applies: one byte over it is 413, at it is served", async () => {
      assert.equal(padded(CLIENT_MAX_BODY).length, CLIENT_MAX_BODY);
      assertRefused(
        await postJson(gw.url, gw.alice, padded(CLIENT_MAX_BODY + 1), sid),
        413,
        -32600,
        'Request body too large',
      );
      assertAlicesCustomer(await postJson(gw.url, gw.alice, padded(CLIENT_MAX_BODY), sid));
    });

    it('without credentials, a large or malformed body gets 401 (not 413 or 400): it is never read', async () => {
      for (const body of [padded(2_000_000), '{"jsonrpc":', callWith(`[${'['.repeat(9000)}`)]) {
        const r = await postJson(gw.url, {}, body);
        assert.equal(r.status, 401, r.text);
        assert.match(String(r.headers['www-authenticate']), /^Bearer /);
      }
    });

    /** Sends the head and `first`, then `rest` after `gapMs` (if any); resolves with all the server said before closing or going quiet. */
    function trickle(
      contentLength: number,
      first: string,
      rest?: string,
      gapMs = 100,
    ): Promise<{ text: string; closed: boolean }> {
      const u = new URL(gw.url);
      return new Promise((resolve, reject) => {
        let text = '';
        const socket = connect({ host: u.hostname, port: Number(u.port) }, () => {
          socket.write(
            `POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\ncontent-type: application/json\r\naccept: application/json\r\n` +
              `content-length: ${contentLength}\r\n\r\n${first}`,
          );
          if (rest !== undefined) setTimeout(() => socket.write(rest), gapMs);
        });
        // An answer kept alive never closes: 500 ms of quiet after it ends the wait.
        let quiet: NodeJS.Timeout | undefined;
        socket.setEncoding('utf8');
        socket.on('data', (d: string) => {
          text += d;
          clearTimeout(quiet);
          quiet = setTimeout(() => {
            socket.destroy();
            resolve({ text, closed: false });
          }, 500);
        });
        socket.on('error', reject);
        socket.on('close', () => {
          clearTimeout(quiet);
          resolve({ text, closed: true });
        });
      });
    }

    it('an unauthenticated body that stops arriving is waited for at most a second: 401, then the connection closes', async () => {
      const started = Date.now();
      const r = await trickle(500_000, '{"jsonrpc":');
      assert.match(r.text, /^HTTP\/1\.1 401 /);
      assert.match(r.text, /\r\nconnection: close\r\n/i);
      assert.ok(r.closed);
      assert.ok(Date.now() - started < 2500, 'answered and closed without waiting for the body');
      assertAlicesCustomer(await postJson(gw.url, gw.alice, callWith('0'), sid));
    });

    it('a small unauthenticated body still arriving is drained: its client gets a clean 401 on a connection kept alive', async () => {
      const body = callWith('0');
      const r = await trickle(body.length, body.slice(0, 10), body.slice(10));
      assert.match(r.text, /^HTTP\/1\.1 401 /);
      assert.doesNotMatch(r.text, /\r\nconnection: close\r\n/i);
      assert.equal(r.closed, false, 'the connection stays usable');
    });
  });

  describe('batches exist in 2024-11-05 and 2025-03-26 only', () => {
    const refusedIn = (v: string) => `Invalid JSON-RPC request: batches are not supported in protocol version ${v}`;

    it("a batch on a 2025-11-25 session is refused (400, -32600) by the session's version", async () => {
      assertRefused(await postJson(gw.url, gw.alice, [ping(1), ping(2)], sid), 400, -32600, refusedIn('2025-11-25'));
      const single = await postJson(gw.url, gw.alice, ping(3), sid);
      assert.deepEqual(single.json, { jsonrpc: '2.0', id: 3, result: {} }, 'a single message on it is served');
    });

    it('the MCP-Protocol-Version header names the version: 2025-06-18 refuses a batch', async () => {
      const r = await postJson(gw.url, { ...gw.alice, 'mcp-protocol-version': '2025-06-18' }, [ping(1), ping(2)], sid);
      assertRefused(r, 400, -32600, refusedIn('2025-06-18'));
    });

    it('a stateless (2026-07-28) batch is refused by the version in its header', async () => {
      const r = await postJson(gw.url, { ...gw.alice, 'mcp-protocol-version': '2026-07-28' }, [ping(1), ping(2)]);
      assertRefused(r, 400, -32600, refusedIn('2026-07-28'));
    });

    it('positive control: on a 2025-03-26 session the same batch is answered, message by message', async () => {
      const old = await openSession(gw.url, gw.alice, '2025-03-26');
      for (const headers of [gw.alice, { ...gw.alice, 'mcp-protocol-version': '2025-03-26' }]) {
        const r = await postJson(gw.url, headers, [ping('a'), ping('b')], old);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(
          (r.json as Array<{ id: string }>).map((m) => m.id).sort(),
          ['a', 'b'],
          'both messages answered',
        );
      }
    });

    describe('legacy HTTP+SSE', () => {
      async function legacySession(
        version: string,
      ): Promise<{ stream: RawStream; post: (b: unknown) => Promise<RawResponse> }> {
        const stream = await rawStream(`${gw.url}/sse`, gw.alice);
        assert.equal(stream.status, 200);
        const endpoint = await stream.nextEvent();
        assert.equal(endpoint.event, 'endpoint');
        const post = (body: unknown) => postJson(new URL(endpoint.data, gw.baseUrl).href, gw.alice, body);
        const init = await post({
          jsonrpc: '2.0',
          id: 0,
          method: 'initialize',
          params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'limits-test', version: '0' } },
        });
        assert.equal(init.status, 202, init.text);
        assert.equal(JSON.parse((await stream.nextEvent()).data).id, 0);
        return { stream, post };
      }

      it('a session that negotiated 2025-06-18 over the old transport: a batch is refused with 400', async () => {
        const s = await legacySession('2025-06-18');
        try {
          assertRefused(await s.post([ping(1), ping(2)]), 400, -32600, refusedIn('2025-06-18'));
        } finally {
          s.stream.close();
        }
      });

      it('positive control: a 2024-11-05 session posts a batch (202) and both answers arrive on its stream', async () => {
        const s = await legacySession('2024-11-05');
        try {
          assert.equal((await s.post([ping('x'), ping('y')])).status, 202);
          const ids = [
            JSON.parse((await s.stream.nextEvent()).data).id,
            JSON.parse((await s.stream.nextEvent()).data).id,
          ];
          assert.deepEqual(ids.sort(), ['x', 'y']);
        } finally {
          s.stream.close();
        }
      });
    });
  });

  it('the gateway kept serving: /healthz and a call after all of the above', async () => {
    assert.equal((await rawRequest(`${gw.baseUrl}/healthz`)).status, 200);
    assertAlicesCustomer(await postJson(gw.url, gw.alice, toolCall('get_customer', { customer_id: 'c-100' }), sid));
  });
});
