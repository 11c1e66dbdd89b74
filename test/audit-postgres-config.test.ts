/**
 * The `audit.postgres` section (issue 14): the URL only by reference, never
 * with sqlitePath or durability, and a reference that does not resolve to a
 * postgres:// URL refused at start with a message naming the reference, not
 * its value. Positive control: the same config with a good reference loads.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configuredAuditStore } from '../src/audit/configured-store.js';
import { parseConfig } from '../src/config/load.js';

function raw(audit: Record<string, unknown>): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', port: 0, allowUnauthenticated: true },
    userAuth: { issuers: [{ issuer: 'http://127.0.0.1:9000', algorithms: ['ES256'] }] },
    upstreams: { crm: { transport: 'stdio', command: 'node', args: ['crm.js'] } },
    audit,
  };
}

const invalid = (audit: Record<string, unknown>) => () => parseConfig(raw(audit), '/tmp');

describe('audit.postgres in the configuration', () => {
  it('loads with a secret reference (positive control)', () => {
    const { config } = parseConfig(raw({ postgres: { url: 'env:BEHALF_PG_URL' } }), '/tmp');
    assert.equal(config.audit.postgres?.url, 'env:BEHALF_PG_URL');
  });

  it('refuses a literal URL, with or without a password', () => {
    assert.throws(invalid({ postgres: { url: 'postgres://u:hunter2secret@db/audit' } }), (e: Error) => {
      assert.match(e.message, /audit\.postgres\.url/);
      assert.ok(!e.message.includes('hunter2secret'), 'the message never repeats the value');
      return true;
    });
    assert.throws(invalid({ postgres: { url: 'postgres://db/audit' } }), /must be a secret reference/);
  });

  it('refuses sqlitePath or durability beside it', () => {
    assert.throws(
      invalid({ sqlitePath: 'a.db', postgres: { url: 'env:X' } }),
      /audit: give either sqlitePath .* or postgres .*, not both/,
    );
    assert.throws(
      invalid({ durability: 'full', postgres: { url: 'env:X' } }),
      /audit\.durability: applies to SQLite only/,
    );
  });

  it('refuses at start a reference that is unset or not a postgres URL, naming the reference only', () => {
    const { config } = parseConfig(raw({ postgres: { url: 'env:BEHALF_TEST_PG' } }), '/tmp');
    const open = (env: NodeJS.ProcessEnv) => () =>
      configuredAuditStore(config.audit, { baseDir: '/tmp', env, log: () => {} });
    assert.throws(open({}), /secret env:BEHALF_TEST_PG: environment variable BEHALF_TEST_PG is not set/);
    assert.throws(open({ BEHALF_TEST_PG: 'mysql://u:pw1234@h/db' }), (e: Error) => {
      assert.match(e.message, /audit\.postgres\.url \(env:BEHALF_TEST_PG\) must resolve to a postgres:\/\//);
      assert.ok(!e.message.includes('pw1234'));
      return true;
    });
  });
});
