/**
 * examples/observability (issue 17): every metric the Grafana dashboard
 * queries is exported by a running gateway, the dashboard has the panels
 * on-call needs, and the Prometheus scrape config points at the metrics
 * listener's default address and path.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { MetricsSchema } from '../src/config/schema-operations.js';
import { startFixture, type Fixture } from './helpers/fixture.js';

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const dashboard = JSON.parse(readFileSync(root('examples/observability/grafana-dashboard.json'), 'utf8')) as {
  panels: { title: string; targets: { expr: string }[] }[];
  templating: { list: { query?: unknown }[] };
};
const METRIC = /\b(?:behalf|process|nodejs)_[a-z0-9_]+\b/g;

/** Every series name a scrape can return: each metric's name, and its histogram's _bucket, _sum and _count. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]!);
    if (m[2] === 'histogram' || m[2] === 'summary') for (const s of ['_bucket', '_sum', '_count']) names.add(m[1]! + s);
  }
  return names;
}

describe('the observability examples', () => {
  let fx: Fixture;
  let exported: Set<string>;

  before(async () => {
    fx = await startFixture({ operations: { metrics: { listen: '127.0.0.1:0' } } });
    const { host, port } = fx.gateway.runtime.ops.metricsAddress!;
    const res = await fetch(`http://${host}:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
    exported = exportedNames(await res.text());
  });
  after(() => fx?.close());

  it('queries only metrics a running gateway exports', () => {
    assert.ok(!exported.has('behalf_no_such_metric_total'), 'control: the set is not everything');
    const queries = [
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)),
      ...dashboard.templating.list.map((v) => (typeof v.query === 'string' ? v.query : '')),
    ];
    const queried = new Set(queries.flatMap((q) => q.match(METRIC) ?? []));
    assert.ok(queried.size >= 12, `the dashboard queries ${queried.size} metrics`);
    const missing = [...queried].filter((n) => !exported.has(n));
    assert.deepEqual(missing, [], 'metrics the dashboard queries that the gateway does not export');
  });

  it('has the panels the issue names: rate, latency per upstream, refusals, refused rules, sessions and streams', () => {
    const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const want of ['request rate', 'latency per upstream', 'refusals by reason', 'top refused rules', 'sessions'])
      assert.ok(titles.includes(want), `a panel for ${want}: ${titles}`);
    const latency = dashboard.panels.find((p) => p.title.startsWith('Call latency'))!;
    assert.deepEqual(
      latency.targets.map((t) => /histogram_quantile\((0\.\d+)/.exec(t.expr)?.[1]),
      ['0.5', '0.99'],
    );
  });

  it('scrapes the metrics listener at its default address and path', () => {
    const prom = parse(readFileSync(root('examples/observability/prometheus.yml'), 'utf8')) as {
      scrape_configs: { metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    const defaults = MetricsSchema.parse({});
    const job = prom.scrape_configs[0]!;
    assert.equal(job.metrics_path, defaults.path);
    assert.deepEqual(job.static_configs[0]!.targets, [defaults.listen]);
  });
});
