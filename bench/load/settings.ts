/** The load bench's knobs, from the environment, so a quick run on a shared machine needs no code change. */

export interface LoadSettings {
  seconds: number;
  warmup: number;
  rounds: number;
  connections: number[];
  only?: (name: string) => boolean;
  shared: boolean;
  /**
   * Requests per second offered in all (autocannon's overallRate), when set: at a fixed offered load two
   * builds do the same work per second, so their CPU per call compares fairly on a machine others share.
   */
  rate?: number;
}

export function settings(): LoadSettings {
  const env = process.env;
  const filters = env.BENCH_LOAD_TARGETS?.split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  return {
    seconds: Number(env.BENCH_LOAD_SECONDS ?? 10),
    warmup: Number(env.BENCH_LOAD_WARMUP ?? 3),
    rounds: Number(env.BENCH_LOAD_ROUNDS ?? 3),
    connections: (env.BENCH_LOAD_CONNECTIONS ?? '16,64').split(',').map(Number),
    only: filters?.length ? (name) => filters.some((f) => name.toLowerCase().includes(f)) : undefined,
    shared: env.BENCH_LOAD_SESSIONS === 'shared',
    rate: env.BENCH_LOAD_RATE ? Number(env.BENCH_LOAD_RATE) : undefined,
  };
}
