/**
 * The tamper-evident audit trail: records in a real SQLite file are chained
 * by hash, and `behalf audit verify` (run as a user runs it) finds an edited,
 * deleted or inserted record by its seq. The attacker modelled here has SQL
 * access to the file but does not re-hash the whole chain; one who does is
 * caught only against a head kept elsewhere (--expect-head), tested too.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { GENESIS, recordHash, verifyChain } from '../src/audit/chain.js';
import type { AuditEvent, AuditRecord } from '../src/audit/event.js';
import { ArgumentRedactor, ARGS_MAX_CHARS } from '../src/audit/redact.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { tempDir } from './helpers/tmp.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const N = 40;
const T0 = Date.parse('2026-01-01T00:00:00Z');

/** A varied stream of events: two users, two clients, allows and denies, rule ids, outcomes. */
function event(i: number): AuditEvent {
  const user = i % 2 ? 'alice' : 'bob';
  const decision = i % 3 ? 'allow' : 'deny';
  return {
    ts: T0 + i * 1000,
    kind: i % 4 === 3 ? 'outcome' : 'decision',
    callId: `call-${i}`,
    route: 'crm',
    upstream: 'crm',
    transport: 'streamable-http',
    clientId: i % 5 ? 'agent' : 'other-agent',
    clientMethod: 'api-key',
    credentialId: 'k1',
    userIssuer: 'https://idp.example',
    userSubject: user,
    tokenFingerprint: `fp${i}`,
    method: 'tools/call',
    target: `get_customer_${i % 7}`,
    decision,
    ruleIds: decision === 'allow' ? ['reps-own', `r${i % 2}`] : [],
    reason: 'why',
    latencyMs: i % 4 === 3 ? 1.25 * i : undefined,
    args: '{"customer_id":"[redacted string 5]"}',
    argsDigest: 'ab'.repeat(32),
    policyVersion: 'pv1',
    downstreamStrategy: 'none',
  };
}

function seeded(n = N): { dir: string; db: string; events: AuditEvent[] } {
  const dir = tempDir();
  const db = join(dir, 'audit.db');
  const store = new SqliteAuditStore(db);
  const events = Array.from({ length: n }, (_, i) => event(i + 1));
  for (const e of events) store.appendSync(e);
  void store.close();
  return { dir, db, events };
}

/** A copy to tamper with; the store is closed, so the WAL is checkpointed into the file. */
function copyOf(db: string): string {
  const to = join(tempDir(), 'audit.db');
  copyFileSync(db, to);
  return to;
}

function sql(db: string, run: (d: Database.Database) => void): void {
  const d = new Database(db);
  try {
    run(d);
  } finally {
    d.close();
  }
}

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, 'audit', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function rows(db: string): AuditRecord[] {
  const d = new Database(db, { readonly: true });
  try {
    return d.prepare('SELECT seq, hash FROM audit_events ORDER BY seq').all() as AuditRecord[];
  } finally {
    d.close();
  }
}

describe('the hash chain and `behalf audit verify`', () => {
  const { db, events } = seeded();
  const head = rows(db).at(-1)!;

  it('positive control: an untouched store verifies, and verify prints the head', () => {
    const r = cli('verify', '--db', db);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, `ok: ${N} records, head ${N} ${head.hash}\n`);
  });

  it('every appended record is chained to the one before it, from genesis', async () => {
    const store = new SqliteAuditStore(db, { readonly: true });
    const all: AuditRecord[] = [];
    for await (const r of store.records()) all.push(r);
    await store.close();
    assert.equal(all.length, N);
    assert.equal(all[0]!.prevHash, GENESIS);
    for (const [i, r] of all.entries()) {
      assert.equal(r.seq, i + 1);
      assert.equal(r.hash, recordHash(r));
      if (i) assert.equal(r.prevHash, all[i - 1]!.hash);
      const { seq: _s, prevHash: _p, hash: _h, ...stored } = r;
      assert.deepEqual(stored, JSON.parse(JSON.stringify(events[i])), 'every field reads back as written');
    }
  });

  it('(a) a record edited with plain SQL is named by its seq', () => {
    const copy = copyOf(db);
    sql(copy, (d) => d.prepare("UPDATE audit_events SET target = 'export_all_customers' WHERE seq = 17").run());
    const r = cli('verify', '--db', copy);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stdout, /^FAILED: 1 problem\(s\) in 40 records\nseq 17: edited: /);
  });

  it('(a) so is an edit to any other column, e.g. the decision or the rule ids', () => {
    for (const [column, value] of [
      ['decision', 'allow'],
      ['rule_ids', '["manager-all"]'],
      ['ts', T0],
      ['prev_hash', 'a'.repeat(64)],
    ] as const) {
      const copy = copyOf(db);
      sql(copy, (d) => d.prepare(`UPDATE audit_events SET ${column} = ? WHERE seq = 9`).run(value));
      const r = cli('verify', '--db', copy);
      assert.equal(r.status, 1, `${column}: ${r.stdout}`);
      assert.match(r.stdout, /\nseq 9: edited: /, column);
    }
  });

  it('(b) a deleted record shows as a gap and a broken link at the next seq', () => {
    const copy = copyOf(db);
    sql(copy, (d) => d.prepare('DELETE FROM audit_events WHERE seq = 20').run());
    const r = cli('verify', '--db', copy);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stdout, /\nseq 21: seq-gap: records 20 missing\n/);
    assert.match(r.stdout, /\nseq 21: broken-link: /);
  });

  it('(b) so does deleting the first record', () => {
    const copy = copyOf(db);
    sql(copy, (d) => d.prepare('DELETE FROM audit_events WHERE seq = 1').run());
    const r = cli('verify', '--db', copy);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stdout, /\nseq 2: seq-gap: chain starts at seq 2/);
  });

  it('(c) a forged record inserted in the middle (later seqs shifted) breaks the link at its seq', () => {
    const copy = copyOf(db);
    sql(copy, (d) => {
      d.prepare('UPDATE audit_events SET seq = -seq WHERE seq >= 10').run();
      d.prepare('UPDATE audit_events SET seq = 1 - seq WHERE seq < 0').run();
      // The forger hashes the forged record correctly but cannot re-hash everything after it.
      const forged = { ...event(99), target: 'forged', seq: 10, prevHash: 'f'.repeat(64) };
      d.prepare(`INSERT INTO audit_events (seq, ts, kind, target, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)`).run(
        10,
        forged.ts,
        forged.kind,
        forged.target,
        forged.prevHash,
        recordHash({ seq: 10, prevHash: forged.prevHash, ts: forged.ts, kind: forged.kind, target: forged.target }),
      );
    });
    const r = cli('verify', '--db', copy);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stdout, /\nseq 10: broken-link: /);
    assert.doesNotMatch(r.stdout, /seq 10: edited/, 'the forged record itself is well-formed: the link gives it away');
    assert.match(r.stdout, /\nseq 11: edited: /, 'the shifted record no longer matches its hash');
  });

  it('(c) a forged record appended at the end with a made-up prevHash is named', () => {
    const copy = copyOf(db);
    sql(copy, (d) => {
      const rec = { ...event(50), seq: N + 1, prevHash: 'e'.repeat(64) };
      d.prepare('INSERT INTO audit_events (seq, ts, kind, prev_hash, hash) VALUES (?, ?, ?, ?, ?)').run(
        rec.seq,
        rec.ts,
        rec.kind,
        rec.prevHash,
        recordHash({ seq: rec.seq, prevHash: rec.prevHash, ts: rec.ts, kind: rec.kind }),
      );
    });
    const r = cli('verify', '--db', copy);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stdout, new RegExp(`\\nseq ${N + 1}: broken-link: `));
  });

  it('(d) a deleted tail passes the chain alone, and is caught with --expect-head', () => {
    const copy = copyOf(db);
    sql(copy, (d) => d.prepare('DELETE FROM audit_events WHERE seq > ?').run(N - 3));
    const alone = cli('verify', '--db', copy);
    assert.equal(alone.status, 0, 'a truncated chain is still a consistent chain');
    assert.match(alone.stdout, new RegExp(`^ok: ${N - 3} records, head ${N - 3} `));
    const anchored = cli('verify', '--db', copy, '--expect-head', head.hash);
    assert.equal(anchored.status, 1, anchored.stdout);
    assert.match(
      anchored.stdout,
      new RegExp(`\\nseq ${N - 3}: head-mismatch: expected head ${head.hash} is not in the chain`),
    );
    // Positive controls: the true head, and an older head with records chained after it, both pass.
    assert.equal(cli('verify', '--db', db, '--expect-head', head.hash).status, 0);
    assert.equal(cli('verify', '--db', db, '--expect-head', rows(db)[N - 10]!.hash).status, 0);
  });

  it('(e) an export verifies offline, whole or from the middle, and an edited or dropped line is caught', () => {
    const dir = tempDir();
    const file = join(dir, 'export.jsonl');
    assert.equal(cli('export', '--db', db, '--out', file).status, 0);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, N);
    assert.deepEqual(Object.keys(JSON.parse(lines[0]!) as object).slice(0, 3), ['seq', 'prevHash', 'hash']);
    const whole = cli('verify', '--file', file);
    assert.equal(whole.status, 0, whole.stdout);
    assert.equal(whole.stdout, `ok: ${N} records, head ${N} ${head.hash}\n`);

    const middle = cli('export', '--db', db, '--since', new Date(T0 + 25_000).toISOString());
    assert.equal(middle.status, 0);
    const mid = join(dir, 'mid.jsonl');
    writeFileSync(mid, middle.stdout);
    const r = cli('verify', '--file', mid);
    assert.equal(r.status, 0, r.stdout);
    assert.equal(
      r.stdout,
      `ok: ${N - 24} records, head ${N} ${head.hash}, anchored at seq 24 hash ${rows(db)[23]!.hash}\n`,
    );
    assert.equal(cli('export', '--db', db, '--from-seq', '25').stdout, middle.stdout);

    const edited = join(dir, 'edited.jsonl');
    writeFileSync(
      edited,
      lines.map((l, i) => (i === 11 ? l.replace('"userSubject":"bob"', '"userSubject":"carol"') : l)).join('\n'),
    );
    const e = cli('verify', '--file', edited);
    assert.equal(e.status, 1, e.stdout);
    assert.match(e.stdout, /\nseq 12: edited: /);

    const dropped = join(dir, 'dropped.jsonl');
    writeFileSync(dropped, lines.filter((_, i) => i !== 30).join('\n'));
    const d = cli('verify', '--file', dropped);
    assert.equal(d.status, 1);
    assert.match(d.stdout, /\nseq 32: seq-gap: records 31 missing\n/);

    const garbage = join(dir, 'garbage.jsonl');
    writeFileSync(garbage, [...lines.slice(0, 5), '{not json', ...lines.slice(5)].join('\n'));
    const g = cli('verify', '--file', garbage);
    assert.equal(g.status, 1);
    assert.match(g.stdout, /line 6 is not an audit record/);
  });

  it('(f) two stores appending to one file interleaved still make one chain', async () => {
    const path = join(tempDir(), 'shared.db');
    const a = new SqliteAuditStore(path);
    const b = new SqliteAuditStore(path);
    const written: AuditRecord[] = [];
    for (let i = 0; i < 50; i++) {
      written.push(await a.append(event(i)));
      written.push(await b.append(event(i + 100)));
      if (i % 7 === 0) written.push(b.appendSync(event(i + 200)));
    }
    await a.close();
    await b.close();
    assert.deepEqual(
      written.map((r) => r.seq),
      written.map((_, i) => i + 1),
      "each append landed after the other writer's",
    );
    const reader = new SqliteAuditStore(path, { readonly: true });
    const report = await verifyChain(reader.records());
    await reader.close();
    assert.deepEqual(report, {
      ok: true,
      count: written.length,
      head: { seq: written.length, hash: written.at(-1)!.hash },
      problems: [],
    });
    assert.equal(cli('verify', '--db', path).status, 0);
  });

  it('a fork by a writer that ignores the head (a second record chained to the same predecessor) is caught by verify', () => {
    const copy = copyOf(db);
    sql(copy, (d) => {
      d.prepare('INSERT INTO audit_events (seq, ts, kind, prev_hash, hash) VALUES (?, ?, ?, ?, ?)').run(
        N + 1,
        T0,
        'decision',
        rows(copy)[4]!.hash,
        'x',
      );
    });
    const r = cli('verify', '--db', copy);
    assert.equal(r.status, 1);
    assert.match(r.stdout + r.stderr, new RegExp(`\\b${N + 1}\\b`));
  });

  it('a string the database cannot hold as-is (a lone surrogate from client JSON) is stored well-formed, not as a false alarm', async () => {
    const path = join(tempDir(), 'odd.db');
    const store = new SqliteAuditStore(path);
    const rec = await store.append({ ts: T0, kind: 'decision', target: 'tool\ud800name', reason: 'nul\u0000inside' });
    assert.equal(rec.target, 'tool\ufffdname');
    await store.close();
    assert.equal(cli('verify', '--db', path).status, 0);
  });

  it('a store of the previous version (no hash column) is kept aside and a fresh chain starts', async () => {
    const path = join(tempDir(), 'legacy.db');
    sql(path, (d) => {
      d.exec('CREATE TABLE audit_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL, kind TEXT, target TEXT)');
      d.prepare('INSERT INTO audit_events (ts, kind, target) VALUES (?, ?, ?)').run(T0, 'decision', 'old');
    });
    // Exit 3 (unavailable), not 2: the command line is right, the store cannot be used as it is.
    assert.equal(cli('verify', '--db', path).status, 3, 'the CLI does not touch a legacy store');
    const store = new SqliteAuditStore(path);
    const rec = await store.append(event(1));
    await store.close();
    assert.equal(rec.seq, 1);
    assert.equal(rec.prevHash, GENESIS);
    sql(path, (d) => {
      const legacy = d
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'audit_events_legacy_%'")
        .all() as Array<{ name: string }>;
      assert.equal(legacy.length, 1);
      assert.deepEqual(d.prepare(`SELECT target FROM ${legacy[0]!.name}`).all(), [{ target: 'old' }]);
    });
    assert.equal(cli('verify', '--db', path).status, 0);
  });
});

describe("reading the audit log: query, tail, the store's filters", () => {
  const { db, events } = seeded();
  const jsonl = (s: string) =>
    s
      .trimEnd()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditRecord);

  it('(g) query filters by user, issuer, client, method, target, decision, kind and time, newest N oldest first', () => {
    const expect = (pred: (e: AuditEvent) => boolean) => events.filter(pred).map((e) => e.callId);
    const cases: Array<[string[], (e: AuditEvent) => boolean]> = [
      [['--user', 'alice'], (e) => e.userSubject === 'alice'],
      [['--user', 'alice', '--decision', 'deny'], (e) => e.userSubject === 'alice' && e.decision === 'deny'],
      [['--client', 'other-agent'], (e) => e.clientId === 'other-agent'],
      [
        ['--target', 'get_customer_3', '--kind', 'decision'],
        (e) => e.target === 'get_customer_3' && e.kind === 'decision',
      ],
      [['--issuer', 'https://idp.example', '--method', 'tools/call'], () => true],
      [['--issuer', 'https://other.example'], () => false],
      [
        ['--since', new Date(T0 + 10_000).toISOString(), '--until', String(T0 + 12_000)],
        (e) => e.ts >= T0 + 10_000 && e.ts <= T0 + 12_000,
      ],
    ];
    for (const [args, pred] of cases) {
      const r = cli('query', '--json', '--db', db, ...args);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(
        jsonl(r.stdout).map((x) => x.callId),
        expect(pred),
        args.join(' '),
      );
    }
    assert.deepEqual(
      jsonl(cli('query', '--json', '--db', db, '--limit', '3').stdout).map((r) => r.seq),
      [N - 2, N - 1, N],
    );
    assert.equal(cli('query', '--db', db, '--decision', 'maybe').status, 2);
    assert.equal(cli('query', '--db', db, '--since', 'yesterday').status, 2);
  });

  it('the store answers afterSeq and the default limit of 100', async () => {
    const path = join(tempDir(), 'many.db');
    const store = new SqliteAuditStore(path);
    for (let i = 0; i < 150; i++) store.appendSync(event(i));
    assert.equal((await store.query()).length, 100);
    assert.equal((await store.query())[0]!.seq, 51);
    assert.deepEqual(
      (await store.query({ afterSeq: 147 })).map((r) => r.seq),
      [148, 149, 150],
    );
    let n = 0;
    for await (const r of store.records(20)) assert.equal(r.seq, 20 + n++);
    assert.equal(n, 131, 'records() pages through everything');
    await store.close();
  });

  it('(g) tail prints one line per record, and --json the records', () => {
    const r = cli('tail', '--db', db, '-n', '3');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.equal(
      lines[2],
      `${new Date(T0 + N * 1000).toISOString()} #${N} decision user=bob@https://idp.example client=other-agent tools/call get_customer_5 allow rules=reps-own,r0 why`,
    );
    assert.deepEqual(
      jsonl(cli('tail', '--db', db, '-n', '2', '--json').stdout).map((x) => x.seq),
      [N - 1, N],
    );
  });

  it('tail escapes control characters a client put in a field, so the terminal shows them instead of obeying them', async () => {
    const path = join(tempDir(), 'ansi.db');
    const store = new SqliteAuditStore(path);
    await store.append({ ts: T0, kind: 'decision', target: 'evil\u001b[2J\u202etool name' });
    await store.close();
    const out = cli('tail', '--db', path).stdout;
    assert.ok(!out.includes('\u001b') && !out.includes('\u202e'));
    assert.match(out, / "evil\\u001b\[2J\\u202etool name" /);
  });

  it('tail --follow prints new records as they are appended, until Ctrl-C', async () => {
    const path = join(tempDir(), 'follow.db');
    const store = new SqliteAuditStore(path);
    store.appendSync(event(1));
    const child = spawn(process.execPath, [MAIN, 'audit', 'tail', '--db', path, '--follow'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const until = async (pred: () => boolean) => {
      for (let i = 0; i < 100 && !pred(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(pred(), out);
    };
    try {
      await until(() => out.includes('#1 '));
      store.appendSync(event(2));
      store.appendSync(event(3));
      await until(() => out.includes('#3 '));
      assert.equal(out.trimEnd().split('\n').length, 3);
    } finally {
      child.kill('SIGINT');
      await store.close();
    }
    assert.equal(await exited, 0);
  });

  it('the CLI reads a store named by a config file, and refuses bad usage with exit 2', () => {
    const dir = tempDir();
    copyFileSync(db, join(dir, 'trail.db'));
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        server: { host: '127.0.0.1', port: 0 },
        clientAuth: { methods: ['api-key'] },
        clients: [{ id: 'agent', apiKeys: [{ id: 'k1', hash: `sha256:${'ab'.repeat(32)}` }] }],
        userAuth: { issuers: [{ issuer: 'http://127.0.0.1:9000', algorithms: ['ES256'] }] },
        upstreams: { crm: { transport: 'stdio', command: 'node', args: ['crm.js'] } },
        audit: { sqlitePath: 'trail.db' },
      }),
    );
    const r = cli('verify', '--config', config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ok: 40 records, head 40 /);
    for (const args of [
      ['nonsense'],
      ['verify'],
      ['verify', '--db', db, '--config', config],
      ['tail', '--db', db, '-n', '0'],
      ['verify', '--db', db, '--expect-head', 'abc'],
      ['tail', '--db', db, '50'],
    ]) {
      assert.equal(cli(...args).status, 2, args.join(' '));
    }
  });
});

describe('(i) opening read-only creates nothing', () => {
  it('a missing file is an error and is not created', () => {
    const dir = tempDir();
    const path = join(dir, 'nope.db');
    assert.throws(() => new SqliteAuditStore(path, { readonly: true }), /cannot open audit database/);
    const r = cli('verify', '--db', path);
    // Exit 3 (unavailable): a database that cannot be opened is not a usage error.
    assert.equal(r.status, 3);
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(existsSync(path), false);
  });

  it('a database without audit records gets no tables, and its file is unchanged', () => {
    const path = join(tempDir(), 'other.db');
    sql(path, (d) => d.exec('CREATE TABLE unrelated (x)'));
    const before = readFileSync(path);
    assert.throws(() => new SqliteAuditStore(path, { readonly: true }), /holds no audit records/);
    // Exit 3 (unavailable): the file opens, but it is no audit store.
    assert.equal(cli('tail', '--db', path).status, 3);
    assert.deepEqual(readFileSync(path), before);
    sql(path, (d) =>
      assert.deepEqual(d.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all(), [{ name: 'unrelated' }]),
    );
  });

  it('reading a store leaves its records and file content as they were', async () => {
    const { db } = seeded(5);
    const before = readFileSync(db);
    const store = new SqliteAuditStore(db, { readonly: true });
    assert.equal((await store.query()).length, 5);
    assert.throws(() => store.appendSync(event(9)), /read-only/);
    await store.close();
    assert.deepEqual(readFileSync(db), before);
  });
});

describe('(h) ArgumentRedactor', () => {
  const KEY = Buffer.alloc(32, 7);
  const redactor = new ArgumentRedactor(
    [
      { tools: ['get_customer', 'update_*'], args: ['customer_id', 'filter', 'password', 'note'] },
      { upstreams: ['files'], args: ['path'] },
    ],
    KEY,
  );
  const shown = (upstream: string, tool: string, args: Record<string, unknown>) =>
    JSON.parse(redactor.summarize(upstream, tool, args).args!) as Record<string, unknown>;

  it('keeps the values a keep rule names for that upstream and tool, and redacts every other value by type', () => {
    assert.deepEqual(
      shown('crm', 'get_customer', {
        customer_id: 'c-100',
        notes: 'private words',
        count: 3,
        flag: true,
        list: [1, 2],
        obj: { a: 1 },
        nothing: null,
      }),
      {
        customer_id: 'c-100',
        notes: '[redacted string 13]',
        count: '[redacted number]',
        flag: '[redacted boolean]',
        list: '[redacted array 2]',
        obj: '[redacted object]',
        nothing: '[redacted null]',
      },
    );
    assert.deepEqual(
      shown('crm', 'update_customer', { customer_id: 'c-101' }),
      { customer_id: 'c-101' },
      'tool globs match',
    );
    assert.deepEqual(
      shown('crm', 'delete_customer', { customer_id: 'c-101' }),
      { customer_id: '[redacted string 5]' },
      'another tool: redacted',
    );
    assert.deepEqual(shown('files', 'read_file', { path: '/srv/a.txt' }), { path: '/srv/a.txt' });
    assert.deepEqual(
      shown('crm', 'read_file', { path: '/srv/a.txt' }),
      { path: '[redacted string 10]' },
      'another upstream: redacted',
    );
    assert.deepEqual(redactor.summarize('crm', 'get_customer', undefined), {});
  });

  it('never keeps a secret-named argument or a secret-looking value, even when a rule names it', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
    const secrets = [
      jwt,
      `Bearer ${jwt}`,
      'Bearer abc.def-ghi_jkl',
      '-----BEGIN PRIVATE KEY-----\nMIIEv...\n-----END PRIVATE KEY-----',
      'bhk_Q2hhbmdlTWVQbGVhc2VJbXBvcnRhbnRLZXlWYWx1ZQ',
      'AKIAIOSFODNN7EXAMPLE',
      'ghp_1234567890abcdefABCDEF1234567890ab',
      'my key is 9fJk2LmQ8rTz4XwV7bNc1HsY6pDg3KeA0uRi5Wo and more',
    ];
    for (const s of secrets)
      assert.deepEqual(shown('crm', 'get_customer', { note: s }), { note: '[redacted secret]' }, s);
    const out = shown('crm', 'get_customer', {
      password: 'hunter2',
      Api_Key: 'x',
      'X-Session-Id': 'y',
      authorization: 'z',
      customer_id: 'c-1',
      filter: { owner: 'alice', token: 'abc', nested: [{ cookie: 'c' }, jwt, 'plain'] },
    });
    assert.deepEqual(out, {
      password: '[redacted secret]',
      Api_Key: '[redacted secret]',
      'X-Session-Id': '[redacted secret]',
      authorization: '[redacted secret]',
      customer_id: 'c-1',
      filter: {
        owner: 'alice',
        token: '[redacted secret]',
        nested: [{ cookie: '[redacted secret]' }, '[redacted secret]', 'plain'],
      },
    });
    // Ordinary ids, words and UUIDs are not mistaken for secrets.
    for (const v of [
      'c-100',
      '123e4567-e89b-12d3-a456-426614174000',
      'the quick brown fox jumps over the lazy dog',
      'get_customer_by_identifier_and_owner_name',
    ])
      assert.deepEqual(shown('crm', 'get_customer', { note: v }), { note: v }, v);
  });

  it('the digest covers every value, ignores key order, and depends on the key', () => {
    const d = (args: Record<string, unknown>, r = redactor) => r.summarize('crm', 'x', args).argsDigest!;
    const a = { customer_id: 'c-1', filter: { b: 2, a: [1, { y: 1, x: 2 }] } };
    const reordered = { filter: { a: [1, { x: 2, y: 1 }], b: 2 }, customer_id: 'c-1' };
    assert.match(d(a), /^[0-9a-f]{64}$/);
    assert.equal(d(a), d(reordered));
    assert.notEqual(d(a), d({ ...a, customer_id: 'c-2' }), 'a redacted value still changes the digest');
    assert.notEqual(d({ password: 'one' }), d({ password: 'two' }));
    assert.notEqual(d(a), d(a, new ArgumentRedactor([], Buffer.alloc(32, 8))));
    assert.notEqual(d({ a: [1, 2] }), d({ a: [2, 1] }), 'array order counts');
  });

  it('survives hostile input: deep nesting, huge values, __proto__ keys; output stays valid JSON within the cap', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const r = redactor.summarize('crm', 'get_customer', { filter: deep, customer_id: 'x'.repeat(10_000), note: 'n' });
    assert.match(r.argsDigest!, /^[0-9a-f]{64}$/);
    assert.ok(r.args!.length <= ARGS_MAX_CHARS);
    const parsed = JSON.parse(r.args!) as Record<string, unknown>;
    assert.equal(parsed.customer_id, '[truncated 10002 chars]');
    assert.equal(parsed.note, 'n');
    const many = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i]));
    const m = JSON.parse(redactor.summarize('crm', 'x', many).args!) as Record<string, unknown>;
    assert.match(String(m['[truncated]']), /^\d+ of 500 arguments not shown$/);
    const proto = JSON.parse('{"__proto__": {"polluted": 1}, "customer_id": "c-1"}') as Record<string, unknown>;
    const p = JSON.parse(redactor.summarize('crm', 'get_customer', proto).args!) as Record<string, unknown>;
    assert.equal(Object.getOwnPropertyDescriptor(p, '__proto__')?.value, '[redacted object]');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
