/**
 * Everything a load run stands on, started once: server-everything over
 * Streamable HTTP, the dev IdP, behalf in front of the HTTP upstream and in
 * front of the same server over stdio, mcp-proxy, and nginx when installed.
 * Each becomes a Target the windows can take turns on.
 */
import { tempDir } from '../../test/helpers/tmp.js';
import { startGateway, startIdp, type Gateway, type Idp } from './behalf.js';
import { openSessions, closeSessions } from './mcp-client.js';
import {
  nginxAvailable,
  startEverythingHttp,
  startMcpProxy,
  startNginx,
  startNodeProxy,
  type Upstream,
} from './peers.js';
import { childrenOf, type Running } from './processes.js';
import type { Target } from './window.js';

export const DIRECT = 'direct (server-everything, Streamable HTTP)';
export const BEHALF_HTTP = 'behalf, Streamable HTTP upstream';
export const BEHALF_STDIO = 'behalf, stdio upstream';
export const MCP_PROXY = 'mcp-proxy (stdio upstream, no auth)';
export const NGINX = 'nginx reverse proxy';
export const NODE_PROXY = 'bare Node.js proxy (node:http + undici, no checks)';

/** A target before its sessions exist: where it is, what it costs, and what a session of it needs. */
export interface TargetSpec extends Omit<Target, 'sessions'> {
  /** Headers every request carries (behalf: the agent's API key and alice's token). */
  auth: Record<string, string>;
}

export interface Rig {
  upstream: Upstream;
  idp: Idp;
  specs: TargetSpec[];
  notes: string[];
  /** The last lines each process printed, to show why a run failed. */
  tails(): string;
  close(): Promise<void>;
}

export interface RigOptions {
  /** Names of the targets to start (default: all). */
  only?: (name: string) => boolean;
  /** Node flags for the HTTP-upstream gateway (e.g. --cpu-prof). */
  gatewayNodeArgs?: string[];
  /** Session quotas for the gateways (config `sessions`). */
  sessions?: Record<string, number>;
  /** Connection caps for the gateways (config `server`). */
  server?: Record<string, number>;
  /**
   * Put nginx between behalf and the HTTP upstream, answering GET with 405 (an upstream without a standing
   * stream), so the gateway holds no GET per session there.
   */
  upstreamRefusesGet?: boolean;
}

export async function startRig(o: RigOptions = {}): Promise<Rig> {
  const want = o.only ?? (() => true);
  const started: { stop(): Promise<void> }[] = [];
  const notes: string[] = [];
  const keep = <T extends { stop(): Promise<void> }>(p: T): T => (started.push(p), p);
  const tails = () =>
    started
      .map((p) => ('tail' in p && Array.isArray(p.tail) ? (p.tail as string[]).join('\n') : ''))
      .filter(Boolean)
      .join('\n---\n');
  let idp: Idp | undefined;
  try {
    const upstream = keep(await startEverythingHttp());
    idp = await startIdp();
    const viaUpstream = {
      upstreamPids: () => [upstream.pid],
      upstreamRequests: () => upstream.requests(),
      upstreamPort: upstream.port,
    };
    const specs: TargetSpec[] = [{ name: DIRECT, url: upstream.url, auth: {}, proxyPids: () => [], ...viaUpstream }];
    if (want(BEHALF_HTTP)) {
      let http = upstream.url;
      let reach = viaUpstream;
      if (o.upstreamRefusesGet) {
        const front = keep(await startNginx(upstream.port, tempDir('behalf-load-noget-'), { refuseGet: true }));
        http = front.url;
        reach = {
          ...viaUpstream,
          upstreamPids: () => [upstream.pid, front.pid, ...childrenOf(front.pid)],
          upstreamPort: front.port,
        };
      }
      const gw = keep(
        await startGateway(idp, { http }, { nodeArgs: o.gatewayNodeArgs, sessions: o.sessions, server: o.server }),
      );
      specs.push(behalfSpec(BEHALF_HTTP, gw, await idp.headersFor('alice', gw.url), reach));
    }
    if (want(BEHALF_STDIO)) {
      const gw = keep(await startGateway(idp, { stdio: true }, { sessions: o.sessions, server: o.server }));
      specs.push(
        behalfSpec(BEHALF_STDIO, gw, await idp.headersFor('alice', gw.url), {
          upstreamPids: () => childrenOf(gw.pid),
        }),
      );
    }
    if (want(MCP_PROXY)) {
      const p = keep(await startMcpProxy());
      specs.push({
        name: MCP_PROXY,
        url: p.url,
        auth: {},
        proxyPids: () => [p.pid],
        upstreamPids: () => childrenOf(p.pid),
      });
    }
    if (want(NODE_PROXY)) {
      const n = keep(await startNodeProxy(upstream.url));
      specs.push({ name: NODE_PROXY, url: n.url, auth: {}, proxyPids: () => [n.pid], ...viaUpstream });
    }
    if (want(NGINX)) {
      if (nginxAvailable()) {
        const n: Running & { url: string } = keep(await startNginx(upstream.port, tempDir('behalf-load-nginx-')));
        specs.push({
          name: NGINX,
          url: n.url,
          auth: {},
          proxyPids: () => [n.pid, ...childrenOf(n.pid)],
          ...viaUpstream,
        });
      } else notes.push('nginx is not installed (Debian: apt-get install nginx): its row is left out.');
    }
    const openIdp = idp;
    return {
      upstream,
      idp: openIdp,
      specs,
      notes,
      tails,
      async close() {
        for (const p of started.reverse()) await p.stop();
        await openIdp.close();
      },
    };
  } catch (err) {
    for (const p of started.reverse()) await p.stop();
    await idp?.close();
    throw err;
  }
}

function behalfSpec(
  name: string,
  gw: Gateway,
  auth: Record<string, string>,
  upstream: Pick<Target, 'upstreamPids' | 'upstreamRequests' | 'upstreamPort'>,
): TargetSpec {
  return { name, url: gw.url, auth, proxyPids: () => [gw.pid], ...upstream };
}

export interface OpenedSessions {
  target: Target;
  /** What opening them cost the HTTP upstream, when the target reaches it: a direct client sends 2 POSTs each. */
  upstreamPerSession?: { post: number; get: number };
  close(): Promise<void>;
}

/** Opens `n` sessions on the target (its connections share them in turn) and gives the Target plus a closer. */
export async function withSessions(spec: TargetSpec, n: number): Promise<OpenedSessions> {
  const before = spec.upstreamRequests?.();
  // Four at a time: a stdio target starts a child per session, and a burst of starts on a small machine
  // starves the gateway's audit writer past its budget (it then refuses, as it must).
  const sessions = await openSessions(spec.url, spec.auth, n, 4);
  // A standing GET is sent just after the session opens: give it a moment to arrive before counting.
  await new Promise((r) => setTimeout(r, 500));
  const after = spec.upstreamRequests?.();
  return {
    target: { ...spec, sessions },
    upstreamPerSession:
      before && after ? { post: (after.post - before.post) / n, get: (after.get - before.get) / n } : undefined,
    close: () => closeSessions(spec.url, sessions),
  };
}
