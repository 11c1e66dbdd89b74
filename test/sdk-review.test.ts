/**
 * `behalf review` proves the SDK examples (examples/sdk-v1, examples/sdk-v2):
 * as shipped, every check it can assess passes; with one protection turned
 * off in the config, the review fails exactly the check about it — no
 * policy (every call allowed): BND-05, alice reads bob's customer; no
 * authentication required: BND-01, a request with no credential is served.
 * On v2 (stateless: no session ids) BND-08 cannot open the session its
 * stream probe needs and says so (not assessed); BND-10 needs --config/--repo.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { EvidencePack } from '../src/review/evidence/schema.js';
import { startReviewEnv, writeReviewProfile, type ReviewEnv } from './helpers/review-servers.js';
import { sdkReviewProfile, startSdkReviewTarget, type Variant } from './helpers/sdk-review.js';
import { tempDir } from './helpers/tmp.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

const MUST_FAIL: Record<Variant, string[]> = {
  'as-shipped': [],
  'policy-off': ['BND-05'],
  'auth-off': ['BND-01'],
};

function review(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'review', ...args],
      { timeout: 120_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

describe('behalf review against the SDK examples', () => {
  let env: ReviewEnv;
  before(async () => {
    env = await startReviewEnv();
  });
  after(async () => env?.close());

  // Each example as shipped, and one variant of each with a protection off (a different one per SDK, to keep the test short).
  const RUNS: Array<[version: 'v1' | 'v2', variants: Variant[]]> = [
    ['v1', ['as-shipped', 'policy-off']],
    ['v2', ['as-shipped', 'auth-off']],
  ];
  for (const [version, variants] of RUNS) {
    for (const variant of variants) {
      const expected = MUST_FAIL[variant];
      it(`${version}, ${variant}: ${expected.length ? `fails ${expected.join(', ')} and nothing else` : 'passes every check it can assess'}`, async () => {
        const server = await startSdkReviewTarget(version, env, variant);
        try {
          const profile = writeReviewProfile(await sdkReviewProfile(server.url, env));
          const run = await review([
            '--target',
            server.url,
            '--profile',
            profile,
            '--out',
            tempDir('behalf-sdk-pack-'),
            '--json',
            '--quiet',
          ]);
          const pack = JSON.parse(run.stdout) as EvidencePack;
          const failed = pack.checks.filter((c) => c.status === 'fail');
          assert.deepEqual(
            failed.map((c) => c.id),
            expected,
            JSON.stringify(failed.map((c) => [c.id, c.finding])),
          );
          // Exit codes (behalf --help): 1 a failure at or above --fail-on; 0 every check passed or n/a; 4 otherwise
          // (here BND-10, not assessed without --config, and a stateless server's BND-08).
          const allHeld = pack.checks.every((c) => c.status === 'pass' || c.status === 'n/a');
          assert.equal(run.code, expected.length ? 1 : allHeld ? 0 : 4, run.stderr);
          // As shipped, everything else is assessed and holds (a variant may leave knock-on checks partial).
          for (const c of variant === 'as-shipped' ? pack.checks : []) {
            if (c.id === 'BND-10') continue;
            if (version === 'v2' && c.id === 'BND-08' && c.status === 'not-assessed') {
              assert.ok(
                c.evidence.some((e) => /Mcp-Session-Id/.test(`${e.expected ?? ''} ${e.detail ?? ''}`)),
                c.finding,
              );
              continue;
            }
            assert.ok(
              c.status === 'pass' || c.status === 'n/a',
              `${c.id} is ${c.status}: ${c.finding} ${c.reason ?? ''} ${JSON.stringify(c.evidence.filter((e) => e.outcome !== 'ok'))}`,
            );
          }
        } finally {
          await server.close();
        }
      });
    }
  }
});
