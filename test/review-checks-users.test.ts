/**
 * The review's per-user checks (BND-05 … BND-09, BND-12) run against the
 * real behalf gateway in front of the demo CRM, with real dev-IdP tokens for
 * the demo users (alice and bob are reps owning c-1xx and c-2xx, carol a
 * manager): the gateway must pass them on Streamable HTTP and on legacy
 * SSE. Every check is also shown failing (or declining to judge) when the
 * thing it tests is really broken — a profile naming an allowed call as a
 * cross-user one, a gateway that lets a hostile Origin in,
 * a service account downstream — so a pass is never just a
 * check that cannot fail.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import type { z } from 'zod';
import { startCrmHttp, type CrmHttpServer, type CrmRequestInfo } from '../demo/crm/http.js';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { parseConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway/server.js';
import { hashApiKey } from '../src/identity/api-keys.js';
import type { CheckId } from '../src/review/catalog.js';
import type { TargetTransport } from '../src/review/context.js';
import { profileSchema } from '../src/review/profile.js';
import { runReview, type ReviewRun } from '../src/review/run.js';
import { AGENT, CRM_STDIO, EXCHANGER, PASSWORD, startFixture, type Fixture } from './helpers/fixture.js';
import { tempDir } from './helpers/tmp.js';

type ProfileInput = z.input<typeof profileSchema>;
const TRANSPORTS: TargetTransport[] = ['streamable', 'sse'];
type CheckResult = ReviewRun['pack']['checks'][number];
const bearer = (h: Record<string, string>) => h.authorization!.slice('Bearer '.length);

async function review(o: {
  target?: string;
  transport?: TargetTransport;
  only: CheckId[];
  profile?: ProfileInput;
}): Promise<ReviewRun> {
  return runReview(
    {
      ...(o.target ? { target: new URL(o.target) } : {}),
      transport: o.transport ?? 'streamable',
      ...(o.profile
        ? { profile: { profile: profileSchema.parse(o.profile), dir: tempDir('behalf-review-users-') } }
        : {}),
    },
    { only: o.only },
  );
}

function check(run: ReviewRun, id: CheckId): CheckResult {
  const c = run.pack.checks.find((x) => x.id === id);
  assert.ok(c, `${id} in the pack`);
  return c;
}

/** Status with the evidence in the message, so a failure says why. */
function assertStatus(run: ReviewRun, id: CheckId, status: CheckResult['status']): CheckResult {
  const c = check(run, id);
  assert.equal(c.status, status, `${id}: ${c.finding}\n${JSON.stringify(c.evidence, null, 1)}`);
  return c;
}

/** No credential the review used, nor any the test knows, appears anywhere in what the review wrote. */
function assertNoSecrets(run: ReviewRun, extra: string[] = []): void {
  const written = JSON.stringify({ pack: run.pack, exchanges: run.exchanges });
  for (const s of [...run.secrets, ...extra].filter((x) => x.length >= 8))
    assert.ok(!written.includes(s), 'a credential reached the evidence');
}

const targetsOf = (gw: Gateway) => ({ streamable: gw.urlFor('crm'), sse: `${gw.baseUrl}/mcp/crm/sse` });

describe('BND-05, BND-06, BND-07, BND-12 against the behalf gateway (demo CRM, demo policy)', () => {
  let fx: Fixture;
  let targets: Record<TargetTransport, string>;
  let headers: Record<'alice' | 'bob' | 'carol', Record<string, string>>;
  const CROSS_USER = [
    { as: 'alice', owner: 'bob', call: { tool: 'get_customer', arguments: { customer_id: 'c-201' } } },
    { as: 'bob', owner: 'alice', call: { tool: 'get_customer', arguments: { customer_id: 'c-101' } } },
  ];
  const profile = (o: Partial<ProfileInput> = {}): ProfileInput => ({
    identities: { alice: { headers: headers.alice }, bob: { headers: headers.bob }, carol: { headers: headers.carol } },
    crossUser: CROSS_USER,
    // Reads only: the review never calls update_customer.
    safeToCall: ['get_customer', 'list_customers', 'export_all_customers'],
    examples: { export_all_customers: {} },
    ...o,
  });

  before(async () => {
    fx = await startFixture();
    targets = targetsOf(fx.gateway);
    headers = {
      alice: await fx.headersFor('alice'),
      bob: await fx.headersFor('bob'),
      carol: await fx.headersFor('carol'),
    };
  });
  after(() => fx?.close());

  for (const transport of TRANSPORTS) {
    it(`${transport}: the gateway passes BND-05, BND-06, BND-07 and BND-12; nothing is written in clear`, async () => {
      const run = await review({
        target: targets[transport],
        transport,
        only: ['BND-05', 'BND-06', 'BND-07', 'BND-12'],
        profile: profile(),
      });
      assert.deepEqual(
        Object.keys(run.pack.fingerprint.toolsByIdentity).sort(),
        ['alice', 'bob', 'carol'],
        'the survey listed every user',
      );

      const b05 = assertStatus(run, 'BND-05', 'pass');
      assert.equal(b05.evidence.filter((e) => e.outcome === 'ok').length, 2);
      assert.ok(
        b05.evidence.every((e) => e.exchanges?.length),
        'every item names its exchanges',
      );
      assert.ok(
        run.exchanges.some((e) => e.check === 'BND-05' && /positive control: bob calls/.test(e.label)),
        "the owner's call was made and labelled",
      );

      const b06 = assertStatus(run, 'BND-06', 'pass');
      const hidden = b06.evidence.filter((e) => e.outcome === 'ok' && /not listed to/.test(e.probe));
      assert.deepEqual(
        hidden.map((e) => e.probe.split(' ')[0]).sort(),
        ['alice', 'bob'],
        'export_all_customers, shown to carol only, is refused to both reps',
      );
      assert.ok(hidden.every((e) => /positive control: carol/.test(e.detail ?? '')));
      assert.ok(
        b06.evidence.some(
          (e) => e.outcome === 'ok' && /^carol calls export_all_customers.*listed to carol/.test(e.probe),
        ),
        'a listed tool is callable',
      );
      assert.ok(
        b06.evidence.some(
          (e) => e.outcome === 'ok' && /^alice calls get_customer\(\{"customer_id":"c-101"\}\), listed/.test(e.probe),
        ),
        "a crossUser call owned by the user is the listed tool's known arguments",
      );

      const b07 = assertStatus(run, 'BND-07', 'pass');
      assert.deepEqual(
        b07.evidence.map((e) => e.outcome),
        ['ok', 'ok', 'ok'],
      );
      const [control, other, none] = b07.evidence;
      assert.match(control!.observed!, transport === 'sse' ? /^202/ : /^200 with a result/);
      assert.match(other!.observed!, transport === 'sse' ? /^40[134]/ : /^404/);
      assert.match(none!.observed!, /^401/);

      const b12 = assertStatus(run, 'BND-12', 'pass');
      const origin = b12.evidence.filter((e) => /Origin/.test(e.probe));
      assert.equal(origin.length, transport === 'sse' ? 2 : 1);
      for (const e of origin) assert.match(e.observed!, /^403 .*\(without Origin: 20[02]/);
      const tls = b12.evidence.find((e) => e.probe === 'TLS on the target');
      assert.equal(tls?.outcome, 'n/a');
      assert.match(tls!.detail!, /loopback/);

      assertNoSecrets(run, [fx.apiKey, ...Object.values(headers).map(bearer)]);
    });
  }

  it('BND-05 fails when the "other" user may in fact make the call (carol is a manager), and is not assessed when the owner cannot make it', async () => {
    const run = await review({
      target: targets.streamable,
      only: ['BND-05'],
      profile: profile({
        crossUser: [{ as: 'carol', owner: 'bob', call: { tool: 'get_customer', arguments: { customer_id: 'c-201' } } }],
      }),
    });
    const c = assertStatus(run, 'BND-05', 'fail');
    assert.equal(c.evidence[0]!.outcome, 'bad');
    assert.match(c.evidence[0]!.observed!, /^allowed/);

    const wrongOwner = await review({
      target: targets.streamable,
      only: ['BND-05'],
      profile: profile({
        crossUser: [{ as: 'bob', owner: 'alice', call: { tool: 'get_customer', arguments: { customer_id: 'c-201' } } }],
      }),
    });
    const w = assertStatus(wrongOwner, 'BND-05', 'not-assessed');
    assert.match(w.evidence[0]!.detail!, /^positive control failed: alice's own call was not allowed/);
    assert.ok(
      !wrongOwner.exchanges.some((e) => e.check === 'BND-05' && /^bob calls/.test(e.label)),
      'no attack is sent once the control failed',
    );
  });

  it('BND-05 is not assessed without crossUser entries or without a target; unsafe tools are never called', async () => {
    const none = await review({ target: targets.streamable, only: ['BND-05'], profile: profile({ crossUser: [] }) });
    assert.match(assertStatus(none, 'BND-05', 'not-assessed').reason!, /profile\.crossUser/);
    const noTarget = await review({ only: ['BND-05', 'BND-06', 'BND-07', 'BND-08', 'BND-12'], profile: profile() });
    for (const id of ['BND-05', 'BND-06', 'BND-07', 'BND-08'] as const)
      assert.equal(assertStatus(noTarget, id, 'not-assessed').reason, 'no --target given');
    assert.ok(check(noTarget, 'BND-12').evidence.every((e) => e.outcome !== 'ok' && e.outcome !== 'bad'));
    assert.equal(noTarget.exchanges.length, 0);

    const unsafe = await review({
      target: targets.streamable,
      only: ['BND-05'],
      profile: profile({ safeToCall: ['list_customers'] }),
    });
    assertStatus(unsafe, 'BND-05', 'not-assessed');
    assert.ok(
      !unsafe.exchanges.some((e) => e.check === 'BND-05' && e.request.body?.includes('get_customer')),
      'get_customer was never sent',
    );
  });

  it("BND-06 fails when a listed tool is refused to its user (a per-tool example that is only bob's)", async () => {
    const run = await review({
      target: targets.streamable,
      only: ['BND-06'],
      profile: profile({ crossUser: [], examples: { list_customers: { owner: 'bob' } } }),
    });
    const c = assertStatus(run, 'BND-06', 'fail');
    const refused = c.evidence.filter((e) => e.outcome === 'bad');
    assert.deepEqual(
      refused.map((e) => e.probe.split(' ')[0]),
      ['alice'],
    );
    assert.match(refused[0]!.detail!, /^listed but refused/);
    assert.ok(
      c.evidence.some((e) => e.outcome === 'ok' && /^bob calls list_customers/.test(e.probe)),
      'the same call by bob, its owner, is allowed',
    );
  });

  it('BND-06 is not assessed when there is nothing to compare', async () => {
    const run = await review({
      target: targets.streamable,
      only: ['BND-06'],
      profile: profile({
        identities: { alice: { headers: headers.alice }, bob: { headers: headers.bob } },
        crossUser: [],
        examples: {},
      }),
    });
    assert.match(assertStatus(run, 'BND-06', 'not-assessed').reason!, /nothing comparable/);
  });

  it('BND-07 fails when "another user" is the session\'s own principal, and is partial with one user', async () => {
    const same = await review({
      target: targets.streamable,
      only: ['BND-07'],
      profile: profile({ identities: { alice: { headers: headers.alice }, bob: { headers: { ...headers.alice } } } }),
    });
    const c = assertStatus(same, 'BND-07', 'fail');
    assert.equal(c.evidence[1]!.outcome, 'bad');
    assert.match(c.evidence[1]!.observed!, /^200 with a result/);

    const one = await review({
      target: targets.sse,
      transport: 'sse',
      only: ['BND-07'],
      profile: profile({ identities: { alice: { headers: headers.alice } }, crossUser: [] }),
    });
    const p = assertStatus(one, 'BND-07', 'partial');
    assert.match(p.evidence[1]!.detail!, /only one user identity/);
  });
});

describe('BND-12 against a gateway that allows the hostile origin', () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ server: { allowedOrigins: ['http://evil.invalid'] } });
  });
  after(() => fx?.close());

  for (const transport of TRANSPORTS) {
    it(`${transport}: fails on Origin, with the control succeeding`, async () => {
      const run = await review({
        target: targetsOf(fx.gateway)[transport],
        transport,
        only: ['BND-12'],
        profile: { identities: { alice: { headers: await fx.headersFor('alice') } } },
      });
      const c = assertStatus(run, 'BND-12', 'fail');
      const bad = c.evidence.filter((e) => e.outcome === 'bad');
      assert.equal(bad.length, transport === 'sse' ? 2 : 1);
      for (const e of bad) assert.match(e.observed!, /^20[02]/);
    });
  }
});

describe('BND-08 stream revalidation against the gateway', () => {
  const TTL = 3;
  let shortIdp: Fixture;
  let gw: Gateway;
  let skewed: Fixture;

  before(async () => {
    shortIdp = await startFixture({ noGateway: true, idp: { accessTokenTtlSeconds: TTL } });
    // A verifier without clock skew: "expired" is the same instant to the stream timer and to the token check.
    gw = await startGateway(
      parseConfig(
        {
          server: { host: '127.0.0.1', port: 0 },
          clientAuth: { methods: ['api-key'] },
          clients: [
            {
              id: 'agent',
              apiKeys: [{ id: 'k1', hash: hashApiKey(shortIdp.apiKey) }],
              oauthClientIds: [AGENT.clientId],
            },
          ],
          userAuth: {
            mode: 'dual',
            issuers: [
              {
                issuer: shortIdp.idp.issuer,
                algorithms: ['ES256', 'RS256'],
                userClaims: ['role', 'customers'],
                clockSkewSeconds: 0,
              },
            ],
          },
          upstreams: { crm: CRM_STDIO },
          policy: { rules: DEMO_POLICY },
          audit: { sqlitePath: ':memory:' },
        },
        tempDir(),
      ),
      { log: () => {}, verifier: { jwksCooldownMs: 0 } },
    );
    // The fixture's default: 30 s of clock skew.
    skewed = await startFixture({ idp: { accessTokenTtlSeconds: TTL } });
  });
  after(async () => {
    await gw?.close();
    await shortIdp?.close();
    await skewed?.close();
  });

  /** A token minted now, so the review gets the few seconds it lives (the profile would use a command for this). */
  async function shortLived(idp: Fixture, resource: string): Promise<Record<string, string>> {
    const r = await idp.idp.passwordToken({
      clientId: AGENT.clientId,
      clientSecret: AGENT.clientSecret,
      username: 'alice',
      password: PASSWORD,
      resource,
    });
    const claims = decodeJwt(r.accessToken);
    assert.equal(claims.exp! - claims.iat!, TTL);
    return { 'x-api-key': idp.apiKey, authorization: `Bearer ${r.accessToken}` };
  }

  for (const transport of TRANSPORTS) {
    it(`${transport}: the stream ends at exp and the expired token is then refused with 401`, async () => {
      const h = await shortLived(shortIdp, gw.urlFor('crm'));
      const started = Date.now();
      const run = await review({
        target: targetsOf(gw)[transport],
        transport,
        only: ['BND-08'],
        profile: { shortLived: { headers: h }, limits: { streamWaitSeconds: 10 } },
      });
      const c = assertStatus(run, 'BND-08', 'pass');
      const stream = c.evidence.find((e) => /stream opened with the short-lived token/.test(e.probe));
      assert.equal(stream?.outcome, 'ok');
      assert.match(stream!.observed!, /^ended \d+\.\d s after exp/);
      const late = c.evidence.find((e) => /after exp/.test(e.probe));
      assert.equal(late?.outcome, 'ok');
      assert.match(late!.observed!, /^401/);
      assert.ok(Date.now() - started < (TTL + 5 + 6) * 1000, 'the check waited no longer than exp + grace');
      assertNoSecrets(run, [bearer(h)]);
    });
  }

  it('passes on the stream ending, and only notes a verifier that accepts the token 5 s after exp (default 30 s clock skew)', async () => {
    const h = await shortLived(skewed, skewed.gateway.urlFor('crm'));
    const run = await review({
      target: targetsOf(skewed.gateway).streamable,
      only: ['BND-08'],
      profile: { shortLived: { headers: h } },
    });
    const c = assertStatus(run, 'BND-08', 'pass');
    assert.equal(c.evidence.find((e) => /stream opened/.test(e.probe))?.outcome, 'ok');
    const late = c.evidence.find((e) => /after exp/.test(e.probe));
    assert.equal(late?.outcome, 'info');
    assert.match(late!.detail!, /clock skew/);
    assert.match(late!.observed!, /^200/);
  });

  it('is not assessed without profile.shortLived, or with a token outliving limits.streamWaitSeconds — and then waits for nothing', async () => {
    const none = await review({ target: targetsOf(gw).streamable, only: ['BND-08'], profile: {} });
    assert.match(assertStatus(none, 'BND-08', 'not-assessed').reason!, /profile\.shortLived/);
    const long = await shortLived(skewed, skewed.gateway.urlFor('crm'));
    const started = Date.now();
    const run = await review({
      target: targetsOf(skewed.gateway).streamable,
      only: ['BND-08'],
      profile: { shortLived: { headers: long }, limits: { streamWaitSeconds: 1 } },
    });
    assert.match(assertStatus(run, 'BND-08', 'not-assessed').reason!, /more than limits\.streamWaitSeconds/);
    assert.ok(Date.now() - started < 1000);
    assert.equal(run.exchanges.length, 0);
  });
});

/** The reviewer's canary: fingerprints and readable claims of every credential the CRM received, served at GET /. */
interface TestObserver {
  url: string;
  record(info: CrmRequestInfo): void;
  close(): Promise<void>;
}

async function startTestObserver(): Promise<TestObserver> {
  const seen: Array<{ fingerprint: string; claims?: Record<string, unknown> }> = [];
  const http: Server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ seen }));
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/`,
    record(info) {
      const credential = /^Bearer\s+(\S+)$/i.exec(String(info.headers.authorization ?? ''))?.[1];
      if (!credential) return;
      let claims: Record<string, unknown> | undefined;
      try {
        const c = decodeJwt(credential);
        claims = { sub: c.sub, aud: c.aud, iss: c.iss, ...(c.act ? { act: c.act } : {}) };
      } catch {
        claims = undefined;
      }
      seen.push({
        fingerprint: `sha256:${createHash('sha256').update(credential).digest('hex')}`,
        ...(claims ? { claims } : {}),
      });
    },
    close: () =>
      new Promise<void>((r) => {
        http.close(() => r());
        http.closeAllConnections();
      }),
  };
}

describe('BND-09 downstream credentials, seen by an observer behind the gateway', () => {
  /** The CRM decides by the token's subject itself, so the gateway's policy may be open. */
  const OPEN_WIDE = [{ id: 'open-wide', effect: 'allow', tools: ['*'] }];
  const SA_TOKEN = 'service-account-canary-7a6b5c4d3e2f1a0b9c8d';
  let exchange: { fx: Fixture; crm: CrmHttpServer; observer: TestObserver; hooks: Array<(i: CrmRequestInfo) => void> };
  let shared: { fx: Fixture; crm: CrmHttpServer; observer: TestObserver };

  before(async () => {
    const observer = await startTestObserver();
    const hooks: Array<(i: CrmRequestInfo) => void> = [(i) => observer.record(i)];
    let crm: CrmHttpServer | undefined;
    const fx = await startFixture({
      exchanger: {},
      policy: OPEN_WIDE,
      upstreams: async (idp) => {
        crm = await startCrmHttp({ auth: { issuer: idp.issuer }, onRequest: (i) => hooks.forEach((h) => h(i)) });
        return {
          crm: {
            transport: 'streamable-http',
            url: crm.url,
            downstream: {
              strategy: 'token-exchange',
              clientId: EXCHANGER.clientId,
              clientSecret: `env:${EXCHANGER.secretEnv}`,
              scopes: ['crm:read'],
            },
          },
        };
      },
    });
    exchange = { fx, crm: crm!, observer, hooks };

    const saObserver = await startTestObserver();
    const saCrm = await startCrmHttp({ onRequest: (i) => saObserver.record(i) });
    const saFx = await startFixture({
      policy: OPEN_WIDE,
      upstreams: {
        crm: {
          transport: 'streamable-http',
          url: saCrm.url,
          downstream: { strategy: 'service-account', headers: { authorization: 'env:CRM_SA' } },
        },
      },
      gateway: { env: { ...process.env, CRM_SA: `Bearer ${SA_TOKEN}` } },
    });
    shared = { fx: saFx, crm: saCrm, observer: saObserver };
  });
  after(async () => {
    for (const e of [exchange, shared]) {
      await e?.fx.close();
      await e?.crm.close();
      await e?.observer.close();
    }
  });

  const profileFor = async (fx: Fixture, observerUrl: string): Promise<ProfileInput> => ({
    identities: { alice: { headers: await fx.headersFor('alice') }, bob: { headers: await fx.headersFor('bob') } },
    safeToCall: ['list_customers'],
    downstream: { observer: { url: observerUrl }, call: { tool: 'list_customers', arguments: {} } },
  });

  for (const transport of TRANSPORTS) {
    it(`${transport}: token exchange passes — each user's calls reach the CRM as that user, never with the client's credentials`, async () => {
      const p = await profileFor(exchange.fx, exchange.observer.url);
      const run = await review({
        target: targetsOf(exchange.fx.gateway)[transport],
        transport,
        only: ['BND-09'],
        profile: p,
      });
      const c = assertStatus(run, 'BND-09', 'pass');
      const users = c.evidence.filter((e) => e.outcome === 'ok');
      assert.equal(users.length, 2);
      assert.match(users[0]!.detail!, /naming subject alice; the subject matches the sub of alice's own token/);
      assert.match(users[1]!.detail!, /naming subject bob/);
      assertNoSecrets(run, [exchange.fx.apiKey]);
    });
  }

  it('a service account downstream fails: both users reach the CRM with one credential', async () => {
    const run = await review({
      target: targetsOf(shared.fx.gateway).streamable,
      only: ['BND-09'],
      profile: await profileFor(shared.fx, shared.observer.url),
    });
    const c = assertStatus(run, 'BND-09', 'fail');
    assert.deepEqual(
      c.evidence.map((e) => e.outcome),
      ['bad', 'bad'],
    );
    assert.ok(c.evidence.every((e) => /^shared credential/.test(e.detail ?? '')));
    assert.ok(!JSON.stringify(run.pack).includes(SA_TOKEN));
  });

  it("the client's own credential arriving downstream is named as passed through", async () => {
    // What a token-passthrough server's downstream would see: for each request of alice's reaching the CRM, a stand-in observer reports alice's own bearer.
    const h = await exchange.fx.headersFor('alice');
    const passthrough = await startTestObserver();
    const hook = (i: CrmRequestInfo) => {
      const t = /^Bearer\s+(\S+)$/i.exec(String(i.headers.authorization ?? ''))?.[1];
      if (t && decodeJwt(t).sub === 'alice') passthrough.record({ ...i, headers: { authorization: h.authorization } });
    };
    exchange.hooks.push(hook);
    try {
      const run = await review({
        target: targetsOf(exchange.fx.gateway).streamable,
        only: ['BND-09'],
        profile: {
          identities: { alice: { headers: h } },
          safeToCall: ['list_customers'],
          downstream: { observer: { url: passthrough.url }, call: { tool: 'list_customers', arguments: {} } },
        },
      });
      const c = assertStatus(run, 'BND-09', 'fail');
      assert.match(
        c.evidence[0]!.detail!,
        /^client token passed through: the downstream received alice's authorization/,
      );
      assertNoSecrets(run, [bearer(h)]);
    } finally {
      exchange.hooks.splice(exchange.hooks.indexOf(hook), 1);
      await passthrough.close();
    }
  });

  it('is not assessed without profile.downstream and without --config', async () => {
    const run = await review({
      target: targetsOf(exchange.fx.gateway).streamable,
      only: ['BND-09'],
      profile: { identities: {} },
    });
    assert.match(assertStatus(run, 'BND-09', 'not-assessed').reason!, /profile\.downstream/);
  });
});
