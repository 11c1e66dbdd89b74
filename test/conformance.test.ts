/**
 * Nothing lost in the hop: the official MCP conformance suite, every scenario
 * of both suite versions and both spec eras, once directly against its
 * reference server and once through a real gateway in front of it. A
 * scenario that passes fewer checks through the gateway fails the test, and
 * the failure lists those scenarios and their check ids. The tables are
 * printed and written to dist/conformance.md (`npm run conformance` writes
 * docs/conformance.md, which the README links).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compareRuns, JSON_CHOICE_ALLOWANCES, losses, passedCount } from './helpers/conformance-compare.js';
import { startConformanceFixture, type ConformanceFixture } from './helpers/conformance-fixture.js';
import {
  configurations,
  runConfiguration,
  SUITE_TIMEOUT_MS,
  type ConfigurationResult,
} from './helpers/conformance-matrix.js';
import { currentCommit, lossReport, reportDocument, runProblems, table } from './helpers/conformance-report.js';
import { tally, type Check, type SuiteRun } from './helpers/conformance-run.js';
import { OWN_ROOT } from './helpers/spawned-gateway.js';

const FIXTURE_TIMEOUT_MS = 240_000;

function check(id: string, status: Check['status'], details?: Record<string, unknown>): Check {
  return { id, status, ...(details ? { details } : {}) };
}

function run(scenarios: Record<string, Check[]>): SuiteRun {
  return {
    version: 'v2',
    args: [],
    url: 'http://127.0.0.1:1/mcp',
    scenarios: Object.entries(scenarios).map(([s, checks]) => tally(s, checks)),
    exitCode: 0,
    timedOut: false,
    ms: 0,
    stdout: '',
    stderr: '',
  };
}

const JSON_CHOSEN = {
  numSseStreams: 0,
  results: [0, 1, 2].map((index) => ({ index, type: 'json', skipped: true })),
};

describe('conformance comparison', () => {
  it('flags a scenario that passes fewer checks through the gateway, by check id', () => {
    const direct = run({ a: [check('x', 'SUCCESS'), check('y', 'SUCCESS')], b: [check('z', 'SUCCESS')] });
    const gateway = run({ a: [check('x', 'SUCCESS'), check('y', 'FAILURE')], b: [check('z', 'SUCCESS')] });
    const lost = losses(compareRuns(direct, gateway));
    assert.deepEqual(
      lost.map((c) => [c.scenario, c.lost.map((l) => l.id)]),
      [['a', ['y']]],
    );
    assert.deepEqual(losses(compareRuns(direct, direct)), [], 'control: the same results lose nothing');
  });

  it('counts a scenario the gateway run wrote nothing for as zero passed', () => {
    const direct = run({ a: [check('x', 'SUCCESS')] });
    const gateway = run({});
    assert.deepEqual(
      losses(compareRuns(direct, gateway)).map((c) => c.scenario),
      ['a'],
    );
  });

  it('counts the JSON-or-SSE INFO as passed only for a listed check whose details say JSON was returned', () => {
    const allowance = JSON_CHOICE_ALLOWANCES[0]!;
    const info = (details: Record<string, unknown>) =>
      tally(allowance.scenario, [check(allowance.check, 'INFO', details)]);
    assert.equal(passedCount(info(JSON_CHOSEN)), 1);
    // The same check as INFO for any other reason, or with an SSE stream among the answers, is not passed.
    assert.equal(passedCount(info({ numSseStreams: 0 })), 0);
    assert.equal(passedCount(info({ ...JSON_CHOSEN, results: [{ index: 0, type: 'sse' }] })), 0);
    // Another scenario's INFO about JSON (SSE polling) is not covered.
    const polling = tally('server-sse-polling', [
      check('server-sse-content-type', 'INFO', { message: 'Server returned JSON instead of SSE stream' }),
    ]);
    assert.equal(passedCount(polling), 0);
    const elsewhere = tally('other-scenario', [check(allowance.check, 'INFO', JSON_CHOSEN)]);
    assert.equal(passedCount(elsewhere), 0, 'control: the allowance is tied to its scenario');
  });
});

describe('official conformance suite: every scenario passes at least as many checks through the gateway', () => {
  let fixture: ConformanceFixture | undefined;
  const results: ConfigurationResult[] = [];
  const started = Date.now();

  before(
    async () => {
      fixture = await startConformanceFixture((line) => console.log(line));
    },
    { timeout: FIXTURE_TIMEOUT_MS },
  );

  after(async () => {
    await fixture?.close();
    if (results.length === 0) return;
    // Under dist/, never a tracked file: CI runs on a clean clone.
    const file = join(OWN_ROOT, 'conformance.md');
    mkdirSync(OWN_ROOT, { recursive: true });
    writeFileSync(
      file,
      reportDocument(results, { date: new Date(), commit: currentCommit(), totalMs: Date.now() - started }),
    );
    console.log(`conformance tables written to ${file}`);
  });

  for (const configuration of configurations()) {
    it(configuration.name, { timeout: 2 * SUITE_TIMEOUT_MS + 30_000 }, async () => {
      const result = await runConfiguration(fixture!.url, configuration);
      results.push(result);
      console.log(
        `\n${configuration.name} (direct ${result.direct.ms} ms, through the gateway ${result.gateway.ms} ms)\n${table(result)}`,
      );
      assert.deepEqual(runProblems(result), []);
      // The baseline is real: the reference server alone passes checks, and both runs saw the same scenarios.
      assert.ok(
        result.comparisons.some((c) => c.directPassed > 0),
        'the direct run passed no check',
      );
      assert.deepEqual(
        result.gateway.scenarios.map((s) => s.scenario).sort(),
        result.direct.scenarios.map((s) => s.scenario).sort(),
      );
      const lost = lossReport(result);
      assert.ok(
        lost === '',
        `${configuration.name}: scenarios that pass fewer checks through the gateway than directly:\n${lost}`,
      );
    });
  }
});
