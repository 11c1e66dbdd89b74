/**
 * `npm run bench -- --load`: throughput, latency, errors and CPU per call of
 * behalf against its peers, all in one run, under autocannon. For each
 * connection count the targets take turns within each round (the order
 * rotates from round to round), each with a warm-up, then a measured window;
 * the table reports medians across rounds.
 *
 *   --sessions   the memory/CPU part instead: 10, 1,000, 10,000 sessions, 2,000 streams
 *   --cpu-prof   one profiled window of behalf on the HTTP upstream, top self-time functions
 *   --syscalls   system calls per call of each proxy process (strace -c)
 *   --fleet      one gateway instance versus three behind nginx, on Redis and PostgreSQL (bench/load/fleet.ts)
 *
 * Environment: BENCH_LOAD_SECONDS (10), BENCH_LOAD_WARMUP (3), BENCH_LOAD_ROUNDS (3),
 * BENCH_LOAD_CONNECTIONS (16,64), BENCH_LOAD_TARGETS (substrings of target names, comma-separated),
 * BENCH_LOAD_SESSIONS (per-connection | shared: one session for all connections of a target),
 * BENCH_LOAD_RATE (requests per second offered in all; unset: as fast as the target answers).
 */
import { runFleetLoad } from './fleet.js';
import { refusedInitializes } from './mcp-client.js';
import { runCpuProfile } from './profile-run.js';
import { LEGEND, loadTable, machine, writeReport, type Cell } from './report.js';
import { DIRECT, startRig, withSessions, type OpenedSessions, type Rig } from './rig.js';
import { runSessions } from './sessions.js';
import { runSyscalls } from './syscalls.js';
import { settings, type LoadSettings } from './settings.js';
import { measure, warmUp } from './window.js';

async function loadRun(s: LoadSettings): Promise<void> {
  const rig: Rig = await startRig({ only: s.only });
  const cells: Cell[] = [];
  const notes = new Set(rig.notes);
  try {
    for (const connections of s.connections) {
      const targets: OpenedSessions[] = [];
      for (const spec of rig.specs) {
        const opened = await withSessions(spec, s.shared ? 1 : connections);
        targets.push(opened);
        const u = opened.upstreamPerSession;
        if (u)
          notes.add(
            `opening a session of "${spec.name}" sent the HTTP upstream ${u.post.toFixed(2)} POST + ${u.get.toFixed(2)} GET (${connections} conns)`,
          );
      }
      try {
        for (let round = 0; round < s.rounds; round++) {
          // Rotating who goes first keeps a slow start (or a neighbour's noise) from always hitting the same target.
          const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
          for (const { target } of order) {
            await warmUp(target, connections, s.warmup);
            const w = await measure(target, connections, s.seconds);
            let cell = cells.find((c) => c.target === target.name && c.connections === connections);
            if (!cell) cells.push((cell = { target: target.name, connections, rounds: [] }));
            cell.rounds.push(w);
            console.error(
              `round ${round + 1}/${s.rounds} ${connections} conns ${target.name}: ${w.reqPerSec.toFixed(0)} req/s, p50 ${w.p50.toFixed(2)} ms, errors ${w.non2xx}/${w.rpcErrors}/${w.socketErrors}`,
            );
          }
        }
      } finally {
        for (const t of targets) await t.close();
      }
    }
  } catch (err) {
    console.error(`the load run failed; the last lines of its processes:\n${rig.tails()}`);
    throw err;
  } finally {
    await rig.close();
  }
  for (const r of refusedInitializes) notes.add(`an initialize was refused and tried again: ${r}`);
  const order = rig.specs.map((t) => t.name);
  cells.sort((a, b) => a.connections - b.connections || order.indexOf(a.target) - order.indexOf(b.target));
  const header = [
    `## Load: tools/call echo on server-everything`,
    '',
    `${machine()}`,
    '',
    `autocannon, keep-alive, ${s.shared ? 'one session shared by all connections' : 'one session per connection'}; ` +
      `${s.warmup} s warm-up then ${s.seconds} s measured per window, ${s.rounds} interleaved rounds. ` +
      'behalf: dual mode (API key + ES256 user JWT), CEL policy, SQLite audit.',
    '',
  ];
  const text = [...header, loadTable(cells, DIRECT), '', LEGEND, ...[...notes].map((n) => `\nNote: ${n}`)].join('\n');
  console.log(`\n${text}`);
  writeReport('bench-load.md', `${text}\n`);
  writeReport('bench-load.json', JSON.stringify({ machine: machine(), settings: s, cells }, null, 2));
}

export async function runLoad(argv: readonly string[]): Promise<void> {
  const s = settings();
  if (argv.includes('--fleet')) return runFleetLoad(s);
  if (argv.includes('--cpu-prof')) return runCpuProfile(s);
  if (argv.includes('--sessions')) return runSessions(s);
  if (argv.includes('--syscalls')) return runSyscalls(s);
  return loadRun(s);
}
