import type { JsonRpcRequest } from '../../jsonrpc.js';
import type { Route } from '../route.js';

/** What an upstream may ask a client in the middle of a call, and the client capability each needs. */
export const INPUT_METHODS: Readonly<Record<string, string>> = {
  'elicitation/create': 'elicitation',
  'sampling/createMessage': 'sampling',
  'roots/list': 'roots',
};

/** The only requests that may be answered with an input-required result (SEP-2322, "Supported Requests"). */
export const BRIDGEABLE_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

const CLIENT_CAPABILITIES_META_KEY = 'io.modelcontextprotocol/clientCapabilities';

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/**
 * What the gateway tells a 2025-era upstream it initializes for stateless
 * clients: it can carry elicitation and sampling to them (as input-required
 * results), and roots only where the route forwards roots at all
 * (docs/architecture.md §4, Roots). Whether this call's client can is
 * checked per request: see `clientSupports`.
 */
export function bridgedUpstreamCapabilities(route: Route): Record<string, unknown> {
  return {
    elicitation: { form: {}, url: {} },
    sampling: {},
    ...(route.upstream.forwardClientRoots ? { roots: {} } : {}),
  };
}

/** The capabilities a stateless request declares in its `_meta`; none when it declares none. */
export function clientCapabilitiesOf(req: JsonRpcRequest): Record<string, unknown> {
  return obj(obj(req.params?._meta)?.[CLIENT_CAPABILITIES_META_KEY]) ?? {};
}

/**
 * Whether the client declared what an upstream's request needs: a server
 * must not send an input request the client has not declared (SEP-2322).
 * `elicitation: {}` means form mode, as in 2025-11-25; URL mode needs
 * `elicitation.url`, sampling with tools `sampling.tools`.
 */
export function clientSupports(caps: Record<string, unknown>, method: string, params: unknown): boolean {
  const p = obj(params) ?? {};
  switch (method) {
    case 'elicitation/create': {
      const e = obj(caps.elicitation);
      if (!e) return false;
      if (p.mode === 'url') return obj(e.url) !== undefined;
      return obj(e.form) !== undefined || (e.url === undefined && e.form === undefined);
    }
    case 'sampling/createMessage': {
      const s = obj(caps.sampling);
      if (!s) return false;
      return p.tools === undefined && p.toolChoice === undefined ? true : obj(s.tools) !== undefined;
    }
    case 'roots/list':
      return obj(caps.roots) !== undefined;
    default:
      return false;
  }
}
