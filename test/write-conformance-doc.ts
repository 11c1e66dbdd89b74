/**
 * `npm run conformance`: runs every configuration of the conformance suite,
 * directly and through the gateway (as test/conformance.test.ts does), and
 * writes the result where readers find it: docs/conformance.md in full, and
 * the summary into the README's Conformance section (between its markers).
 * It exits 0 whatever the results: the test is what fails, this records.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './helpers/conformance-fixture.js';
import { runMatrix } from './helpers/conformance-matrix.js';
import {
  currentCommit,
  lossReport,
  machineLine,
  reportDocument,
  runProblems,
  summaryTable,
} from './helpers/conformance-report.js';

const BEGIN = '<!-- conformance-summary:begin (npm run conformance writes this) -->';
const END = '<!-- conformance-summary:end -->';

function replaceBetweenMarkers(text: string, body: string): string {
  const from = text.indexOf(BEGIN);
  const to = text.indexOf(END);
  if (from < 0 || to < from) throw new Error(`README.md lacks the markers ${BEGIN} … ${END}`);
  return `${text.slice(0, from + BEGIN.length)}\n${body}\n${text.slice(to)}`;
}

const matrix = await runMatrix((line) => console.error(line));
const date = new Date();
const commit = currentCommit();
const problems = matrix.results.flatMap((r) => runProblems(r).map((p) => `${r.configuration.name}: ${p}`));
if (problems.length > 0) {
  // An incomplete run would publish a table that compares nothing: keep the old one.
  console.error(`not written, the runs are incomplete:\n${problems.join('\n')}`);
  process.exit(1);
}

writeFileSync(
  join(REPO_ROOT, 'docs/conformance.md'),
  reportDocument(matrix.results, { date, commit, totalMs: matrix.totalMs }),
);
const summary = [
  `Measured ${date.toISOString().slice(0, 10)} at commit ${commit} on ${machineLine()}:`,
  '',
  summaryTable(matrix.results),
].join('\n');
const readme = join(REPO_ROOT, 'README.md');
writeFileSync(readme, replaceBetweenMarkers(readFileSync(readme, 'utf8'), summary));

console.log(summaryTable(matrix.results));
for (const r of matrix.results) {
  const lost = lossReport(r);
  if (lost) console.log(`\n${r.configuration.name}, fewer passes through the gateway:\n${lost}`);
}
console.log(`\ndocs/conformance.md and the README summary written (${Math.round(matrix.totalMs / 1000)} s)`);
