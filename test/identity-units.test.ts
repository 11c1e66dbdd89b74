import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiKeyEntry, findApiKey, generateApiKey, hashApiKey } from '../src/identity/api-keys.js';
import { bearerToken } from '../src/identity/authenticator.js';
import { wwwAuthenticate } from '../src/gateway/challenge.js';
import { BehalfError } from '../src/errors.js';

/** Small pure pieces of client and user authentication, with their edge cases. */

describe('identity units: bearerToken', () => {
  const ok: Array<[string, string]> = [
    ['Bearer abc.def.ghi', 'abc.def.ghi'],
    ['bearer abc.def.ghi', 'abc.def.ghi'],
    ['BEARER   abc.def.ghi  ', 'abc.def.ghi'],
    ['Bearer a-b_c.d~e+f/g==', 'a-b_c.d~e+f/g=='],
  ];
  for (const [header, token] of ok) {
    it(`reads ${JSON.stringify(header)}`, () => assert.equal(bearerToken(header), token));
  }
  it('absent header: no token (not an error)', () => assert.equal(bearerToken(undefined), undefined));

  const bad: Array<string | string[]> = [
    'Basic YWxpY2U6cHc=',
    'Bearer',
    'Bearer a b',
    'Bearer a,b',
    'Token abc',
    'abc.def.ghi',
    'Bearer "abc"',
    ['Bearer a', 'Bearer b'],
  ];
  for (const header of bad) {
    it(`refuses ${JSON.stringify(header)} as user_token_invalid`, () => {
      assert.throws(
        () => bearerToken(header),
        (err: unknown) => err instanceof BehalfError && err.code === 'user_token_invalid',
      );
    });
  }
});

describe('identity units: API keys', () => {
  it('generated keys are high-entropy, prefixed and distinct; hashes have the configured form', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    assert.match(a, /^bhk_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a, b);
    assert.match(hashApiKey(a), /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(hashApiKey(a), hashApiKey(b));
  });

  it('finds the configured key by its digest, and nothing for near misses', () => {
    const keys = [generateApiKey(), generateApiKey(), generateApiKey()];
    const entries = keys.map((k, i) => apiKeyEntry(`client-${i}`, `k${i}`, hashApiKey(k)));
    keys.forEach((k, i) => assert.equal(findApiKey(entries, k)?.clientId, `client-${i}`));
    for (const miss of [
      '',
      keys[0]!.slice(0, -1),
      `${keys[0]} `,
      keys[0]!.toUpperCase(),
      hashApiKey(keys[0]!),
      `${keys[0]}, ${keys[1]}`,
    ]) {
      assert.equal(findApiKey(entries, miss), undefined, JSON.stringify(miss));
    }
    assert.equal(findApiKey([], keys[0]!), undefined);
  });
});

describe('identity units: WWW-Authenticate challenges', () => {
  const META = 'https://gw.example/.well-known/oauth-protected-resource/mcp/crm';
  const cases: Array<{
    code: ConstructorParameters<typeof BehalfError>[0];
    detail?: string;
    scopes?: string[];
    expect: string | undefined;
  }> = [
    { code: 'client_auth_required', expect: `Bearer resource_metadata="${META}"` },
    {
      code: 'user_token_required',
      scopes: ['mcp:tools'],
      expect: `Bearer scope="mcp:tools", resource_metadata="${META}"`,
    },
    {
      code: 'user_token_invalid',
      detail: 'untrusted issuer',
      expect: `Bearer error="invalid_token", error_description="User token is invalid", resource_metadata="${META}"`,
    },
    {
      code: 'client_auth_invalid',
      detail: 'unknown API key',
      expect: `Bearer error="invalid_token", error_description="Client authentication failed", resource_metadata="${META}"`,
    },
    {
      code: 'delegation_mismatch',
      expect: `Bearer error="invalid_token", error_description="User token was not issued to this client", resource_metadata="${META}"`,
    },
    {
      code: 'insufficient_scope',
      scopes: ['a', 'b'],
      expect: `Bearer error="insufficient_scope", scope="a b", resource_metadata="${META}"`,
    },
    { code: 'forbidden', expect: undefined },
    { code: 'session_unknown', expect: undefined },
  ];
  for (const c of cases) {
    it(`${c.code}${c.detail ? ` (${c.detail})` : ''}`, () => {
      const err = new BehalfError(c.code, c.detail);
      assert.equal(wwwAuthenticate(err, META, c.scopes ?? []), c.expect);
      // The reason a credential failed is for the audit log, not the caller.
      if (c.detail) assert.ok(!err.publicMessage.includes(c.detail));
    });
  }
});
