/**
 * Unauthenticated clients cost the gateway almost nothing (docs/architecture.md §2:
 * authentication comes before the body is read). The gateway runs as its own
 * process in front of the demo CRM; the load comes from another process
 * (test/helpers/abuse-load.ts), so it cannot stall the measuring client's own
 * event loop; alice's latencies are compared as a ratio measured in the same test.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  aliceCaller,
  median,
  rssPeak,
  startLoad,
  startSpawnedGateway,
  type SpawnedGateway,
} from './helpers/spawned-gateway.js';

const MB = 2 ** 20;

async function healthz(gw: SpawnedGateway): Promise<number> {
  return (await fetch(`${gw.baseUrl}/healthz`)).status;
}

describe('unauthenticated abuse: CPU and memory stay with the callers who proved who they are', () => {
  let gw: SpawnedGateway;
  before(async () => {
    gw = await startSpawnedGateway();
  });
  after(async () => gw?.close());

  it("16 senders of 0.8 MB key-dense bodies without credentials leave alice's median within 2x", async (t) => {
    const alice = await aliceCaller(gw);
    try {
      for (let i = 0; i < 100; i++) await alice.call();
      const alone: number[] = [];
      for (let i = 0; i < 200; i++) alone.push(await alice.call());
      // 20 requests a second per sender (320/s, 256 MB/s offered): more than ten times what the same senders
      // got through before (a gateway that parsed every body managed about 25/s), and a rate this shared 2-core
      // machine sustains without the senders' own kernel work, rather than the gateway, deciding the outcome.
      const load = startLoad({
        mode: 'flood',
        url: gw.url,
        senders: 16,
        seconds: 5,
        bodyBytes: 800_000,
        ratePerSender: 20,
      });
      const body = (await load.ready) as { bodyBytes: number; keys: number };
      assert.ok(body.bodyBytes >= 800_000 && body.keys > 90_000, `the bodies are key-dense: ${JSON.stringify(body)}`);
      await sleep(300);
      const loaded: number[] = [];
      const until = Date.now() + 4000;
      while (Date.now() < until) loaded.push(await alice.call());
      const tally = (await load.done) as {
        requests: number;
        statuses: Record<string, number>;
        closedUnanswered: number;
      };
      // Alone again after the load: her unloaded median is taken from both sides of it, so a neighbour's work on
      // this shared machine just before or just after the load does not decide the ratio.
      for (let i = 0; i < 200; i++) alone.push(await alice.call());
      const ratio = median(loaded) / median(alone);
      const report = `alone p50 ${median(alone).toFixed(2)} ms, loaded p50 ${median(loaded).toFixed(2)} ms (${loaded.length} calls), senders: ${JSON.stringify(tally)}`;
      t.diagnostic(`ratio ${ratio.toFixed(2)}: ${report}`);
      assert.ok(ratio <= 2, `alice's median under load within 2x of alone: ${report}`);
      // At least twice the rate the same senders got through a gateway that parsed every body (about 25/s).
      assert.ok(tally.requests >= 5 * 50, `the senders kept sending: ${report}`);
      assert.equal(Object.keys(tally.statuses).join(), '401', `every answer to a sender was a 401: ${report}`);
      // The rest saw the connection closed under a body they were still sending (a reset can overtake the 401).
      assert.equal(
        tally.statuses['401']! + tally.closedUnanswered,
        tally.requests,
        `each sender's request was refused: ${report}`,
      );
      assert.equal(await healthz(gw), 200);
    } finally {
      alice.close();
    }
  });

  it('1,000 connections holding unfinished bodies without credentials: RSS grows < 100 MB and alice is served', async (t) => {
    // A fresh gateway: memory the first test's load left behind must not hide (or inflate) what this one costs.
    const gw = await startSpawnedGateway();
    const alice = await aliceCaller(gw);
    try {
      for (let i = 0; i < 20; i++) await alice.call();
      await sleep(300);
      const baseline = gw.rss();
      const sampler = rssPeak(gw.pid); // from before the first hostile byte to after the last
      // Another loopback address than alice's: a per-address cap must not be what keeps memory down here.
      const load = startLoad({
        mode: 'hold',
        url: gw.url,
        connections: 1000,
        declaredBytes: 1_048_576,
        sentBytes: 700_000,
        localAddress: '127.0.0.2',
      });
      await load.ready;
      const served: number[] = [];
      for (let i = 0; i < 10; i++) {
        served.push(await alice.call()); // the positive control: alice is served meanwhile
        await sleep(100);
      }
      assert.equal(await healthz(gw), 200);
      load.stop();
      const tally = (await load.done) as {
        requests: number;
        statuses: Record<string, number>;
        closedUnanswered: number;
      };
      const peak = sampler.stop();
      const growth = (peak - baseline) / MB;
      const report = `RSS ${(baseline / MB).toFixed(0)} → peak ${(peak / MB).toFixed(0)} MB; connections: ${JSON.stringify(tally)}`;
      t.diagnostic(report);
      assert.ok(growth < 100, `RSS growth ${growth.toFixed(0)} MB < 100 MB: ${report}`);
      assert.equal(tally.requests, 1000, `all 1,000 connections were made: ${report}`);
      // Refused before its body was read: a 401, or a reset that overtook it under the body still being sent.
      assert.deepEqual(Object.keys(tally.statuses), ['401'], `nothing but 401s: ${report}`);
      assert.equal(tally.statuses['401']! + tally.closedUnanswered, 1000, `each was refused: ${report}`);
      assert.equal(served.length, 10);
    } finally {
      alice.close();
      await gw.close();
    }
  });
});
