import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import AjvDraft04Module from 'ajv-draft-04';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHECKLIST, CHECKS } from '../src/review/catalog.js';
import { diffPacks, formatDiff, PackReadError, readPack } from '../src/review/diff.js';
import { EVIDENCE_SCHEMA_ID, EVIDENCE_SCHEMA_VERSION, type EvidencePack } from '../src/review/evidence/schema.js';
import { InvalidPackError, PACK_FILES, SecretInPackError, writePack } from '../src/review/evidence/write-pack.js';
import { Redactor, secretMark } from '../src/review/redactor.js';
import type { ReviewRun } from '../src/review/run.js';
import type { Exchange } from '../src/review/transcript.js';
import type { CheckResult, CheckStatus, EvidenceItem } from '../src/review/types.js';
import { tempDir } from './helpers/tmp.js';

/**
 * The evidence pack as a reviewer and a CI system receive it: every file is
 * written from one synthetic review holding all five statuses, file-located
 * findings, redacted transcripts and a hostile server string, then checked
 * with the consumers' own validators (ajv against the shipped schema and the
 * official SARIF 2.1.0 schema, a real Chromium for the HTML page and the
 * JUnit XML).
 */

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
// ajv-draft-04 is CommonJS with `module.exports = Ajv`: the default import is the class itself.
const AjvDraft04 = AjvDraft04Module as unknown as typeof AjvDraft04Module.default;

/** The browser globals the page callbacks use (this project compiles without the DOM lib); types only, erased before the callbacks are sent to the page. */
interface PageGlobals {
  getComputedStyle(el: unknown): { backgroundColor: string; breakBefore: string };
  DOMParser: new () => { parseFromString(text: string, type: string): XmlDoc };
  __pwned?: number;
}
interface XmlEl {
  getAttribute(name: string): string | null;
  textContent: string | null;
}
interface XmlDoc {
  querySelector(sel: string): XmlEl | null;
  querySelectorAll(sel: string): { length: number };
}

const CLIENT_KEY = 'sk_live_client_key_0123456789abcdef';
const ALICE_TOKEN = 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsImF1ZCI6Im1jcCJ9.c2lnbmF0dXJlLWFsaWNl';
const QUOTED = 'pa"ss\\word-with-quote';
const SESSION = 'session-0f4c2a9e-77d1-4b7e';
/** Shorter than the guard's minimum and present in every file: must not trip it. */
const SHORT = 'BND-01';
const XSS = '<script>window.__pwned = 1</script><img src="http://evil.invalid/x.png">';
const TARGET = 'http://127.0.0.1:45678/mcp';
const REPO = '/srv/reviewed-repo';

const item = (outcome: EvidenceItem['outcome'], probe: string, extra: Partial<EvidenceItem> = {}): EvidenceItem => ({
  outcome,
  probe,
  ...extra,
});

function check(
  id: string,
  status: CheckStatus,
  finding: string,
  evidence: EvidenceItem[],
  extra: Partial<CheckResult> = {},
): CheckResult {
  const spec = CHECKS.find((c) => c.id === id)!;
  return { ...spec, status, finding, remediation: `Fix ${spec.title}.`, evidence, durationMs: 120, ...extra };
}

function exchanges(): Exchange[] {
  const r = new Redactor();
  for (const s of [CLIENT_KEY, `Bearer ${ALICE_TOKEN}`, SESSION, QUOTED]) r.add(s);
  const at = '2025-06-01T10:00:01.000Z';
  const init = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}';
  return [
    {
      n: 1,
      check: 'BND-01',
      label: 'unauthenticated initialize',
      at,
      ms: 4,
      request: { method: 'POST', url: TARGET, headers: r.headers({ 'content-type': 'application/json' }), body: init },
      response: {
        status: 401,
        headers: r.headers({
          'www-authenticate':
            'Bearer resource_metadata="http://127.0.0.1:45678/.well-known/oauth-protected-resource/mcp"',
        }),
        body: '',
      },
    },
    {
      n: 2,
      check: 'BND-01',
      label: 'unauthenticated tools/list',
      at,
      ms: 3,
      request: { method: 'POST', url: TARGET, headers: {}, body: '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' },
      response: { status: 401, headers: {} },
    },
    {
      n: 3,
      check: 'BND-01',
      label: 'GET stream',
      at,
      ms: 3,
      request: { method: 'GET', url: TARGET, headers: { accept: 'text/event-stream' } },
      response: { status: 401, headers: {} },
    },
    {
      n: 4,
      check: 'BND-01',
      label: 'DELETE',
      at,
      ms: 2,
      request: { method: 'DELETE', url: TARGET, headers: {} },
      response: { status: 405, headers: {} },
    },
    {
      n: 5,
      check: 'BND-03',
      label: 'client-only initialize',
      at,
      ms: 9,
      request: { method: 'POST', url: TARGET, headers: r.headers({ 'X-Api-Key': CLIENT_KEY }), body: init },
      response: {
        status: 200,
        headers: r.headers({ 'Mcp-Session-Id': SESSION }),
        body: r.text(`{"echo":"${QUOTED}"}`),
      },
    },
    {
      n: 6,
      check: 'BND-04',
      label: 'alg none',
      at,
      ms: 5,
      request: {
        method: 'POST',
        url: `${TARGET}?access_token=%5Bredacted%5D`,
        headers: r.headers({ Authorization: `Bearer ${ALICE_TOKEN}`, 'x-api-key': CLIENT_KEY }),
        body: init,
      },
      response: { status: 200, headers: {}, body: r.text(`token was ${ALICE_TOKEN}`) },
    },
    {
      n: 7,
      check: 'BND-04',
      label: 'expired',
      at,
      request: { method: 'POST', url: TARGET, headers: {} },
      error: 'timed out',
    },
  ];
}

function syntheticPack(): EvidencePack {
  const checks: CheckResult[] = [
    check('BND-01', 'pass', 'every unauthenticated probe was refused', [
      item('ok', 'unauthenticated POST initialize', { expected: '401/403', observed: '401', exchanges: [1] }),
      item('ok', 'unauthenticated tools/list, GET stream', { expected: '401/403', observed: '401', exchanges: [2, 3] }),
      item('ok', 'unauthenticated DELETE', {
        expected: '401/403/405',
        observed: '405',
        detail: 'nothing served',
        exchanges: [4],
      }),
    ]),
    check('BND-02', 'partial', 'wrong keys refused; no revoked credential to try', [
      item('ok', 'garbage bearer', { expected: '401', observed: '401' }),
      item('not-assessed', 'revoked credential', { detail: 'add profile.revoked' }),
    ]),
    check('BND-03', 'fail', 'a client without a user identity was served', [
      item('bad', 'client-only initialize', { expected: '401/403', observed: '200 with a session', exchanges: [5] }),
    ]),
    check('BND-04', 'fail', `server accepted a forged token and named its tool ${XSS}`, [
      item('bad', 'alg none token on initialize', {
        expected: '401',
        observed: `200 ${XSS}`,
        detail: 'tool "a&b" <b>bold</b>',
        exchanges: [6],
      }),
      item('ok', 'expired token', { expected: '401', observed: '401', exchanges: [7] }),
    ]),
    check('BND-05', 'not-assessed', 'no cross-user call to try', [], {
      reason: 'profile.crossUser is empty: add an entry {as, owner, tool, args}',
    }),
    check(
      'BND-06',
      'n/a',
      'only one user identity lists tools',
      [item('n/a', 'listing comparison', { detail: 'one user' })],
      { reason: 'a single user identity: nothing to compare' },
    ),
    check('BND-07', 'pass', 'sessions are bound to their user', [
      item('ok', 'session replay as bob', { expected: '401/403/404', observed: '404' }),
    ]),
    check('BND-08', 'n/a', 'no standing stream offered', [item('n/a', 'GET stream', { observed: '405' })], {
      reason: 'the server offers no GET stream (405)',
    }),
    check('BND-09', 'pass', 'downstream saw a distinct user per identity', [
      item('ok', 'observer: distinct sub per user'),
    ]),
    check('BND-10', 'fail', 'two literal secrets in the repository', [
      item('bad', 'known key format in an assignment', {
        location: { file: 'src/config.ts', line: 12 },
        fingerprint: 'sha256:1111111111111111111111111111111111111111111111111111111111111111',
        detail: 'AWS access key shape',
      }),
      item('bad', 'high-entropy string in an assignment', {
        location: { file: `${REPO}/deploy/env file #2.sh`, line: 3 },
        fingerprint: 'sha256:2222222222222222222222222222222222222222222222222222222222222222',
      }),
      item('info', 'test fixture key', {
        location: { file: 'test/fixture.ts', line: 7 },
        fingerprint: 'sha256:3333333333333333333333333333333333333333333333333333333333333333',
        accepted: { reason: 'a test fixture, never deployed' },
      }),
      item('ok', 'secrets by reference', {
        location: { file: `${REPO}/gateway.yaml`, path: 'upstreams.crm.env.API_TOKEN' },
      }),
      item('bad', 'key past its rotation age', {
        location: { file: '/etc/behalf/keys.json', path: 'keys.k1' },
        detail: 'created 400 days ago',
      }),
    ]),
    check('BND-11', 'pass', 'RFC 9728 metadata served and challenges well formed', [
      item('ok', 'protected resource metadata', { observed: '200' }),
    ]),
    check('BND-12', 'partial', 'Origin checked; stdio inheritance not assessed', [
      item('ok', 'Origin http://evil.invalid', { expected: '403', observed: '403' }),
      item('not-assessed', 'stdio child environment', { detail: 'line one\nline "two" & \'three\' \u0007 bell' }),
    ]),
  ];
  const summary = Object.fromEntries(
    (['pass', 'fail', 'partial', 'not-assessed', 'n/a'] as CheckStatus[]).map((s) => [
      s,
      checks.filter((c) => c.status === s).length,
    ]),
  ) as Record<CheckStatus, number>;
  return {
    $schema: EVIDENCE_SCHEMA_ID,
    schemaVersion: EVIDENCE_SCHEMA_VERSION,
    tool: { name: 'behalf', version: '0.1.0' },
    review: {
      startedAt: '2025-06-01T10:00:00.000Z',
      finishedAt: '2025-06-01T10:00:42.500Z',
      durationMs: 42500,
      requests: 7,
      maxRequests: 400,
      timeLimitSeconds: 300,
      safeToCall: ['list_customers', 'get_customer'],
      identities: ['alice', 'bob', 'client-only'],
    },
    target: { url: TARGET, transport: 'streamable', configFile: `${REPO}/gateway.yaml`, repoDir: REPO },
    fingerprint: {
      serverInfo: { name: 'demo-crm', version: '1.0.0' },
      protocolVersion: '2025-06-18',
      toolListHash: 'sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
      toolsByIdentity: { alice: ['get_customer', 'list_customers'], bob: ['get_customer', 'list_customers'] },
      configHash: 'sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
      keysHash: 'sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc',
    },
    summary,
    checks,
    transcripts: { file: 'transcripts.jsonl', exchanges: 7 },
  };
}

function syntheticRun(): ReviewRun {
  return {
    pack: syntheticPack(),
    exchanges: exchanges(),
    secrets: [CLIENT_KEY, `Bearer ${ALICE_TOKEN}`, ALICE_TOKEN, SESSION, QUOTED, SHORT],
  };
}

const clone = <T>(v: T): T => structuredClone(v);
const read = (dir: string, f: string) => readFileSync(join(dir, f), 'utf8');
const statusOfCheck = (pack: EvidencePack, id: string) => pack.checks.find((c) => c.id === id)!.status;

describe('evidence pack: the files', () => {
  let dir: string;
  let written: string[];
  const run = syntheticRun();

  before(async () => {
    dir = join(tempDir('behalf-pack-'), 'nested', 'pack');
    written = await writePack(dir, run);
  });

  it('writes the six files into a directory it creates', () => {
    assert.deepEqual(
      written.map((p) => p.slice(dir.length + 1)),
      [...PACK_FILES],
    );
    assert.deepEqual(readdirSync(dir).sort(), [...PACK_FILES].sort());
  });

  it('no file carries a credential the review used, and the transcript headers are redacted', () => {
    for (const f of PACK_FILES) {
      const text = read(dir, f);
      for (const s of [CLIENT_KEY, ALICE_TOKEN, SESSION, QUOTED, JSON.stringify(QUOTED).slice(1, -1)])
        assert.ok(!text.includes(s), `${f} holds a secret`);
    }
    const lines = read(dir, 'transcripts.jsonl')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Exchange);
    assert.equal(lines.length, run.exchanges.length);
    assert.deepEqual(
      lines.map((e) => e.n),
      [1, 2, 3, 4, 5, 6, 7],
    );
    assert.equal(lines[5]!.request.headers.authorization, `Bearer ${secretMark(ALICE_TOKEN)}`);
    assert.equal(lines[4]!.request.headers['x-api-key'], secretMark(CLIENT_KEY));
    assert.equal(lines[4]!.response!.headers['mcp-session-id'], secretMark(SESSION));
    assert.match(lines[5]!.request.url, /access_token=%5Bredacted%5D/);
  });

  it('evidence.json validates against the shipped schema/evidence.v1.schema.json (ajv, draft 2020-12)', () => {
    const schema = JSON.parse(readFileSync(root('schema/evidence.v1.schema.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    const validate = new Ajv2020({ allErrors: true }).compile(schema);
    const written = JSON.parse(read(dir, 'evidence.json')) as EvidencePack;
    assert.ok(validate(written), JSON.stringify(validate.errors));
    assert.deepEqual(written, JSON.parse(JSON.stringify(run.pack)));
    // The validator is live: the same pack with an unknown status is rejected.
    const broken = clone(written) as unknown as { checks: Array<{ status: string }> };
    broken.checks[0]!.status = 'maybe';
    assert.equal(validate(broken), false);
  });

  it('results.sarif validates against the official SARIF 2.1.0 schema and maps each status', () => {
    const schema = JSON.parse(
      readFileSync(root('node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json'), 'utf8'),
    ) as Record<string, unknown>;
    // unicodeRegExp off: one pattern in the official schema is not a valid Unicode-mode regular expression.
    const ajv = new AjvDraft04({ allErrors: true, strict: false, unicodeRegExp: false });
    // The schema's three formats, checked for real rather than ignored (ajv-formats is not a dependency).
    ajv.addFormat(
      'date-time',
      (s: string) =>
        /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s)),
    );
    ajv.addFormat('uri', (s: string) => URL.canParse(s));
    ajv.addFormat('uri-reference', (s: string) => URL.canParse(s, 'http://base.invalid/') && !/\s/.test(s));
    const validate = ajv.compile(schema);
    const sarif = JSON.parse(read(dir, 'results.sarif')) as {
      version: string;
      runs: Array<{
        tool: { driver: { name: string; version: string; rules: Array<Record<string, { text: string } | string>> } };
        results: Array<Record<string, unknown>>;
      }>;
    };
    assert.ok(validate(sarif), JSON.stringify(validate.errors, null, 1));
    assert.equal(validate({ ...sarif, version: '2.0.0' }), false, 'the validator rejects a wrong version');

    assert.equal(sarif.runs.length, 1);
    const { driver } = sarif.runs[0]!.tool;
    assert.equal(driver.name, 'behalf review');
    assert.equal(driver.version, '0.1.0');
    assert.deepEqual(
      driver.rules.map((r) => r.id),
      CHECKS.map((c) => c.id),
    );
    assert.deepEqual(
      driver.rules.map((r) => r.name),
      CHECKS.map((c) => c.title),
    );
    assert.deepEqual(
      driver.rules.map((r) => (r.shortDescription as { text: string }).text),
      CHECKS.map((c) => c.question),
    );
    assert.equal((driver.rules[0]!.help as { text: string }).text, 'Fix client-auth-required.');

    const results = sarif.runs[0]!.results;
    assert.equal(results.length, 12);
    const r = (id: string) => results.find((x) => x.ruleId === id)!;
    assert.deepEqual([r('BND-03').kind, r('BND-03').level], ['fail', 'error']);
    assert.deepEqual([r('BND-02').kind, r('BND-02').level], ['fail', 'warning']);
    assert.deepEqual([r('BND-01').kind, r('BND-01').level], ['pass', 'none']);
    assert.deepEqual([r('BND-05').kind, r('BND-05').level], ['review', 'none']);
    assert.match((r('BND-05').message as { text: string }).text, /^Not assessed: profile\.crossUser is empty/);
    assert.deepEqual([r('BND-06').kind, r('BND-06').level], ['notApplicable', 'none']);

    // Repo-scan findings point at files, relative to the repository; the accepted and ok items are not pointed at.
    const locs = r('BND-10').locations as Array<{
      physicalLocation: { artifactLocation: { uri: string }; region?: { startLine: number } };
    }>;
    assert.deepEqual(
      locs.map((l) => [l.physicalLocation.artifactLocation.uri, l.physicalLocation.region?.startLine]),
      [
        ['src/config.ts', 12],
        ['deploy/env%20file%20%232.sh', 3],
        ['file:///etc/behalf/keys.json', undefined],
      ],
    );
    assert.deepEqual((locs[2] as { logicalLocations?: unknown }).logicalLocations, [
      { fullyQualifiedName: 'keys.k1', kind: 'member' },
    ]);
    assert.match(
      (r('BND-10').partialFingerprints as Record<string, string>)['behalfFindings/v1']!,
      /^sha256:[0-9a-f]{64}$/,
    );
    // Black-box results sit on the target.
    assert.deepEqual(r('BND-01').locations, [{ logicalLocations: [{ fullyQualifiedName: TARGET, kind: 'resource' }] }]);
    assert.equal(r('BND-01').partialFingerprints, undefined);
  });

  it('junit.xml: one testcase per check, counts that match, values escaped', () => {
    const xml = read(dir, 'junit.xml');
    const attrs = (tag: string) => {
      const m = new RegExp(`<${tag} ([^>]*)>`).exec(xml)!;
      return Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    };
    const suite = attrs('testsuite');
    assert.equal(suite.name, 'behalf review');
    assert.deepEqual([suite.tests, suite.failures, suite.errors, suite.skipped], ['12', '5', '0', '3']);
    assert.deepEqual(attrs('testsuites').failures, '5');
    assert.equal([...xml.matchAll(/<testcase /g)].length, 12);
    assert.equal([...xml.matchAll(/<failure /g)].length, 5);
    assert.equal([...xml.matchAll(/<failure [^>]*type="partial"/g)].length, 2);
    assert.equal([...xml.matchAll(/<skipped /g)].length, 3);
    assert.match(
      xml,
      /<testcase classname="BND-05" name="per-user-authorization" time="0.120">\s*<skipped message="not assessed: profile.crossUser is empty/,
    );
    assert.ok(!xml.includes('<script>'), 'a server string must not become markup');
    assert.ok(xml.includes('&lt;script&gt;window.__pwned = 1&lt;/script&gt;'));
    assert.ok(!xml.includes('\u0007'), 'a control character XML cannot carry is dropped');
  });

  it('report.md: cover facts, the five questions, a summary table and every check with its evidence', () => {
    const md = read(dir, 'report.md');
    assert.match(md, /^# behalf review — evidence report\n/);
    assert.match(md, /\| Target \| http:\/\/127\.0\.0\.1:45678\/mcp \(Streamable HTTP\) \|/);
    assert.match(md, /\| Date \| 2025-06-01T10:00:00\.000Z – 2025-06-01T10:00:42\.500Z \|/);
    assert.match(md, /\| Duration \| 42\.5 s \|/);
    assert.match(md, /\| Requests used \| 7 of 400 \|/);
    assert.match(md, /- \*\*Tool list hash:\*\* sha256:a{64}/);
    assert.match(md, /- \*\*Tools listed to alice:\*\* get_customer, list_customers/);
    const questions = md.indexOf('## The five questions');
    const summary = md.indexOf('## Summary');
    for (const [n, q] of Object.entries(CHECKLIST))
      assert.ok(md.indexOf(`### ${n}. ${q}`) > questions, `question ${n}`);
    // Each check sits under its question: BND-05 and BND-06 between question 3 and 4.
    const q3 = md.indexOf('### 3.');
    const q4 = md.indexOf('### 4.');
    assert.ok(md.indexOf('BND-05 per-user-authorization:') > q3 && md.indexOf('BND-06 list-call-consistency:') < q4);
    for (const c of CHECKS) {
      assert.match(
        md.slice(summary),
        new RegExp(`\\| ${c.id} \\| ${c.title} \\| (PASS|FAIL|PARTIAL|NOT ASSESSED|N/A) \\|`),
      );
      assert.match(md, new RegExp(`### ${c.id} ${c.title} — `));
    }
    assert.match(md, /### BND-05 per-user-authorization — NOT ASSESSED\n\n- \*\*Question:\*\* user A is denied/);
    assert.match(md, /- \*\*Reason:\*\* profile.crossUser is empty/);
    assert.match(md, /\| ok \| unauthenticated tools\/list, GET stream \| 401\/403 \| 401 \| {2}\| #2–3 \|/);
    assert.match(md, /at src\/config.ts:12; fingerprint sha256:1{64}/);
    assert.match(md, /accepted: a test fixture, never deployed/);
    assert.ok(!md.includes('<script>') && md.includes('\\<script\\>'), 'inline HTML from the server is escaped');
  });
});

describe('evidence pack: report.html in Chromium', () => {
  let dir: string;
  let browser: Browser;
  let page: Page;
  const requests: string[] = [];

  before(async () => {
    dir = tempDir('behalf-pack-html-');
    await writePack(dir, syntheticRun());
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage();
    page.on('request', (req) => requests.push(req.url()));
    await page.goto(pathToFileURL(join(dir, 'report.html')).href, { waitUntil: 'load' });
  });

  after(async () => {
    await browser?.close();
  });

  it('shows all twelve check sections with their status, and the cover summary', async () => {
    const pack = syntheticPack();
    for (const c of CHECKS) {
      const section = page.locator(`section#${c.id}`);
      assert.ok(await section.isVisible(), `${c.id} visible`);
      const status = statusOfCheck(pack, c.id);
      assert.equal(await section.getAttribute('data-status'), status);
      const label = {
        pass: 'PASS',
        fail: 'FAIL',
        warn: 'WARN',
        partial: 'PARTIAL',
        'not-assessed': 'NOT ASSESSED',
        'n/a': 'N/A',
      }[status];
      assert.equal((await section.locator('h2 .badge').innerText()).trim(), label);
      assert.ok((await section.innerText()).includes(c.question), `${c.id} shows its question`);
    }
    assert.equal(await page.locator('table.summary tbody tr').count(), 12);
    // A status is told by text as well as colour: the fail badge is not styled like the pass badge.
    const colour = (sel: string) =>
      page
        .locator(sel)
        .first()
        .evaluate((el) => (globalThis as unknown as PageGlobals).getComputedStyle(el).backgroundColor);
    assert.notEqual(await colour('section#BND-03 .badge'), await colour('section#BND-01 .badge'));
    assert.ok((await page.locator('section#BND-10').innerText()).includes('src/config.ts:12'));
  });

  it('renders the hostile server string as text: no script ran, no element was injected, nothing was fetched', async () => {
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).__pwned), undefined);
    assert.equal(await page.locator('script').count(), 0);
    assert.equal(await page.locator('img').count(), 0);
    assert.equal(await page.locator('section#BND-04 b').count(), 0);
    assert.ok((await page.locator('section#BND-04').innerText()).includes('<script>window.__pwned = 1</script>'));
    assert.ok(requests.length >= 1);
    assert.deepEqual(
      requests.filter((u) => !u.startsWith('file://')),
      [],
    );
  });

  it('prints one check per page after the cover', async () => {
    await page.emulateMedia({ media: 'print' });
    const breaks = await page
      .locator('section.check')
      .evaluateAll((els) => els.map((el) => (globalThis as unknown as PageGlobals).getComputedStyle(el).breakBefore));
    assert.deepEqual(breaks, Array(12).fill('page'));
    const pdf = (await page.pdf({ format: 'A4' })).toString('latin1');
    const pages = [...pdf.matchAll(/\/Type\s*\/Page\b(?!s)/g)].length;
    assert.ok(pages >= 13, `cover + 12 checks, got ${pages} pages`);
    await page.emulateMedia({ media: 'screen' });
  });

  it('junit.xml is well-formed XML for a real parser, with the counts it claims', async () => {
    const xml = readFileSync(join(dir, 'junit.xml'), 'utf8');
    const parsed = await page.evaluate((text) => {
      const doc = new (globalThis as unknown as PageGlobals).DOMParser().parseFromString(text, 'application/xml');
      if (doc.querySelector('parsererror')) return { error: doc.querySelector('parsererror')!.textContent };
      const suite = doc.querySelector('testsuite')!;
      return {
        tests: suite.getAttribute('tests'),
        cases: doc.querySelectorAll('testcase').length,
        failures: doc.querySelectorAll('testcase > failure').length,
        skipped: doc.querySelectorAll('testcase > skipped').length,
        bnd04: doc.querySelector('testcase[classname="BND-04"] > failure')!.getAttribute('message'),
        bnd12: doc.querySelector('testcase[classname="BND-12"] > failure')!.textContent,
      };
    }, xml);
    assert.equal((parsed as { error?: string }).error, undefined);
    assert.deepEqual(
      { ...parsed, bnd04: undefined, bnd12: undefined },
      { tests: '12', cases: 12, failures: 5, skipped: 3, bnd04: undefined, bnd12: undefined },
    );
    assert.equal(parsed.bnd04, `server accepted a forged token and named its tool ${XSS}`);
    assert.ok(parsed.bnd12!.includes('line one\nline "two" & \'three\''));
  });
});

describe('evidence pack: the last guard', () => {
  it('refuses to write a pack with a credential in a finding, names the file, not the secret, and writes nothing', async () => {
    const run = syntheticRun();
    run.pack.checks[2]!.finding = `the server accepted ${CLIENT_KEY} without a user`;
    const dir = join(tempDir('behalf-guard-'), 'pack');
    await assert.rejects(writePack(dir, run), (err: unknown) => {
      assert.ok(err instanceof SecretInPackError);
      assert.equal(err.code, 'secret_in_pack');
      assert.ok(!err.message.includes(CLIENT_KEY) && !String(err.stack).includes(CLIENT_KEY));
      assert.ok(err.message.includes(secretMark(CLIENT_KEY)));
      assert.ok(
        err.files.includes('evidence.json') && err.files.includes('report.html') && err.files.includes('junit.xml'),
      );
      return true;
    });
    assert.equal(existsSync(dir), false);
  });

  it('finds a credential in its encoded form (a JSON body inside a JSON transcript line) and leaves an existing folder empty', async () => {
    const run = syntheticRun();
    run.exchanges[4]!.response!.body = `{"echo":${JSON.stringify(QUOTED)}}`;
    const dir = tempDir('behalf-guard-');
    await assert.rejects(
      writePack(dir, run),
      (err: unknown) =>
        err instanceof SecretInPackError && err.files.includes('transcripts.jsonl') && !err.message.includes(QUOTED),
    );
    assert.deepEqual(readdirSync(dir), []);
  });

  it('refuses a pack that does not match its schema, writing nothing', async () => {
    const run = syntheticRun();
    (run.pack.checks[0] as { status: string }).status = 'maybe';
    const dir = join(tempDir('behalf-guard-'), 'pack');
    await assert.rejects(
      writePack(dir, run),
      (err: unknown) => err instanceof InvalidPackError && /checks\.0\.status/.test(err.message),
    );
    assert.equal(existsSync(dir), false);
  });
});

describe('behalf review diff', () => {
  let base: string;
  let pack: EvidencePack;

  before(async () => {
    base = tempDir('behalf-diff-');
    await writePack(join(base, 'old'), syntheticRun());
    pack = await readPack(join(base, 'old'));
  });

  it('reads a pack from its folder or its evidence.json alike', async () => {
    assert.deepEqual(await readPack(join(base, 'old', 'evidence.json')), pack);
    assert.deepEqual(pack, JSON.parse(JSON.stringify(syntheticPack())));
  });

  it('the same pack: no re-assessment, no status change', () => {
    const d = diffPacks(pack, clone(pack));
    assert.deepEqual(d, { reassessmentDue: false, reasons: [], statusChanges: [] });
    assert.equal(
      formatDiff(d),
      'Re-assessment due: no (server, protocol version, tools, config, keys and target unchanged)\nStatus changes: none\n',
    );
  });

  it('changed tools, config, keys and server version: re-assessment due, with the reasons and the tool names per identity', () => {
    const neu = clone(pack);
    neu.fingerprint.serverInfo = { name: 'demo-crm', version: '1.1.0' };
    neu.fingerprint.toolListHash = 'sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd';
    neu.fingerprint.toolsByIdentity = {
      alice: ['delete_customer', 'get_customer', 'list_customers'],
      bob: ['get_customer'],
      carol: ['export_all'],
    };
    neu.fingerprint.configHash = 'sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee';
    neu.fingerprint.keysHash = 'sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff';
    const d = diffPacks(pack, neu);
    assert.equal(d.reassessmentDue, true);
    assert.deepEqual(d.reasons, [
      'server version changed: demo-crm 1.0.0 → 1.1.0',
      'tool list changed (hash sha256:aaaaaaaaaaaa… → sha256:dddddddddddd…)',
      'tools listed to alice changed: added delete_customer',
      'tools listed to bob changed: removed list_customers',
      'identity carol lists tools only in the new pack: export_all',
      'config changed (hash sha256:bbbbbbbbbbbb… → sha256:eeeeeeeeeeee…)',
      'keys changed (hash sha256:cccccccccccc… → sha256:ffffffffffff…)',
    ]);
    assert.deepEqual(d.statusChanges, []);
    assert.match(formatDiff(d), /^Re-assessment due: yes \(7 changes\)\n {2}- server version changed/);
  });

  it('changed target, server name and protocol version are reasons too', () => {
    const neu = clone(pack);
    neu.target.url = 'https://mcp.example.internal/mcp';
    neu.fingerprint.serverInfo = { name: 'other-crm', version: '1.0.0' };
    neu.fingerprint.protocolVersion = '2025-11-25';
    assert.deepEqual(diffPacks(pack, neu).reasons, [
      `target changed: url ${TARGET} → https://mcp.example.internal/mcp`,
      'server name changed: demo-crm → other-crm',
      'protocol version changed: 2025-06-18 → 2025-11-25',
    ]);
  });

  it('a status change is reported even when the fingerprint is unchanged', () => {
    const neu = clone(pack);
    neu.checks[4]!.status = 'fail';
    neu.checks[2]!.status = 'pass';
    const d = diffPacks(pack, neu);
    assert.equal(d.reassessmentDue, false);
    assert.deepEqual(d.statusChanges, [
      { id: 'BND-03', from: 'fail', to: 'pass' },
      { id: 'BND-05', from: 'not-assessed', to: 'fail' },
    ]);
    assert.match(
      formatDiff(d),
      /Status changes:\n {2}- BND-03 user-identity-required: fail → pass\n {2}- BND-05 per-user-authorization: not-assessed → fail\n$/,
    );
  });

  it('readPack names the file when it is missing, not JSON, not a pack, or invalid', async () => {
    const missing = join(base, 'nope');
    await assert.rejects(
      readPack(missing),
      (e: unknown) => e instanceof PackReadError && e.message.startsWith(missing) && /no such file/.test(e.message),
    );
    const empty = join(base, 'empty');
    mkdirSync(empty);
    await assert.rejects(
      readPack(empty),
      (e: unknown) =>
        e instanceof PackReadError && e.message.startsWith(join(empty, 'evidence.json')) && /not found/.test(e.message),
    );
    const notJson = join(base, 'broken.json');
    writeFileSync(notJson, '{"$schema": ');
    await assert.rejects(
      readPack(notJson),
      (e: unknown) => e instanceof PackReadError && e.message.startsWith(`${notJson}: not JSON`),
    );
    const sarif = join(base, 'old', 'results.sarif');
    await assert.rejects(
      readPack(sarif),
      (e: unknown) => e instanceof PackReadError && e.message.startsWith(`${sarif}: not a behalf evidence pack`),
    );
    const newer = join(base, 'newer.json');
    writeFileSync(
      newer,
      JSON.stringify({ ...pack, $schema: 'https://behalf.dev/schema/evidence.v2.schema.json', schemaVersion: 2 }),
    );
    await assert.rejects(
      readPack(newer),
      (e: unknown) => e instanceof PackReadError && /v2 was written by a newer behalf/.test(e.message),
    );
    const invalid = join(base, 'invalid.json');
    const bad = clone(pack) as unknown as { checks: Array<{ status: string }> };
    bad.checks[2]!.status = 'maybe';
    writeFileSync(invalid, JSON.stringify(bad));
    await assert.rejects(
      readPack(invalid),
      (e: unknown) =>
        e instanceof PackReadError && e.message.startsWith(`${invalid}: not a valid evidence pack v1: checks.2.status`),
    );
  });
});
