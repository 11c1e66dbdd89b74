/**
 * The processes under load, seen from outside: each target and upstream runs
 * as its own process, so what it costs is read from /proc (utime + stime,
 * VmRSS), never mixed with the load generator's own work.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat; 100 on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

function statFields(pid: number): string[] | undefined {
  try {
    // The command name (field 2) may hold spaces; everything after its closing parenthesis is space-separated.
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    // The process ended between listing and reading: it has no CPU left to count.
    return undefined;
  }
}

/** utime + stime of the processes, in milliseconds. */
export function cpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]);
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** CPU ms of each thread of a process, by thread name (/proc/<pid>/task/<tid>/comm); same-named threads add up. */
export function threadCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    // The process ended: no threads to count.
    return out;
  }
  for (const tid of tids) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      const name = tid === String(pid) ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out.set(name, (out.get(name) ?? 0) + ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_SECOND);
    } catch {
      // The thread ended between listing and reading: what it spent is gone with it.
    }
  }
  return out;
}

/** Direct children of a process (a stdio upstream per session, nginx's workers). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f && Number(f[1]) === pid) out.push(Number(name));
  }
  return out;
}

/** Resident set size in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return line ? Number(/(\d+)/.exec(line)![1]) * 1024 : NaN;
}

/** Socket inodes the processes hold open (from /proc/<pid>/fd). */
function socketInodes(pids: readonly number[]): Set<string> {
  const out = new Set<string>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      // The process ended: it holds no sockets.
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) out.add(m[1]!);
      } catch {
        // The descriptor closed between listing and reading: nothing to count.
      }
    }
  }
  return out;
}

/**
 * Established TCP connections to `port` (its remote end) that the processes
 * hold: how many connections a client keeps to the upstream.
 */
export function connectionsTo(port: number, pids: readonly number[]): number {
  const mine = socketInodes(pids);
  let n = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      // A kernel without IPv6 has no tcp6 table: nothing to count there.
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== '01') continue;
      if (parseInt(cols[2]!.split(':')[1]!, 16) === port && mine.has(cols[9]!)) n++;
    }
  }
  return n;
}

export interface Running {
  child: ChildProcess;
  pid: number;
  /** Lines the process printed, counted by the patterns it was started with. */
  counts: Map<string, number>;
  /** Its last lines, for an error message when it fails. */
  tail: string[];
  stop(): Promise<void>;
}

/**
 * Starts a process and resolves once a line matches `ready`. `count` names
 * patterns whose lines are tallied (e.g. an upstream's log line per request),
 * which is how upstream requests per call are counted.
 */
export async function startProcess(
  command: string,
  args: string[],
  o: {
    ready: RegExp;
    count?: Record<string, RegExp>;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    stopSignal?: NodeJS.Signals;
  },
): Promise<Running> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env });
  const counts = new Map<string, number>(Object.keys(o.count ?? {}).map((k) => [k, 0]));
  const tail: string[] = [];
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(o.stopSignal ?? 'SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${command} ${args.join(' ')}: not ready in time\n${tail.join('\n')}`)),
      o.timeoutMs ?? 30_000,
    );
    const onLine = (l: string) => {
      if (tail.push(l) > 20) tail.shift();
      for (const [name, re] of Object.entries(o.count ?? {})) if (re.test(l)) counts.set(name, counts.get(name)! + 1);
      if (o.ready.test(l)) {
        clearTimeout(timer);
        resolve();
      }
    };
    for (const input of [child.stdout, child.stderr]) if (input) createInterface({ input }).on('line', onLine);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${command} ended before it was ready\n${tail.join('\n')}`));
    });
  }).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { child, pid: child.pid!, counts, tail, stop };
}
