import type { DestinationStream } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import type { GatewayRuntime } from '../gateway/runtime.js';
import type { ReadinessProbes } from '../gateway/readiness.js';
import type { JwtVerifier } from '../identity/jwt-verifier.js';
import type { SharedState } from '../state/shared-state.js';
import { lineLogger } from './logger.js';
import type { GaugeSources } from './metrics.js';
import { buildOperations, type Operations } from './operations.js';

/** The gauges' view of a runtime that does not exist yet when the metrics are built: read at scrape time. */
function gaugesOf(live: { rt?: GatewayRuntime }): GaugeSources {
  return {
    sessionsByRoute() {
      const by = new Map<string, number>();
      for (const s of live.rt?.sessions.all() ?? []) by.set(s.routeName, (by.get(s.routeName) ?? 0) + 1);
      return by;
    },
    openStreams() {
      let n = 0;
      for (const s of live.rt?.sessions.all() ?? []) n += (s.stream && !s.stream.isClosed ? 1 : 0) + s.postStreams.size;
      return n;
    },
    processesByUpstream() {
      const by = new Map<string, number>();
      for (const s of live.rt?.sessions.all() ?? []) {
        const route = live.rt!.routes.get(s.routeName);
        if (route?.upstream.transport === 'stdio') by.set(s.routeName, (by.get(s.routeName) ?? 0) + 1);
      }
      return by;
    },
    auditQueueDepth: () => live.rt?.audit.pending ?? 0,
  };
}

export interface GatewayOps {
  ops: Operations;
  /** The `log(line)` every module is given: the embedder's, else one event per line in the structured log. */
  log: (line: string) => void;
  /** Called once the runtime exists: gauges read it, /readyz asks the verifier and Redis. */
  attach(rt: GatewayRuntime, verifier: JwtVerifier, shared: SharedState | undefined): void;
}

export async function gatewayOps(
  loaded: LoadedConfig,
  o: { log?: (line: string) => void; logDestination?: DestinationStream; env?: NodeJS.ProcessEnv },
  instanceId: string | undefined,
): Promise<GatewayOps> {
  const live: { rt?: GatewayRuntime } = {};
  const ops = await buildOperations({
    config: loaded.config.operations,
    instanceId,
    baseDir: loaded.baseDir,
    env: o.env,
    upstreams: Object.keys(loaded.config.upstreams),
    gauges: gaugesOf(live),
    logDestination: o.logDestination,
    quiet: o.log !== undefined,
  });
  return {
    ops,
    log: o.log ?? lineLogger(ops.logger),
    attach(rt, verifier, shared) {
      live.rt = rt;
      const redis = shared?.redis;
      const probes: ReadinessProbes = {
        idpKeys: () => verifier.keysLoaded(),
        postgres: loaded.config.audit.postgres !== undefined,
        ...(redis && {
          redis: () =>
            redis
              .run('ping', (r) => r.ping())
              .then(
                () => true,
                // run() has logged why Redis did not answer; readiness only says no.
                (err: unknown) => err === undefined,
              ),
        }),
      };
      ops.probes = probes;
    },
  };
}
