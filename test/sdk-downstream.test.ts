/**
 * What a handler behind `behalf/sdk` gets, on MCP SDK v1 and v2: its verified
 * user (`behalf.user(ctx)`), its decision already on the audit trail when it
 * runs, and `behalf.downstream(ctx, audience)` — this user's own credential
 * (an RFC 8693 token exchanged at the real dev IdP), never another's: alice
 * and bob calling concurrently, interleaved, each get a token about
 * themselves, and one exchange per user is reused (cached per user).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { z } from 'zod';
import * as behalf from '../src/sdk/index.js';
import { connectStreamable, toolJson } from './helpers/clients.js';
import { REPORTS_API, startSdkFixture, type SdkFixture, type SdkVersion } from './helpers/sdk-fixture.js';

const TOOL = 'reports_whoami';
const CALLS_PER_USER = 8;

/** The tool's handler, the same on both SDKs: who the boundary says, and who the downstream credential is about. */
function probe(fxRef: { fx?: SdkFixture }) {
  return async (n: number, ctx: unknown) => {
    const user = behalf.user(ctx);
    const decisions = await fxRef.fx!.server.boundary.runtime.audit.query({
      kind: 'decision',
      subject: user?.subject,
      target: TOOL,
      limit: 1000,
    });
    await sleep(Math.floor(Math.random() * 10));
    const credential = await behalf.downstream(ctx, REPORTS_API);
    const claims = decodeJwt(credential.headers.authorization!.replace(/^Bearer /, ''));
    const value = {
      user: user?.subject,
      client: user?.client,
      ownDecisionSeen: decisions.some((d) => (JSON.parse(d.args ?? '{}') as { n?: number }).n === n),
      downstreamSub: claims.sub,
      downstreamAud: claims.aud,
      actor: (claims.act as { sub?: string } | undefined)?.sub,
    };
    return { content: [{ type: 'text' as const, text: JSON.stringify(value) }] };
  };
}

const allowTool = (c: Record<string, unknown>): Record<string, unknown> => {
  const policy = c.policy as { rules: unknown[] };
  return {
    ...c,
    policy: { rules: [...policy.rules, { id: 'reports', effect: 'allow', upstreams: ['crm'], tools: [TOOL] }] },
  };
};

for (const version of ['v1', 'v2'] as SdkVersion[]) {
  describe(`behalf/sdk handlers on MCP SDK ${version}`, () => {
    const ref: { fx?: SdkFixture } = {};
    let fx: SdkFixture;
    before(async () => {
      const handler = probe(ref);
      fx = ref.fx = await startSdkFixture(version, {
        config: allowTool,
        extend: {
          v1: (s) =>
            s.registerTool(
              TOOL,
              { description: 'who am I downstream', inputSchema: { n: z.number() } },
              ({ n }, extra) => handler(n, extra),
            ),
          v2: (s) =>
            s.registerTool(
              TOOL,
              { description: 'who am I downstream', inputSchema: z.object({ n: z.number() }) },
              ({ n }, ctx) => handler(n, ctx),
            ),
        },
      });
    });
    after(async () => {
      await fx?.close();
    });

    it('alice and bob interleaved: each gets a credential about herself, exchanged once per user', async () => {
      const alice = await connectStreamable(fx.url, fx.headers(await fx.token('alice')));
      const bob = await connectStreamable(fx.url, fx.headers(await fx.token('bob')));
      const before = fx.idp.exchanges().length;
      try {
        const calls = [];
        for (let i = 0; i < CALLS_PER_USER; i++) {
          for (const [k, [name, client]] of (
            [
              ['alice', alice],
              ['bob', bob],
            ] as const
          ).entries()) {
            const n = i * 2 + k;
            calls.push(client.callTool({ name: TOOL, arguments: { n } }).then((r) => ({ name, value: toolJson(r) })));
          }
        }
        const results = await Promise.all(calls);
        for (const { name, value } of results) {
          assert.equal(value.user, name);
          assert.equal(value.client, 'agent');
          assert.equal(value.downstreamSub, name, `${name} got a credential about ${String(value.downstreamSub)}`);
          assert.equal(value.downstreamAud, REPORTS_API);
          assert.equal(value.ownDecisionSeen, true, "this call's decision was on the record before its handler ran");
        }
        const issued = fx.idp
          .exchanges()
          .slice(before)
          .filter((e) => e.outcome === 'issued');
        assert.equal(issued.length, 2, 'one exchange per user, then the cached credential');
      } finally {
        await alice.close();
        await bob.close();
      }
    });

    it('the outcome record names the downstream credential by id, never the token', async () => {
      const outcomes = await fx.server.boundary.runtime.audit.query({ kind: 'outcome', target: TOOL, limit: 1 });
      assert.equal(outcomes[0]?.outcome, 'ok');
      assert.match(outcomes[0]?.downstreamCredentialId ?? '', /\S/);
      assert.ok(!JSON.stringify(outcomes).includes('eyJ'), 'no JWT in the audit trail');
    });
  });
}
