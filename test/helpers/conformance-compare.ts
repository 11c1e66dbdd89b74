/**
 * What "nothing lost in the hop" means for one configuration of the suite:
 * per scenario, the checks passed through the gateway are at least those
 * passed directly. The one allowance is a check the suite reports as INFO
 * because the server answered with JSON where the specification lets a
 * server choose JSON or an SSE stream; it counts as passed only when its own
 * details say JSON was returned.
 */
import type { Check, ScenarioResult, SuiteRun } from './conformance-run.js';

export interface JsonChoiceAllowance {
  scenario: string;
  check: string;
  reason: string;
  /** True when the INFO check's details show the server chose JSON (and nothing else made it INFO). */
  choseJson(check: Check): boolean;
}

/**
 * Each check the allowance covers, named one by one. Not here on purpose:
 * server-sse-polling's `server-sse-content-type` is also INFO when a POST is
 * answered with JSON, but that scenario tests resumable SSE streams, which
 * the gateway must carry (the SSE polling checks it skips are what is lost).
 */
export const JSON_CHOICE_ALLOWANCES: JsonChoiceAllowance[] = [
  {
    scenario: 'server-sse-multiple-streams',
    check: 'server-sse-streams-functional',
    reason:
      'A POST response may be JSON or an SSE stream (Streamable HTTP transport); when all three concurrent ' +
      'tools/list POSTs come back as JSON the suite has no stream to test and reports INFO.',
    choseJson(check) {
      const details = check.details ?? {};
      const results = details['results'];
      return (
        details['numSseStreams'] === 0 &&
        Array.isArray(results) &&
        results.length > 0 &&
        results.every((r: { type?: unknown }) => r?.type === 'json')
      );
    },
  },
];

function allowed(scenario: string, check: Check): boolean {
  return (
    check.status === 'INFO' &&
    JSON_CHOICE_ALLOWANCES.some((a) => a.scenario === scenario && a.check === check.id && a.choseJson(check))
  );
}

function passes(scenario: string, check: Check): boolean {
  return check.status === 'SUCCESS' || allowed(scenario, check);
}

/** Checks passed, with the allowance applied (to both sides alike). */
export function passedCount(result: ScenarioResult | undefined): number {
  return result ? result.checks.filter((c) => passes(result.scenario, c)).length : 0;
}

export interface LostCheck {
  id: string;
  direct: number;
  gateway: number;
  /** What the gateway run said about it (status and message of its first non-passing instance). */
  through: string;
}

export interface ScenarioComparison {
  scenario: string;
  direct: ScenarioResult | undefined;
  gateway: ScenarioResult | undefined;
  directPassed: number;
  gatewayPassed: number;
  /** Check ids that pass fewer times through the gateway than directly. */
  lost: LostCheck[];
}

function passesById(result: ScenarioResult | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (const c of result?.checks ?? []) {
    if (passes(result!.scenario, c)) counts.set(c.id, (counts.get(c.id) ?? 0) + 1);
  }
  return counts;
}

function describeThrough(result: ScenarioResult | undefined, id: string): string {
  if (!result) return 'scenario not run';
  if (result.missing) return result.missing;
  const miss = result.checks.find((c) => c.id === id && !passes(result.scenario, c));
  if (miss) return said(miss);
  // Absent: the scenario stopped short of it; the likeliest why is its first failure (else warning, else note).
  const first = (['FAILURE', 'WARNING', 'INFO'] as const)
    .map((status) => result.checks.find((c) => c.status === status && !passes(result.scenario, c)))
    .find(Boolean);
  if (!first) return 'not reported';
  return first.id === id ? 'not reported' : `not reported (after ${first.id} ${said(first)})`;
}

function said(check: Check): string {
  const message = check.errorMessage ?? (check.details?.['message'] as string | undefined) ?? '';
  return `${check.status}${message ? `: ${message.replace(/\s+/g, ' ').slice(0, 160)}` : ''}`;
}

export function compareRuns(direct: SuiteRun, gateway: SuiteRun): ScenarioComparison[] {
  const names = [
    ...direct.scenarios.map((s) => s.scenario),
    ...gateway.scenarios.map((s) => s.scenario).filter((s) => !direct.scenarios.some((d) => d.scenario === s)),
  ];
  return names.map((scenario) => {
    const d = direct.scenarios.find((s) => s.scenario === scenario);
    const g = gateway.scenarios.find((s) => s.scenario === scenario);
    const directIds = passesById(d);
    const gatewayIds = passesById(g);
    const lost = [...directIds]
      .filter(([id, n]) => (gatewayIds.get(id) ?? 0) < n)
      .map(([id, n]) => ({ id, direct: n, gateway: gatewayIds.get(id) ?? 0, through: describeThrough(g, id) }));
    return { scenario, direct: d, gateway: g, directPassed: passedCount(d), gatewayPassed: passedCount(g), lost };
  });
}

/** Scenarios that pass fewer checks through the gateway (the to-do list). */
export function losses(comparisons: ScenarioComparison[]): ScenarioComparison[] {
  return comparisons.filter((c) => c.gatewayPassed < c.directPassed);
}
