/**
 * Reads a V8 .cpuprofile (what `node --cpu-prof` writes) and names where the
 * time went: self time per function (name + script + line), from the samples
 * that fall inside the measured window only, so start-up and warm-up do not
 * count. The profile's timestamps are CLOCK_MONOTONIC microseconds, the same
 * clock as process.hrtime in the bench, so the window can be cut exactly.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  fn: string;
  where: string;
  ms: number;
  /** Share of the window's busy time (idle excluded). */
  share: number;
}

export interface ProfileSummary {
  top: SelfTime[];
  busyMs: number;
  idleMs: number;
  /** False when the window lay outside the profile and all its samples were used instead. */
  windowed: boolean;
}

/**
 * The profiles in a directory, one per thread (`CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile`):
 * thread 0 is the main thread, others are workers (the audit's SQLite writer).
 */
export function profilesIn(dir: string): { path: string; thread: string }[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir} (did the process exit cleanly?)`);
  return files.map((f) => {
    const tid = f.split('.').at(-3);
    return { path: join(dir, f), thread: tid === '0' ? 'main thread' : `worker thread ${tid}` };
  });
}

function shortUrl(url: string): string {
  if (!url) return '';
  const i = url.lastIndexOf('node_modules/');
  if (i >= 0) return url.slice(i + 'node_modules/'.length);
  const d = url.lastIndexOf('/dist/');
  return d >= 0 ? url.slice(d + '/dist/'.length) : url.replace(/^file:\/\//, '');
}

/** Self time per function over samples stamped within [fromUs, toUs] (monotonic µs), top `n` first. */
export function summarize(path: string, fromUs: number, toUs: number, n = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const inWindow = p.startTime < toUs && p.endTime > fromUs;
  const totals = new Map<string, { fn: string; where: string; ms: number }>();
  let busy = 0;
  let idle = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    // A sample stands for the time until the next one.
    const ms = (p.timeDeltas[i + 1] ?? 0) / 1000;
    if (inWindow && (t < fromUs || t > toUs)) continue;
    const node = byId.get(p.samples[i]!);
    if (!node) continue;
    const fn = node.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)') {
      idle += ms;
      continue;
    }
    busy += ms;
    const where = node.callFrame.url ? `${shortUrl(node.callFrame.url)}:${node.callFrame.lineNumber + 1}` : '';
    const key = `${fn}\u0000${where}`;
    const entry = totals.get(key) ?? { fn, where, ms: 0 };
    entry.ms += ms;
    totals.set(key, entry);
  }
  const top = [...totals.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, n)
    .map((e) => ({ ...e, share: busy > 0 ? e.ms / busy : 0 }));
  return { top, busyMs: busy, idleMs: idle, windowed: inWindow };
}

export function profileTable(s: ProfileSummary, calls: number): string {
  const rows = [
    '| # | function | where | self ms | share of busy | µs per call |',
    '|---:|---|---|---:|---:|---:|',
    ...s.top.map(
      (e, i) =>
        `| ${i + 1} | ${e.fn} | ${e.where || '(native)'} | ${e.ms.toFixed(1)} | ${(e.share * 100).toFixed(1)}% | ${
          calls > 0 ? ((e.ms * 1000) / calls).toFixed(2) : '-'
        } |`,
    ),
  ];
  return rows.join('\n');
}
