/**
 * The HTTP half of `behalf/sdk` on MCP SDK v1 and v2: the user-token attack
 * set (alg none, wrong audience, expired, unknown kid, HS/RS key confusion,
 * wrong issuer) is refused with a well-formed RFC 6750 challenge pointing at
 * the RFC 9728 metadata the server publishes, each refusal is audited
 * without the token, and a token signed with the IdP's key and sound claims
 * passes (positive control). On v1 (sessions), a session answers only its
 * owner: anyone else's id is answered exactly like an unknown one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { JWTPayload } from 'jose';
import { generateSigningJwks } from '../demo/idp/index.js';
import { metadataUrlFor } from '../src/gateway/metadata.js';
import { assertChallenge, assertNoSecrets, initialize, JSON_HEADERS, rawRequest } from './helpers/auth-http.js';
import { publicOf } from './helpers/auth-idp.js';
import {
  claimsOf,
  headerOf,
  hmacSigned,
  freshClaims,
  nowSeconds,
  publicPem,
  signWith,
  unsigned,
  type Header,
} from './helpers/auth-tokens.js';
import { startSdkFixture, type SdkFixture, type SdkVersion } from './helpers/sdk-fixture.js';

const INVALID = 'User token is invalid';

for (const version of ['v1', 'v2'] as SdkVersion[]) {
  describe(`behalf/sdk on MCP SDK ${version}: user authentication and sessions`, () => {
    let fx: SdkFixture;
    let base: JWTPayload;
    let header: Header;
    let metadataUrl: string;
    before(async () => {
      fx = await startSdkFixture(version);
      const real = await fx.token('alice');
      base = claimsOf(real);
      header = headerOf(real);
      metadataUrl = metadataUrlFor(fx.url);
    });
    after(async () => {
      await fx?.close();
    });

    const good = (over: JWTPayload = {}): JWTPayload => freshClaims(base, over);

    it('publishes RFC 9728 metadata naming its resource and issuer', async () => {
      const res = await rawRequest(metadataUrl);
      assert.equal(res.status, 200);
      const doc = res.json as { resource?: string; authorization_servers?: string[] };
      assert.equal(doc.resource, fx.url);
      assert.deepEqual(doc.authorization_servers, [fx.idp.issuer]);
    });

    it('no token: 401 with a challenge and no error param', async () => {
      assertChallenge(await initialize(fx.url, {}), { metadataUrl, scope: 'mcp:tools', message: /./ });
    });

    it('accepts (positive control): a token signed with the IdP key and sound claims', async () => {
      const res = await initialize(fx.url, fx.headers(await signWith(fx.signing, header, good())));
      assert.equal(res.status, 200, res.text);
    });

    const attacks: Array<{ name: string; token: () => Promise<string> | string; reason: RegExp }> = [
      { name: 'alg none', token: () => unsigned(header, good()), reason: /alg/i },
      {
        name: "HS256 keyed with the IdP's public key (key confusion)",
        token: () => hmacSigned(publicPem(publicOf(fx.signing)), header, good()),
        reason: /algorithm not allowed/,
      },
      {
        name: 'wrong audience',
        token: () => signWith(fx.signing, header, good({ aud: 'http://127.0.0.1:1/other' })),
        reason: /aud/,
      },
      { name: 'expired', token: () => signWith(fx.signing, header, good({ exp: nowSeconds() - 60 })), reason: /exp/ },
      {
        name: 'unknown kid',
        token: async () => {
          const k = (await generateSigningJwks()).keys[0] as Record<string, unknown>;
          return signWith(k, { ...header, kid: 'no-such-kid' }, good());
        },
        reason: /unknown key/,
      },
      {
        name: 'wrong issuer (signed with its key)',
        token: () => signWith(fx.signing, header, good({ iss: 'http://127.0.0.1:1/evil' })),
        reason: /issuer/,
      },
    ];
    for (const a of attacks) {
      it(`refuses: ${a.name}`, async () => {
        const token = await a.token();
        const res = await initialize(fx.url, fx.headers(token));
        assertChallenge(res, { error: 'invalid_token', metadataUrl, scope: 'mcp:tools', message: INVALID });
        assertNoSecrets(res, [token]);
        await fx.server.boundary.runtime.authFailures.flush();
        const [last] = await fx.server.boundary.runtime.audit.query({ kind: 'auth-failure', limit: 1 });
        assert.match(last?.reason ?? '', a.reason);
        assert.ok(!JSON.stringify(last).includes(token), 'the audit record does not carry the token');
      });
    }

    if (version === 'v1') {
      it("a session answers only its owner: bob's use of alice's id is answered like an unknown id, and recorded", async () => {
        const alice = fx.headers(await fx.token('alice'));
        const bob = fx.headers(await fx.token('bob'));
        const opened = await initialize(fx.url, alice);
        const sid = opened.headers.get('mcp-session-id')!;
        assert.ok(sid);
        const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
        const as = (h: Record<string, string>, id: string) =>
          rawRequest(fx.url, {
            method: 'POST',
            headers: { ...JSON_HEADERS, ...h, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' },
            body: list,
          });
        const stolen = await as(bob, sid);
        const unknown = await as(bob, '00000000-0000-4000-8000-000000000000');
        assert.equal(stolen.status, 404);
        assert.deepEqual([stolen.status, stolen.json], [unknown.status, unknown.json]);
        const [mismatch] = await fx.server.boundary.runtime.audit.query({ kind: 'session-mismatch', limit: 1 });
        assert.equal(mismatch?.userSubject, 'bob');
        const own = await as(alice, sid);
        assert.equal(own.status, 200, `alice's own session still answers her: ${own.text}`);
      });
    }
  });
}
