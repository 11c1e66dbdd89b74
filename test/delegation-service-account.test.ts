/**
 * A declared service account: the upstream receives exactly that one static
 * credential for every user — never the agent's API key nor the user's token
 * — and every audit record names the strategy and the credential's
 * fingerprint, so a review can report the gap. Undeclared static
 * credentials are not a strategy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCrmHttp, type CrmHttpServer, type CrmRequestInfo } from '../demo/crm/http.js';
import { fingerprint } from '../src/shared/hash.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { openSession, postJson, rpcResult, toolCall } from './helpers/raw-http.js';

const SA_TOKEN = 'service-account-canary-5f1e2d3c4b5a69788796a5b4';

describe('downstream strategy: service-account (declared)', () => {
  let crm: CrmHttpServer;
  let fx: Fixture;
  const seen: CrmRequestInfo[] = [];
  before(async () => {
    crm = await startCrmHttp({ onRequest: (i) => seen.push(i) });
    fx = await startFixture({
      upstreams: {
        crm: {
          transport: 'streamable-http',
          url: crm.url,
          downstream: { strategy: 'service-account', headers: { authorization: 'env:CRM_SA' } },
        },
      },
      gateway: { env: { ...process.env, CRM_SA: `Bearer ${SA_TOKEN}` } },
    });
  });
  after(async () => {
    await fx?.close();
    await crm?.close();
  });

  it('every request to the upstream carries the service account and nothing of the caller; audit names it', async () => {
    const url = fx.gateway.urlFor('crm');
    const headers = await fx.headersFor('alice');
    const sid = await openSession(url, headers);
    const mark = seen.length;
    rpcResult(await postJson(url, headers, toolCall('get_customer', { customer_id: 'c-100' }), sid));
    const calls = seen.slice(mark).filter((i) => i.method === 'POST');
    assert.ok(calls.length >= 1);
    for (const i of [...seen]) {
      assert.equal(i.headers.authorization, `Bearer ${SA_TOKEN}`);
      assert.equal(i.headers['x-api-key'], undefined, "the agent's API key never reaches the upstream");
      assert.ok(
        !JSON.stringify(i.headers).includes(headers.authorization!.slice(7)),
        "the user's token never reaches the upstream",
      );
    }
    const [outcome] = await fx.gateway.runtime.audit.query({ kind: 'outcome', target: 'get_customer', limit: 1 });
    assert.equal(outcome!.downstreamStrategy, 'service-account');
    assert.equal(outcome!.downstreamCredentialId, `sa:${fingerprint(`Bearer ${SA_TOKEN}`)}`);
    const [decision] = await fx.gateway.runtime.audit.query({ kind: 'decision', target: 'get_customer', limit: 1 });
    assert.equal(decision!.downstreamStrategy, 'service-account');
  });

  it('a service account without its secret refuses to start', async () => {
    await assert.rejects(
      startFixture({
        upstreams: {
          crm: {
            transport: 'streamable-http',
            url: crm.url,
            downstream: { strategy: 'service-account', headers: { authorization: 'env:NOT_SET_ANYWHERE_4711' } },
          },
        },
      }),
      /NOT_SET_ANYWHERE_4711 is not set/,
    );
  });
});
