/**
 * The configuration of `behalf/sdk`: the gateway's format minus upstreams,
 * plus `sdk`. The shipped schema is generated from its definition, the
 * examples' configs validate with `behalf config check --sdk` (and not as a
 * gateway's), a gateway's config is refused as an SDK's, the examples'
 * policy is the quickstart's, and the shared checks apply (a literal secret
 * is refused, a rule naming an unknown server is refused).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { loadConfigFile } from '../src/config/load.js';
import { loadSdkConfigFile, parseSdkConfig } from '../src/config/load-sdk.js';
import { sdkJsonSchema } from '../src/config/schema-sdk.js';
import { sdkConfig } from './helpers/sdk-fixture.js';

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const CLI = root('dist/src/cli/main.js');
const check = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, 'config', 'check', ...args], { encoding: 'utf8' });
const base = () => sdkConfig('http://127.0.0.1:1', 'http://127.0.0.1:2/mcp', ':memory:');

describe('behalf/sdk configuration', () => {
  it('schema/sdk.schema.json is generated from the current definition (run npm run schema)', () => {
    assert.deepEqual(JSON.parse(readFileSync(root('schema/sdk.schema.json'), 'utf8')), sdkJsonSchema());
  });

  it('behalf config check --sdk accepts an example and refuses it without --sdk (upstreams are required there)', () => {
    const ok = check('--sdk', '--config', root('examples/sdk-v1/behalf.yaml'));
    assert.equal(ok.status, 0, ok.stderr);
    const gateway = check('--config', root('examples/sdk-v1/behalf.yaml'));
    assert.notEqual(gateway.status, 0);
    assert.match(gateway.stderr, /upstreams/);
  });

  for (const v of ['v1', 'v2']) {
    it(`examples/sdk-${v}/behalf.yaml is a valid SDK config and not a gateway's`, () => {
      const loaded = loadSdkConfigFile(root(`examples/sdk-${v}/behalf.yaml`));
      assert.equal(loaded.sdk.name, 'crm');
      assert.equal(loaded.policy?.rules.length, DEMO_POLICY.length);
      assert.throws(() => loadConfigFile(root(`examples/sdk-${v}/behalf.yaml`)), /upstreams/);
    });
  }

  it("the examples' policy is the quickstart's", () => {
    assert.deepEqual(
      (parse(readFileSync(root('examples/sdk-policy.yaml'), 'utf8')) as { rules: unknown }).rules,
      DEMO_POLICY,
    );
  });

  it("a gateway's config is refused as an SDK's, naming upstreams and the missing sdk section", () => {
    assert.throws(
      () => loadSdkConfigFile(root('examples/gateway.yaml')),
      (err: Error) => {
        assert.match(err.message, /upstreams/);
        assert.match(err.message, /sdk/);
        return true;
      },
    );
  });

  it("the gateway's own checks apply: a literal secret and a rule naming another server are refused", () => {
    const secret = base();
    const sdk = secret.sdk as { downstreams: Record<string, { clientSecret: string }> };
    for (const d of Object.values(sdk.downstreams)) d.clientSecret = 'hunter2-literal-Secret-1234';
    assert.throws(() => parseSdkConfig(secret, '/tmp'), /clientSecret/);
    const other = { ...base(), policy: { rules: [{ id: 'x', effect: 'allow', upstreams: ['files'], tools: ['*'] }] } };
    assert.throws(() => parseSdkConfig(other, '/tmp'), /files matches no upstream/);
    assert.doesNotThrow(() => parseSdkConfig(base(), '/tmp'));
  });
});
