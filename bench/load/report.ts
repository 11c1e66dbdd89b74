/**
 * The load bench's report: per target and connection count, the median of
 * each figure across the interleaved rounds, as ratios to the direct target
 * too, in a markdown table with the machine, the Node version, the date and
 * the commit, so a README can quote one run as it stands.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import type { WindowResult } from './window.js';

/** This compiled tree (dist/): reports go there, next to the build. */
const DIST = fileURLToPath(new URL('../..', import.meta.url));

export interface Cell {
  target: string;
  connections: number;
  rounds: WindowResult[];
}

export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function med(c: Cell, pick: (w: WindowResult) => number | undefined): number {
  return median(c.rounds.map((w) => pick(w) ?? NaN));
}

const fmt = (x: number, digits: number) => (Number.isNaN(x) ? '-' : x.toFixed(digits));
const ratio = (x: number, base: number) =>
  Number.isNaN(x) || Number.isNaN(base) || base === 0 ? '-' : `${(x / base).toFixed(2)}×`;

export function machine(): string {
  const model = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? '?';
  let commit = '?';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    if (execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim())
      commit += ' (with uncommitted changes)';
  } catch {
    // Outside a git checkout (a packed tree) the commit is simply unknown.
  }
  return `${cpus().length} cores (${model}), Node ${process.version}, ${new Date().toISOString()}, commit ${commit}`;
}

export function loadTable(cells: Cell[], directName: string): string {
  const rows = [
    '| target | conns | req/s | ×direct | p50 ms | p90 ms | p99 ms | p50 ×direct | errors non-2xx / rpc / socket | hop CPU ms/call | upstream CPU ms/call | upstream ×direct | load gen CPU ms/call | upstream POST+GET /call | upstream conns |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of cells) {
    const direct = cells.find((d) => d.target === directName && d.connections === c.connections);
    const base = (pick: (w: WindowResult) => number | undefined) => (direct ? med(direct, pick) : NaN);
    const rps = med(c, (w) => w.reqPerSec);
    const p50 = med(c, (w) => w.p50);
    const up = med(c, (w) => w.upstreamCpuMsPerCall);
    const sum = (pick: (w: WindowResult) => number) => c.rounds.reduce((a, w) => a + pick(w), 0);
    const posts = med(c, (w) => w.upstreamPostsPerCall);
    const gets = med(c, (w) => w.upstreamGetsPerCall);
    const cols = [
      c.target,
      String(c.connections),
      fmt(rps, 0),
      ratio(
        rps,
        base((w) => w.reqPerSec),
      ),
      fmt(p50, 2),
      fmt(
        med(c, (w) => w.p90),
        2,
      ),
      fmt(
        med(c, (w) => w.p99),
        2,
      ),
      ratio(
        p50,
        base((w) => w.p50),
      ),
      `${sum((w) => w.non2xx)} / ${sum((w) => w.rpcErrors)} / ${sum((w) => w.socketErrors)}`,
      fmt(
        med(c, (w) => w.proxyCpuMsPerCall),
        3,
      ),
      fmt(up, 3),
      ratio(
        up,
        base((w) => w.upstreamCpuMsPerCall),
      ),
      fmt(
        med(c, (w) => w.generatorCpuMsPerCall),
        3,
      ),
      Number.isNaN(posts) ? '-' : `${fmt(posts, 2)} + ${fmt(gets, 3)}`,
      fmt(
        med(c, (w) => w.upstreamConnections),
        0,
      ),
    ];
    rows.push(`| ${cols.join(' | ')} |`);
  }
  return rows.join('\n');
}

export const LEGEND = [
  'Medians across the rounds; errors are summed over every round. "hop CPU" is the proxy process alone',
  '(nginx: master and worker), from /proc utime+stime over the measured window divided by the calls completed;',
  '"upstream CPU" is the MCP server (a stdio upstream: every child of the proxy). "upstream POST+GET /call" counts',
  'the HTTP requests server-everything logged per completed call; "upstream conns" the TCP connections the proxy',
  '(for the direct target: autocannon) held to it half-way through the window. "load gen CPU" is autocannon\'s',
  'own process: on a machine with few cores every target shares the CPU with it and with the upstream, so',
  'req/s follows the sum of the CPU columns.',
].join('\n');

/** Writes a report under dist/ (so a README can quote it) and says where. */
export function writeReport(name: string, text: string): void {
  mkdirSync(DIST, { recursive: true });
  const path = join(DIST, name);
  writeFileSync(path, text);
  console.log(`\nwritten to ${path}`);
}
