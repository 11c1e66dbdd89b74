import type { Feature } from './rules.js';

/**
 * Every JSON-RPC method the gateway lets through, with what it means for
 * authorization. A method missing here (and from the policy's `methods`) is
 * denied (docs/architecture.md §9).
 */
export type MethodClass =
  | { kind: 'housekeeping'; why: string }
  | { kind: 'list'; feature: 'tool' | 'prompt' | 'resource' | 'resource-template' }
  | { kind: 'tool-call' }
  | { kind: 'resource-read' }
  | { kind: 'prompt-get' }
  | { kind: 'completion' }
  /** 2026-07-28 `subscriptions/listen`: list-changed notifications carry no user data; each resource subscribed to is decided as a subscribe to it. */
  | { kind: 'subscriptions' }
  /** The agent's roots can widen what an upstream serves: allowed only where the route forwards them. */
  | { kind: 'client-roots' }
  /** Declared in the policy's `methods`: passes as housekeeping (`allow`) or needs an allow rule naming it (`rules`). */
  | { kind: 'custom'; decide: 'allow' | 'rules'; why: string };

export const METHOD_TABLE: Readonly<Record<string, MethodClass>> = {
  initialize: { kind: 'housekeeping', why: 'opens a session; carries no user data' },
  ping: { kind: 'housekeeping', why: 'liveness only' },
  'server/discover': { kind: 'housekeeping', why: 'stateless-era capability discovery; carries no user data' },
  'subscriptions/listen': { kind: 'subscriptions' },
  'logging/setLevel': { kind: 'housekeeping', why: 'affects only log messages sent to this session' },
  'notifications/initialized': { kind: 'housekeeping', why: 'session lifecycle' },
  'notifications/cancelled': { kind: 'housekeeping', why: "cancels the caller's own in-flight request" },
  'notifications/progress': { kind: 'housekeeping', why: "progress of the caller's own request" },
  'notifications/roots/list_changed': { kind: 'client-roots' },
  'tools/list': { kind: 'list', feature: 'tool' },
  'prompts/list': { kind: 'list', feature: 'prompt' },
  'resources/list': { kind: 'list', feature: 'resource' },
  'resources/templates/list': { kind: 'list', feature: 'resource-template' },
  'tools/call': { kind: 'tool-call' },
  'resources/read': { kind: 'resource-read' },
  'resources/subscribe': { kind: 'resource-read' },
  'resources/unsubscribe': { kind: 'housekeeping', why: 'only stops updates the caller was allowed to subscribe to' },
  'prompts/get': { kind: 'prompt-get' },
  'completion/complete': { kind: 'completion' },
};

/** What each rule-decided built-in method can reach, for the load-time "rule matches nothing" check. */
export const DECIDED_METHODS: Readonly<Record<string, readonly Feature[]>> = {
  'tools/call': ['tool'],
  'resources/read': ['resource'],
  'resources/subscribe': ['resource'],
  'prompts/get': ['prompt'],
  // Completing an argument reveals values of the prompt or resource: it is decided as that prompt or resource.
  'completion/complete': ['prompt', 'resource'],
};

export function classifyMethod(
  method: string,
  custom: Readonly<Record<string, { decide: 'allow' | 'rules'; reason: string }>> = {},
): MethodClass | undefined {
  if (Object.hasOwn(METHOD_TABLE, method)) return METHOD_TABLE[method];
  if (Object.hasOwn(custom, method))
    return { kind: 'custom', decide: custom[method]!.decide, why: custom[method]!.reason };
  return undefined;
}
