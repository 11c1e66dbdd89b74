/**
 * `npm run bench -- --load --cpu-prof`: behalf on the HTTP upstream runs
 * under `node --cpu-prof`, takes one warm-up and one measured window, and
 * exits cleanly so V8 writes the profile; the functions with the most self
 * time inside the measured window are printed, with their cost per call.
 */
import { tempDir } from '../../test/helpers/tmp.js';
import { profilesIn, profileTable, summarize } from './cpu-profile.js';
import { machine, writeReport } from './report.js';
import { threadCpuMs } from './processes.js';
import { BEHALF_HTTP, startRig, withSessions } from './rig.js';
import type { LoadSettings } from './settings.js';
import { measure, warmUp } from './window.js';

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

export async function runCpuProfile(s: LoadSettings): Promise<void> {
  const dir = tempDir('behalf-load-prof-');
  const connections = s.connections[0]!;
  const rig = await startRig({
    only: (name) => name === BEHALF_HTTP,
    gatewayNodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir],
  });
  let from = 0;
  let to = 0;
  let calls = 0;
  let threads: { name: string; msPerCall: number }[];
  let summary: string;
  try {
    const spec = rig.specs.find((t) => t.name === BEHALF_HTTP)!;
    const { target, close } = await withSessions(spec, s.shared ? 1 : connections);
    try {
      await warmUp(target, connections, s.warmup);
      const gwPid = spec.proxyPids()[0]!;
      const threads0 = threadCpuMs(gwPid);
      from = nowUs();
      const w = await measure(target, connections, s.seconds);
      to = nowUs();
      calls = w.calls;
      const threads1 = threadCpuMs(gwPid);
      threads = [...threads1]
        .map(([name, ms]) => ({ name, msPerCall: (ms - (threads0.get(name) ?? 0)) / Math.max(1, calls) }))
        .filter((t) => t.msPerCall > 0)
        .sort((a, b) => b.msPerCall - a.msPerCall);
      summary =
        `${connections} connections, ${s.seconds} s: ${w.reqPerSec.toFixed(0)} req/s, p50 ${w.p50.toFixed(2)} ms, ` +
        `gateway CPU ${w.proxyCpuMsPerCall?.toFixed(3)} ms/call (profiling adds its own), upstream ` +
        `${w.upstreamPostsPerCall?.toFixed(2)} POST + ${w.upstreamGetsPerCall?.toFixed(3)} GET per call on ` +
        `${w.upstreamConnections} connections, errors ${w.non2xx}/${w.rpcErrors}/${w.socketErrors}`;
    } finally {
      await close();
    }
  } finally {
    // Stopping the gateway (SIGINT, a clean exit) is what makes V8 write the profile.
    await rig.close();
  }
  const sections = profilesIn(dir).flatMap(({ path, thread }) => {
    const profile = summarize(path, from, to);
    return [
      `### ${thread}`,
      '',
      `Self time inside the measured window${profile.windowed ? '' : ' (the window was not found in the profile: all samples)'}: ` +
        `busy ${profile.busyMs.toFixed(0)} ms, idle ${profile.idleMs.toFixed(0)} ms, ${calls} calls.`,
      '',
      profileTable(profile, calls),
      '',
      `Profile: ${path}`,
      '',
    ];
  });
  const threadLine =
    'Gateway CPU per call by thread (/proc, the same window): ' +
    threads.map((t) => `${t.name} ${t.msPerCall.toFixed(3)} ms`).join(', ') +
    '. The profiler samples wall-clock time: on a busy machine a thread preempted inside a call (a socket write ' +
    'that wakes the reader, a postMessage that wakes a thread) is charged there, so compare busy ms with these.';
  const text = [`## CPU profile: ${BEHALF_HTTP}`, '', machine(), '', summary, '', threadLine, '', ...sections].join(
    '\n',
  );
  console.log(`\n${text}`);
  writeReport('bench-load-profile.md', text);
}
