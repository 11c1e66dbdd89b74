/**
 * `npm run bench -- --load --syscalls`: system calls per call of each proxy
 * process (strace -c over one measured window), so "one write per response"
 * and "fewer syscalls per call" can be counted rather than guessed. strace
 * slows what it traces: only the counts per call mean anything here, not the
 * throughput. Skipped with a note when strace is not installed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../test/helpers/tmp.js';
import { machine, writeReport } from './report.js';
import { DIRECT, startRig, withSessions } from './rig.js';
import type { LoadSettings } from './settings.js';
import { measure, warmUp } from './window.js';

/** `calls` per syscall from strace -c's summary table. */
function parseSummary(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    // % time, seconds, usecs/call, calls, [errors], syscall
    if (cols.length < 5 || !/^\d+\.\d+$/.test(cols[0]!) || cols.at(-1) === 'total') continue;
    out.set(cols.at(-1)!, Number(cols[3]));
  }
  return out;
}

async function traced<T>(pids: number[], file: string, during: () => Promise<T>): Promise<T> {
  const strace = spawn('strace', ['-c', '-f', '-o', file, ...pids.flatMap((p) => ['-p', String(p)])], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((r) => strace.once('close', () => r()));
  // strace says nothing once attached: give it a moment before the window starts.
  await new Promise((r) => setTimeout(r, 1000));
  try {
    return await during();
  } finally {
    strace.kill('SIGINT');
    await exited;
  }
}

export async function runSyscalls(s: LoadSettings): Promise<void> {
  if (spawnSync('strace', ['-V'], { stdio: 'ignore' }).status !== 0) {
    console.log('strace is not installed (Debian: apt-get install strace): nothing to count.');
    return;
  }
  const connections = s.connections[0]!;
  const rig = await startRig({ only: s.only });
  const perTarget: { name: string; calls: number; counts: Map<string, number> }[] = [];
  try {
    for (const spec of rig.specs) {
      if (spec.name === DIRECT) continue;
      const { target, close } = await withSessions(spec, s.shared ? 1 : connections);
      try {
        await warmUp(target, connections, s.warmup);
        const file = join(tempDir('behalf-load-strace-'), 'summary.txt');
        const w = await traced(spec.proxyPids(), file, () => measure(target, connections, s.seconds));
        perTarget.push({ name: spec.name, calls: w.calls, counts: parseSummary(readFileSync(file, 'utf8')) });
      } finally {
        await close();
      }
    }
  } finally {
    await rig.close();
  }
  const names = [...new Set(perTarget.flatMap((t) => [...t.counts.keys()]))];
  const perCall = (t: (typeof perTarget)[number], n: string) => (t.counts.get(n) ?? 0) / Math.max(1, t.calls);
  names.sort(
    (a, b) => Math.max(...perTarget.map((t) => perCall(t, b))) - Math.max(...perTarget.map((t) => perCall(t, a))),
  );
  const shown = names.filter((n) => perTarget.some((t) => perCall(t, n) >= 0.05));
  const total = (t: (typeof perTarget)[number]) =>
    [...t.counts.values()].reduce((a, b) => a + b, 0) / Math.max(1, t.calls);
  const text = [
    '## System calls per call of each proxy process (strace -c -f over one window)',
    '',
    machine(),
    '',
    `${connections} connections, ${s.seconds} s window under strace (which slows the traced process: counts only).`,
    '',
    `| syscall | ${perTarget.map((t) => t.name).join(' | ')} |`,
    `|---|${perTarget.map(() => '---:').join('|')}|`,
    `| **all** | ${perTarget.map((t) => total(t).toFixed(2)).join(' | ')} |`,
    ...shown.map((n) => `| ${n} | ${perTarget.map((t) => perCall(t, n).toFixed(2)).join(' | ')} |`),
    '',
    `Calls traced: ${perTarget.map((t) => `${t.name} ${t.calls}`).join(', ')}.`,
  ].join('\n');
  console.log(`\n${text}`);
  writeReport('bench-load-syscalls.md', `${text}\n`);
}
