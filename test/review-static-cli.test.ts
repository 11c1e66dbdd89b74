import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { EvidencePack } from '../src/review/evidence/schema.js';
import { tempDir } from './helpers/tmp.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function behalf(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Made at run time, so this file is not itself a finding. */
const awsKeyId = () => `AKIA${Array.from(randomBytes(16), (b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[b % 32]).join('')}`;

function packFiles(dir: string): string[] {
  return readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8'));
}

describe('behalf review without a target: --repo and --command through the CLI', () => {
  it('a key in the repo fails BND-10, located by file and line in SARIF, never shown; accepting it by fingerprint passes (positive control)', async () => {
    const repo = tempDir('behalf-review-repo-');
    const key = awsKeyId();
    writeFileSync(join(repo, 'settings.py'), `DEBUG = True\nAWS_ACCESS_KEY_ID = "${key}"\n`);
    writeFileSync(join(repo, 'README.md'), 'nothing here\n');
    const out = tempDir('behalf-review-repo-pack-');
    const run = await behalf(['review', '--repo', repo, '--out', out, '--json', '--quiet']);
    assert.equal(run.code, 1, run.stderr);
    const pack = JSON.parse(run.stdout) as EvidencePack;
    const bnd10 = pack.checks.find((c) => c.id === 'BND-10')!;
    assert.equal(bnd10.status, 'fail');
    const finding = bnd10.evidence.find((e) => e.outcome === 'bad')!;
    assert.equal(finding.location?.file.endsWith('settings.py'), true);
    assert.equal(finding.location?.line, 2);
    assert.match(finding.fingerprint ?? '', /^sha256:[0-9a-f]{16}$/);
    // Checks that need a target say so; nothing else fails.
    for (const c of pack.checks.filter((x) => x.id !== 'BND-10'))
      assert.notEqual(c.status, 'fail', `${c.id}: ${c.finding}`);
    assert.match(pack.checks.find((c) => c.id === 'BND-05')!.reason ?? '', /--target|profile/);
    const sarif = JSON.parse(readFileSync(join(out, 'results.sarif'), 'utf8')) as {
      runs: Array<{
        results: Array<{
          ruleId: string;
          level: string;
          locations?: Array<{
            physicalLocation?: { artifactLocation: { uri: string }; region?: { startLine: number } };
          }>;
        }>;
      }>;
    };
    const r = sarif.runs[0]!.results.find((x) => x.ruleId === 'BND-10')!;
    assert.equal(r.level, 'error');
    assert.deepEqual(
      [r.locations?.[0]?.physicalLocation?.artifactLocation.uri, r.locations?.[0]?.physicalLocation?.region?.startLine],
      ['settings.py', 2],
    );
    for (const text of packFiles(out)) assert.ok(!text.includes(key), 'the key is never written');

    writeFileSync(
      join(repo, '.behalf-review-accept.yaml'),
      `- fingerprint: "${finding.fingerprint}"\n  reason: a revoked test key, kept for the fixture\n`,
    );
    const accepted = await behalf([
      'review',
      '--repo',
      repo,
      '--out',
      tempDir('behalf-review-repo-pack2-'),
      '--json',
      '--quiet',
    ]);
    // Nothing fails now; the checks that need a target are not assessed, so the run is not clean: exit 4, not 0.
    assert.equal(accepted.code, 4, accepted.stderr);
    const item = (JSON.parse(accepted.stdout) as EvidencePack).checks
      .find((c) => c.id === 'BND-10')!
      .evidence.find((e) => e.fingerprint === finding.fingerprint)!;
    assert.equal(item.outcome, 'info');
    assert.equal(item.accepted?.reason, 'a revoked test key, kept for the fixture');
  });

  it("--command: a secret in the environment the child would inherit fails BND-12 by name, and the command's own secret is redacted everywhere", async () => {
    const inherited = `sk-${randomBytes(24).toString('hex')}`;
    const onLine = randomBytes(24).toString('base64url');
    const out = tempDir('behalf-review-cmd-pack-');
    const run = await behalf(
      ['review', '--command', `node server.js --token ${onLine}`, '--out', out, '--json', '--quiet'],
      { ...process.env, OPENAI_API_KEY: inherited },
    );
    assert.equal(run.code, 1, run.stderr);
    const pack = JSON.parse(run.stdout) as EvidencePack;
    const bnd12 = pack.checks.find((c) => c.id === 'BND-12')!;
    assert.equal(bnd12.status, 'fail');
    assert.ok(
      bnd12.evidence.some(
        (e) => e.outcome === 'bad' && /OPENAI_API_KEY/.test(`${e.observed ?? ''} ${e.detail ?? ''} ${e.probe}`),
      ),
    );
    assert.ok(bnd12.evidence.some((e) => e.outcome === 'bad' && /command line/i.test(`${e.probe} ${e.detail ?? ''}`)));
    for (const text of [run.stdout, ...packFiles(out)]) {
      assert.ok(!text.includes(inherited), 'the inherited secret is never written');
      assert.ok(!text.includes(onLine), 'the command-line secret is never written');
    }
    assert.match(pack.target.command ?? '', /node server\.js --token \[redacted:[0-9a-f]{12}\]/);
  });
});
