import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { startQuickstart, type Quickstart } from '../demo/quickstart/run.js';
import { CHECKS } from '../src/review/catalog.js';
import type { EvidencePack } from '../src/review/evidence/schema.js';
import { tempDir } from './helpers/tmp.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function behalf(args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

/** Parts that honestly do not apply to the quickstart, and why (the review must say so itself). */
const HONEST_NA = /act|assertion|loopback/i;

describe('behalf review of the running quickstart: every check passes or is honestly n/a', () => {
  let qs: Quickstart;
  let out: string;
  let run: CliRun;
  let pack: EvidencePack;

  before(async () => {
    qs = await startQuickstart({ ...process.env, BEHALF_STATE_DIR: tempDir('behalf-qs-review-'), BEHALF_PORT: '' });
    out = tempDir('behalf-qs-pack-');
    run = await behalf([
      'review',
      '--target',
      qs.file.gateway,
      '--profile',
      qs.file.review.profile,
      '--config',
      qs.file.review.config,
      '--out',
      out,
    ]);
    pack = JSON.parse(readFileSync(join(out, 'evidence.json'), 'utf8')) as EvidencePack;
  });
  after(async () => qs?.close());

  it('exits 0, shows progress and a summary table with every check', () => {
    assert.equal(run.code, 0, run.stderr);
    for (const c of CHECKS) {
      assert.match(run.stderr, new RegExp(`${c.id} ${c.title}`), 'progress names each check as it starts');
      assert.match(run.stdout, new RegExp(`^${c.id}\\s+${c.title}\\s+(pass|n/a)\\s`, 'm'));
    }
    assert.match(run.stdout, /requests in [\d.]+ s; evidence pack:/);
  });

  it('passes every check, each on evidence; n/a only for the parts that do not apply, with the reason', () => {
    for (const c of pack.checks) {
      assert.equal(
        c.status,
        'pass',
        `${c.id}: ${c.status} — ${c.finding} ${c.reason ?? ''} ${JSON.stringify(c.evidence.filter((e) => e.outcome !== 'ok' && e.outcome !== 'info'))}`,
      );
      assert.ok(
        c.evidence.some((e) => e.outcome === 'ok'),
        `${c.id} rests on at least one observation`,
      );
      for (const e of c.evidence.filter((x) => x.outcome === 'n/a'))
        assert.match(`${e.probe} ${e.detail ?? ''}`, HONEST_NA, `${c.id} n/a part: ${e.probe}`);
    }
    // Claim attacks were signed with the dev IdP's own key: a refusal proves the claim is checked, not only the signature.
    const bnd04 = pack.checks.find((c) => c.id === 'BND-04')!;
    assert.ok(!bnd04.evidence.some((e) => /reviewer key/.test(e.detail ?? '')), 'claim attacks are validly signed');
    assert.ok(bnd04.evidence.filter((e) => e.outcome === 'ok').length >= 9);
    // The profile's revoke command (behalf revoke through the admin endpoint) cut carol off: session, stream and token.
    const bnd08 = pack.checks.find((c) => c.id === 'BND-08')!;
    assert.ok(
      bnd08.evidence.some((e) => e.outcome === 'ok' && /revocation ends/.test(e.probe)),
      'revocation probed',
    );
  });

  it('fingerprints the target: server, protocol version, tool list per identity, config and keys', () => {
    assert.ok(pack.fingerprint.serverInfo?.name);
    assert.ok(pack.fingerprint.protocolVersion);
    assert.match(pack.fingerprint.toolListHash ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.match(pack.fingerprint.configHash ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.match(pack.fingerprint.keysHash ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.ok(pack.fingerprint.toolsByIdentity.alice?.includes('get_customer'));
    assert.ok(pack.review.requests <= pack.review.maxRequests);
  });

  it('holds no credential the review used, in any file', async () => {
    const secrets = JSON.parse(readFileSync(join(qs.stateDir, 'dev-secrets.json'), 'utf8')) as {
      agent: { apiKey: string; revokedApiKey: string; clientSecret: string };
      passwords: Record<string, string>;
    };
    const tokens: string[] = [
      secrets.agent.apiKey,
      secrets.agent.revokedApiKey,
      secrets.agent.clientSecret,
      ...Object.values(secrets.passwords),
    ];
    for (const user of ['alice', 'bob']) {
      const t = await behalf(['token', '--state-dir', qs.stateDir, '--user', user]);
      tokens.push(
        (JSON.parse(t.stdout) as { headers: { authorization: string } }).headers.authorization.replace(/^Bearer /, ''),
      );
    }
    const files = readdirSync(out);
    assert.deepEqual(files.sort(), [
      'evidence.json',
      'junit.xml',
      'report.html',
      'report.md',
      'results.sarif',
      'transcripts.jsonl',
    ]);
    for (const f of files) {
      const text = readFileSync(join(out, f), 'utf8');
      for (const t of tokens) assert.ok(!text.includes(t), `${f} holds a credential`);
      assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\./, `${f} holds a JWT`);
      assert.doesNotMatch(text, /bhk_[A-Za-z0-9_-]{16,}/, `${f} holds an API key`);
    }
  });

  it('report.html opens in Chromium and shows all twelve checks with their status', async () => {
    const browser = await chromium.launch({
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
    try {
      const page = await browser.newPage();
      await page.goto(pathToFileURL(join(out, 'report.html')).href);
      for (const c of CHECKS) {
        const section = page.locator(`section#${c.id}`);
        assert.ok(await section.isVisible(), `${c.id} visible`);
        assert.equal(await section.getAttribute('data-status'), 'pass');
        assert.match(await section.innerText(), new RegExp(c.title));
      }
    } finally {
      await browser.close();
    }
  });

  it('review diff: the same deployment reviewed again is not due for re-assessment; a changed config is', async () => {
    const again = tempDir('behalf-qs-pack2-');
    const second = await behalf([
      'review',
      '--target',
      qs.file.gateway,
      '--profile',
      qs.file.review.profile,
      '--config',
      qs.file.review.config,
      '--out',
      again,
      '--only',
      'BND-01',
      '--quiet',
    ]);
    assert.equal(second.code, 0, second.stderr);
    const same = await behalf(['review', 'diff', out, again, '--json']);
    const d = JSON.parse(same.stdout) as {
      reassessmentDue: boolean;
      reasons: string[];
      statusChanges: Array<{ id: string; from: string; to: string }>;
    };
    assert.equal(d.reassessmentDue, false, d.reasons.join('; '));
    assert.equal(same.code, 0);
    // Only BND-01 ran: the others moved from pass to not-assessed, and diff says so without calling the deployment changed.
    assert.ok(d.statusChanges.some((s) => s.id === 'BND-05' && s.from === 'pass' && s.to === 'not-assessed'));
    const noConfig = tempDir('behalf-qs-pack3-');
    const third = await behalf([
      'review',
      '--target',
      qs.file.gateway,
      '--profile',
      qs.file.review.profile,
      '--out',
      noConfig,
      '--only',
      'BND-01',
      '--quiet',
    ]);
    assert.equal(third.code, 0, third.stderr);
    const changed = await behalf(['review', 'diff', out, noConfig]);
    assert.equal(changed.code, 1);
    assert.match(changed.stdout, /config/i);
  });

  it('exit code 2 for usage errors and for an unreachable target, before any check runs', async () => {
    const usage = await behalf(['review', '--target', qs.file.gateway]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--out/);
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dead = await behalf(['review', '--target', `http://127.0.0.1:${port}/mcp`, '--out', tempDir('behalf-dead-')]);
    assert.equal(dead.code, 2);
    assert.match(dead.stderr, /unreachable/);
  });
});
