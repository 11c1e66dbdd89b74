/**
 * Stream revalidation (docs/architecture.md §4, review check BND-08): a long-lived stream
 * never outlives the token that opened it. One gateway trusts two real dev
 * IdPs — one issuing 3-second tokens, one the default 2-hour tokens — so the
 * short-lived stream and its long-lived positive control run side by side on
 * the same gateway. The verifier's clock skew is 0 here, so "expired" means
 * the same instant to the stream timer and to the token check.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { CRM_STDIO, AGENT, PASSWORD, startFixture, type Fixture } from './helpers/fixture.js';
import { openSession, postJson, rawStream, rpc, rpcResult, type RawStream } from './helpers/raw-http.js';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { parseConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway/server.js';
import { hashApiKey } from '../src/identity/api-keys.js';
import { tempDir } from './helpers/tmp.js';

const TTL = 3;
/** How late after `exp` a stream may end: timer latency plus a loaded test machine. */
const LATE_MS = 1500;

const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

interface Token {
  raw: string;
  exp: number;
  iat: number;
}

/** The stream ended no earlier than `exp` and no later than LATE_MS after it. */
async function assertEndsAtExpiry(stream: RawStream, exp: number): Promise<void> {
  const deadline = exp * 1000 + LATE_MS;
  const endedAt = await Promise.race([stream.ended, sleepUntil(deadline + 200).then(() => undefined)]);
  assert.ok(endedAt !== undefined, `stream still open ${LATE_MS} ms after exp`);
  assert.ok(endedAt >= exp * 1000 - 20, `stream ended ${exp * 1000 - endedAt} ms before exp`);
  assert.ok(endedAt <= deadline, `stream ended ${endedAt - exp * 1000} ms after exp`);
}

describe('streams end when the token that opened them expires', () => {
  let shortIdp: Fixture;
  let longIdp: Fixture;
  let gw: Gateway;
  let url: string;
  const opened: RawStream[] = [];

  before(async () => {
    shortIdp = await startFixture({ noGateway: true, idp: { accessTokenTtlSeconds: TTL } });
    longIdp = await startFixture({ noGateway: true });
    const raw = {
      server: { host: '127.0.0.1', port: 0 },
      clientAuth: { methods: ['api-key'] },
      clients: [
        { id: 'agent', apiKeys: [{ id: 'k1', hash: hashApiKey(shortIdp.apiKey) }], oauthClientIds: [AGENT.clientId] },
      ],
      userAuth: {
        mode: 'dual',
        issuers: [shortIdp.idp.issuer, longIdp.idp.issuer].map((issuer) => ({
          issuer,
          algorithms: ['ES256', 'RS256'],
          userClaims: ['role', 'customers'],
          clockSkewSeconds: 0,
        })),
      },
      upstreams: { crm: CRM_STDIO },
      policy: { rules: DEMO_POLICY },
      audit: { sqlitePath: ':memory:' },
    };
    gw = await startGateway(parseConfig(raw, tempDir()), { log: () => {}, verifier: { jwksCooldownMs: 0 } });
    url = gw.urlFor('crm');
  });
  after(async () => {
    for (const s of opened) s.close();
    await gw?.close();
    await shortIdp?.close();
    await longIdp?.close();
  });

  async function token(from: Fixture, user = 'alice'): Promise<Token> {
    const r = await from.idp.passwordToken({
      clientId: AGENT.clientId,
      clientSecret: AGENT.clientSecret,
      username: user,
      password: PASSWORD,
      resource: url,
    });
    const claims = decodeJwt(r.accessToken);
    return { raw: r.accessToken, exp: claims.exp!, iat: claims.iat! };
  }
  const headers = (t: Token) => ({ 'x-api-key': shortIdp.apiKey, authorization: `Bearer ${t.raw}` });
  async function open(path: string, h: Record<string, string>): Promise<RawStream> {
    const s = await rawStream(`${gw.baseUrl}${path}`, h);
    opened.push(s);
    return s;
  }

  it('the dev IdP honours accessTokenTtlSeconds', async () => {
    const t = await token(shortIdp);
    assert.equal(t.exp - t.iat, TTL);
    const r = await shortIdp.idp.passwordToken({
      clientId: AGENT.clientId,
      clientSecret: AGENT.clientSecret,
      username: 'alice',
      password: PASSWORD,
      resource: url,
    });
    assert.ok(r.expiresIn <= TTL && r.expiresIn >= TTL - 1, `expires_in ${r.expiresIn}`);
    const l = await token(longIdp);
    assert.equal(l.exp - l.iat, 7200);
  });

  it("legacy SSE: the stream and its session end at exp; a long-lived token's stream stays open; the expired token then gets 401", async () => {
    // The positive control first, so the short token's few seconds are spent on the short stream only.
    const long = await token(longIdp);
    const longStream = await open('/mcp/crm/sse', headers(long));
    const short = await token(shortIdp);
    const shortStream = await open('/mcp/crm/sse', headers(short));
    for (const s of [shortStream, longStream]) assert.equal(s.status, 200);
    const [shortEndpoint, longEndpoint] = [await shortStream.nextEvent(), await longStream.nextEvent()];
    const shortMessages = new URL(shortEndpoint.data, gw.baseUrl).href;
    const longMessages = new URL(longEndpoint.data, gw.baseUrl).href;
    // The short stream works before it expires.
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 't', version: '0' } },
    };
    assert.equal((await postJson(shortMessages, headers(short), init)).status, 202);
    assert.equal(JSON.parse((await shortStream.nextEvent()).data).id, 1);
    assert.ok(Date.now() < short.exp * 1000, 'setup took longer than the token lives');

    await assertEndsAtExpiry(shortStream, short.exp);
    assert.equal(longStream.isEnded, false, "the long-lived token's stream stays open past the short token's exp");

    // After exp: the expired token is refused outright (skew 0) …
    const expired = await postJson(shortMessages, headers(short), rpc('ping'));
    assert.equal(expired.status, 401);
    assert.match(String(expired.headers['www-authenticate']), /error="invalid_token"/);
    const failure = (await gw.runtime.audit.query({ kind: 'auth-failure', limit: 1 }))[0]!;
    assert.match(failure.reason!, /expired/);
    // … and the legacy session died with its stream: even a fresh token finds nothing.
    const fresh = await token(shortIdp);
    assert.equal((await postJson(shortMessages, headers(fresh), rpc('ping'))).status, 404);
    const ended = (await gw.runtime.audit.query({ kind: 'session', limit: 50 })).filter(
      (e) => e.outcome === 'ended: token expired',
    );
    assert.equal(ended.length, 1);

    // The long-lived stream is not just open but working.
    assert.equal((await postJson(longMessages, headers(long), init)).status, 202);
    assert.equal(JSON.parse((await longStream.nextEvent()).data).id, 1);
    await sleepUntil(short.exp * 1000 + 2500);
    assert.equal(longStream.isEnded, false);
    longStream.close();
  });

  it('Streamable HTTP: the GET stream ends at exp, the long-lived one stays open; the session itself continues with a fresh token', async () => {
    const long = await token(longIdp);
    const longSid = await openSession(url, headers(long));
    const longStream = await open('/mcp/crm', { ...headers(long), 'mcp-session-id': longSid });
    // Any token of alice's from the short issuer opens the session; the one presented on GET bounds the stream.
    const shortSid = await openSession(url, headers(await token(shortIdp)));
    const short = await token(shortIdp);
    const shortStream = await open('/mcp/crm', { ...headers(short), 'mcp-session-id': shortSid });
    assert.equal(shortStream.status, 200);
    assert.equal(longStream.status, 200);
    assert.match(String(shortStream.headers['content-type']), /^text\/event-stream/);
    assert.ok(Date.now() < short.exp * 1000, 'setup took longer than the token lives');

    await assertEndsAtExpiry(shortStream, short.exp);
    assert.equal(longStream.isEnded, false);

    const expired = await postJson(url, headers(short), rpc('tools/list'), shortSid);
    assert.equal(expired.status, 401);
    assert.match(String(expired.headers['www-authenticate']), /error="invalid_token"/);

    // The session is bound to alice, not to one token: a fresh token continues it,
    const fresh = await token(shortIdp);
    assert.ok(rpcResult(await postJson(url, headers(fresh), rpc('tools/list'), shortSid)).tools);
    // and a stream reopened with the fresh token lives until the fresh token's exp.
    const reopened = await open('/mcp/crm', { ...headers(fresh), 'mcp-session-id': shortSid });
    assert.equal(reopened.status, 200);
    await assertEndsAtExpiry(reopened, fresh.exp);

    assert.equal(longStream.isEnded, false);
    longStream.close();
  });

  it('a stream cannot be opened with an expired token (401, no stream)', async () => {
    const short = await token(shortIdp);
    const sid = await openSession(url, headers(short));
    await sleepUntil(short.exp * 1000 + 50);
    for (const [path, extra] of [
      ['/mcp/crm/sse', {}],
      ['/mcp/crm', { 'mcp-session-id': sid }],
    ] as const) {
      const s = await open(path, { ...headers(short), ...extra });
      assert.equal(s.status, 401, path);
      await s.ended;
      assert.equal(s.events.length, 0);
      assert.match(String(s.headers['www-authenticate']), /error="invalid_token"/);
    }
  });
});

describe('with the default 30 s clock skew the stream still ends at exp', () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ idp: { accessTokenTtlSeconds: TTL } });
  });
  after(async () => fx?.close());

  it('the stream ends at exp; within the skew the same token still authenticates, but a stream it reopens ends at once', async () => {
    const h = await fx.headersFor('alice');
    const exp = decodeJwt(h.authorization!.slice(7)).exp!;
    const first = await rawStream(`${fx.gateway.baseUrl}/mcp/crm/sse`, h);
    try {
      assert.equal(first.status, 200);
      await assertEndsAtExpiry(first, exp);
    } finally {
      first.close();
    }
    // Past exp but inside the verifier's skew the token is accepted (a POST would be too) …
    const again = await rawStream(`${fx.gateway.baseUrl}/mcp/crm/sse`, h);
    try {
      assert.equal(again.status, 200);
      // … yet the stream it opens is closed immediately: no stream lives past its token's exp.
      assert.equal((await again.nextEvent()).event, 'endpoint');
      const endedAt = await Promise.race([again.ended, sleepUntil(Date.now() + 1000).then(() => undefined)]);
      assert.ok(endedAt !== undefined, 'a stream opened with an expired token stayed open');
    } finally {
      again.close();
    }
  });
});
