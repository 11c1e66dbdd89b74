import { join } from 'node:path';
import { startQuickstart } from '../demo/quickstart/run.js';
import { writePack } from '../src/review/evidence/write-pack.js';
import { loadProfile } from '../src/review/profile.js';
import { runReview } from '../src/review/run.js';
import { tempDir } from '../test/helpers/tmp.js';

export interface ReviewBench {
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  requests: number;
  /** The part of a run spent waiting for BND-08's short-lived token to expire: a floor set by the token, not by the review. */
  streamWaitMedianMs: number;
  statuses: Record<string, number>;
}

/**
 * A full review of a running quickstart (every check, the profile and config
 * the quickstart writes, the pack written to disk), as `behalf review` does it.
 */
export async function benchReviewQuickstart(runs = 3): Promise<ReviewBench> {
  const stateDir = tempDir('behalf-bench-review-');
  const qs = await startQuickstart({ ...process.env, BEHALF_STATE_DIR: stateDir, BEHALF_PORT: '' });
  try {
    const totals: number[] = [];
    const waits: number[] = [];
    let requests = 0;
    let statuses: Record<string, number> = {};
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      const run = await runReview({
        target: new URL(qs.file.gateway),
        transport: 'streamable',
        profile: loadProfile(qs.file.review.profile),
        configPath: qs.file.review.config,
      });
      await writePack(join(stateDir, `review-${i}`), run);
      totals.push(performance.now() - started);
      waits.push(run.pack.checks.find((c) => c.id === 'BND-08')?.durationMs ?? 0);
      requests = run.pack.review.requests;
      statuses = run.pack.summary;
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    return {
      runs,
      medianMs: median(totals),
      minMs: Math.min(...totals),
      maxMs: Math.max(...totals),
      requests,
      streamWaitMedianMs: median(waits),
      statuses,
    };
  } finally {
    await qs.close();
  }
}
