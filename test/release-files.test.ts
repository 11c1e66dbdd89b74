import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { parseConfig } from '../src/config/load.js';
import { BehalfError } from '../src/errors.js';
import { tempDir } from './helpers/tmp.js';

/*
 * What a release promises besides the code: the licence text, the version the CLI reports, the
 * interfaces docs/versioning.md calls public carrying their version, and no NOTICE owed to a
 * dependency. The package as installed is test/package-install.test.ts.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  version: string;
  license: string;
  exports: Record<string, string>;
  files: string[];
};
const run = promisify(execFile);

describe('release files', () => {
  it('behalf --version prints the package version and exits 0', async () => {
    const { stdout } = await run(process.execPath, [join(ROOT, 'bin/behalf.js'), '--version']);
    assert.equal(stdout, `${pkg.version}\n`);
    assert.match(pkg.version, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'a semantic version');
  });

  it('LICENSE is the full Apache-2.0 text, the licence package.json names', () => {
    const text = read('LICENSE');
    assert.equal(pkg.license, 'Apache-2.0');
    assert.match(text, /^\s+Apache License\n\s+Version 2\.0, January 2004\n/);
    for (const clause of [
      '1. Definitions.',
      '4. Redistribution.',
      '9. Accepting Warranty',
      'END OF TERMS AND CONDITIONS',
    ])
      assert.ok(text.includes(clause), `LICENSE has "${clause}"`);
  });

  it('no production dependency ships a NOTICE file (Apache-2.0 §4(d) would ask behalf to pass it on)', async () => {
    // npm ls exits 1 when the tree differs from package.json (CI's Node 24 run puts better-sqlite3 13 in place of
    // 12, .ci/node24) but lists the tree all the same, and the tree as installed is what is checked here.
    const stdout = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
      cwd: ROOT,
      maxBuffer: 16 << 20,
    }).then(
      (r) => r.stdout,
      (err: { stdout?: string }) => {
        if (!err.stdout) throw err;
        return err.stdout;
      },
    );
    const dirs = stdout.split('\n').filter((d) => d && d !== ROOT.replace(/\/$/, ''));
    assert.ok(dirs.length > 20, `the production tree was listed (${dirs.length} packages)`);
    const notices = dirs.flatMap((d) =>
      readdirSync(d)
        .filter((f) => /^notice/i.test(f))
        .map((f) => join(d, f)),
    );
    assert.deepEqual(notices, [], 'reproduce these in a NOTICE file and list them in THIRD_PARTY.md');
  });

  it('records a real store writes validate against the shipped audit-record.v1 schema; a changed shape does not', async () => {
    const schema = JSON.parse(read('schema/audit-record.v1.schema.json')) as Record<string, unknown>;
    const validate = new Ajv2020({ allErrors: true }).compile(schema);
    const store = new SqliteAuditStore(join(tempDir(), 'audit.db'));
    try {
      const decision = await store.append({
        ts: Date.now(),
        kind: 'decision',
        callId: 'c1',
        clientId: 'agent',
        userIssuer: 'https://idp.example.com',
        userSubject: 'alice',
        method: 'tools/call',
        target: 'get_customer',
        decision: 'allow',
        ruleIds: ['reps-read-own'],
        reason: 'allowed',
        instanceId: 'i-1',
      });
      await store.append({ ts: Date.now(), kind: 'outcome', callId: 'c1', outcome: 'ok', latencyMs: 1.5 });
      const records = [];
      for await (const r of store.records()) records.push(JSON.parse(JSON.stringify(r)) as Record<string, unknown>);
      assert.equal(records.length, 2);
      for (const r of records) assert.ok(validate(r), JSON.stringify(validate.errors));
      assert.equal(validate({ ...records[0], decision: 'maybe' }), false, 'a retyped field is refused');
      assert.equal(validate({ ...records[0], user: 'alice' }), false, 'an unknown field is refused');
      assert.equal(decision.seq, 1);
    } finally {
      await store.close();
    }
  });

  it('a config may name its format version (1); one written for another version is refused, naming the field', () => {
    const raw = {
      version: 1,
      clientAuth: { methods: ['api-key'] },
      clients: [{ id: 'agent', apiKeys: [{ id: 'k1', hash: `sha256:${'ab'.repeat(32)}` }], oauthClientIds: ['agent'] }],
      userAuth: { issuers: [{ issuer: 'http://127.0.0.1:9000', algorithms: ['ES256'] }] },
      upstreams: { crm: { transport: 'stdio', command: 'node', args: ['crm.js'] } },
      audit: { sqlitePath: ':memory:' },
    };
    assert.equal(parseConfig(raw, tempDir()).config.version, 1);
    const { version: _v, ...unversioned } = raw;
    assert.equal(parseConfig(unversioned, tempDir()).config.version, undefined, 'files without it still load');
    assert.throws(
      () => parseConfig({ ...raw, version: 2 }, tempDir()),
      (err: unknown) => err instanceof BehalfError && /^\s+version: /m.test(err.message),
    );
  });

  it('every export of package.json names a file the package ships', () => {
    const shipped = (p: string) => pkg.files.some((f) => !f.startsWith('!') && (p === f || p.startsWith(`${f}/`)));
    for (const [name, target] of Object.entries(pkg.exports)) {
      const path = target.replace(/^\.\//, '');
      assert.ok(existsSync(join(ROOT, path)), `${name} → ${target} exists`);
      assert.ok(path === 'package.json' || shipped(path), `${name} → ${target} is in "files"`);
    }
  });
});
