import type { Principal } from '../identity/principal.js';
import type { JsonRpcMessage } from '../jsonrpc.js';
import { decide, type Decision, type RuleTrace } from './decide.js';
import { principalInput } from './input.js';
import { classifyMethod } from './method-table.js';
import type { CompiledPolicy } from './policy.js';
import type { PolicyInput, Target } from './rules.js';
import { visible } from './visible.js';

export interface Authorization extends Decision {
  /** What the call reaches (tool, resource or prompt); absent for housekeeping and custom methods. */
  target?: Target;
  /** The call's arguments, for the audit digest (tools/call, prompts/get). */
  args?: Record<string, unknown>;
  /** The decision's variables, so rate limits key on the same user and client. */
  input?: PolicyInput;
  /** Set for list methods: the response must be filtered before the user sees it. */
  listFeature?: 'tool' | 'prompt' | 'resource' | 'resource-template';
}

/** What the upstream declared about its tools, for rules on annotations; undefined = tool not listed. */
export type ToolLookup = (name: string) => { annotations: Record<string, unknown> } | undefined;

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * A URI with `.` or `..` segments (plain or percent-encoded) names one
 * resource to a glob and maybe another to an upstream that normalises it
 * (`crm://customers/c-100/../c-200` matches `crm://customers/*`): refused.
 */
const DOT_SEGMENT = /(^|\/)(\.|%2e){1,2}(\/|$|[?#])/i;

/** The one refusal of a URI with dot segments, for reads and completions alike. */
function dotSegments(uri: string): Authorization {
  return {
    effect: 'deny',
    ruleIds: ['method-table:malformed'],
    reason: 'resource URI with dot segments',
    target: { feature: 'resource', name: uri },
  };
}

function obj(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

export interface AuthorizeOptions {
  forwardRoots?: boolean;
  /** Present when the policy reads tool annotations: the upstream's catalogue. */
  tools?: ToolLookup;
  /** Filled with what each rule did, for `behalf policy explain`; empty when no rule was consulted. */
  trace?: RuleTrace[];
}

/** Maps one client→server message to a decision, through the method table (unknown methods are denied). */
export function authorizeMessage(
  policy: CompiledPolicy,
  p: Principal,
  upstream: string,
  transport: string,
  msg: JsonRpcMessage,
  opts: AuthorizeOptions = {},
): Authorization {
  if (!('method' in msg))
    return {
      effect: 'allow',
      ruleIds: ['method-table:response'],
      reason: 'answer to an upstream request of this session',
    };
  const method = msg.method;
  const cls = classifyMethod(method, policy.methods);
  if (!cls) return { effect: 'deny', ruleIds: ['method-table:unknown'], reason: 'method not in the method table' };
  const params = obj(msg.params);
  const input = principalInput(p, upstream, method, transport);
  const decideFor = (
    target: Target | undefined,
    extra: Partial<PolicyInput>,
    args?: Record<string, unknown>,
  ): Authorization => {
    // principalInput made a fresh object for this message: adding the call's variables to it saves a copy per decision.
    const full = Object.assign(input, extra);
    const d = decide(policy, method, upstream, target, full, opts.trace);
    return {
      effect: d.effect,
      ruleIds: d.ruleIds,
      reason: d.reason,
      ...(d.stepUpScopes ? { stepUpScopes: d.stepUpScopes } : {}),
      target,
      args,
      input: full,
    };
  };
  switch (cls.kind) {
    case 'housekeeping':
      return { effect: 'allow', ruleIds: [`method-table:${method}`], reason: cls.why };
    case 'client-roots':
      return opts.forwardRoots
        ? { effect: 'allow', ruleIds: ['route:forwardClientRoots'], reason: "this route forwards the agent's roots" }
        : {
            effect: 'deny',
            ruleIds: ['route:forwardClientRoots'],
            reason: "the agent's roots are not forwarded to this upstream",
          };
    case 'custom':
      return cls.decide === 'allow'
        ? { effect: 'allow', ruleIds: [`policy-methods:${method}`], reason: cls.why }
        : decideFor(undefined, {});
    case 'list':
      return {
        effect: 'allow',
        ruleIds: [`method-table:${method}`],
        reason: 'list filtered by call-time rules',
        listFeature: cls.feature,
      };
    case 'tool-call': {
      const name = str(params.name);
      if (!name)
        return { effect: 'deny', ruleIds: ['method-table:malformed'], reason: 'tools/call without a tool name' };
      const args = obj(params.arguments);
      let annotations: Record<string, unknown> = {};
      if (opts.tools) {
        const info = opts.tools(name);
        // A tool the upstream does not list cannot be judged by its annotations: not listed, not callable.
        if (!info)
          return {
            effect: 'deny',
            ruleIds: ['catalog:unlisted-tool'],
            reason: "tool not in the upstream's tool list",
            target: { feature: 'tool', name },
            args,
          };
        annotations = info.annotations;
      }
      return decideFor({ feature: 'tool', name }, { tool: { name, annotations }, args }, args);
    }
    case 'resource-read': {
      const uri = str(params.uri);
      if (!uri) return { effect: 'deny', ruleIds: ['method-table:malformed'], reason: `${method} without a uri` };
      if (DOT_SEGMENT.test(uri)) return dotSegments(uri);
      return decideFor({ feature: 'resource', name: uri }, { resource: { uri } });
    }
    case 'prompt-get': {
      const name = str(params.name);
      if (!name) return { effect: 'deny', ruleIds: ['method-table:malformed'], reason: 'prompts/get without a name' };
      const args = obj(params.arguments);
      return decideFor({ feature: 'prompt', name }, { prompt: { name, arguments: args } }, args);
    }
    case 'subscriptions': {
      // Replaces resources/subscribe: each URI is decided as that subscribe; the list-changed flags reveal nothing.
      const uris = obj(params.notifications).resourceSubscriptions;
      if (uris === undefined)
        return { effect: 'allow', ruleIds: [`method-table:${method}`], reason: 'list-changed notifications only' };
      if (!Array.isArray(uris) || uris.some((u) => typeof u !== 'string'))
        return { effect: 'deny', ruleIds: ['method-table:malformed'], reason: 'resourceSubscriptions must be URIs' };
      let last: Authorization = { effect: 'allow', ruleIds: [`method-table:${method}`], reason: 'no resources' };
      for (const uri of uris as string[]) {
        if (DOT_SEGMENT.test(uri)) return dotSegments(uri);
        const d = decide(
          policy,
          'resources/subscribe',
          upstream,
          { feature: 'resource', name: uri },
          Object.assign(input, { resource: { uri } }),
          opts.trace,
        );
        last = {
          effect: d.effect,
          ruleIds: d.ruleIds,
          reason: d.reason,
          target: { feature: 'resource', name: uri },
          input,
        };
        if (d.effect !== 'allow') return d.stepUpScopes ? { ...last, stepUpScopes: d.stepUpScopes } : last;
      }
      return last;
    }
    case 'completion': {
      // Completing an argument reveals values of the prompt or resource: decide it as that prompt or resource.
      const ref = obj(params.ref);
      const name = str(ref.name);
      const uri = str(ref.uri);
      if (ref.type === 'ref/prompt' && name)
        return decideFor({ feature: 'prompt', name }, { prompt: { name, arguments: {} } });
      if (ref.type === 'ref/resource' && uri) {
        if (DOT_SEGMENT.test(uri)) return dotSegments(uri);
        return decideFor({ feature: 'resource', name: uri }, { resource: { uri } });
      }
      return { effect: 'deny', ruleIds: ['method-table:malformed'], reason: 'completion/complete without a known ref' };
    }
  }
}

const LIST_KEYS = {
  tool: 'tools',
  prompt: 'prompts',
  resource: 'resources',
  'resource-template': 'resourceTemplates',
} as const;

/** The method whose rules decide whether a listed item is callable. */
const CALL_METHOD = {
  tool: 'tools/call',
  prompt: 'prompts/get',
  resource: 'resources/read',
  'resource-template': 'resources/read',
} as const;

/**
 * Filters a list result with the rules used at call time, so what a user sees
 * is what the user may call (ToolHive #6217, Kong 3.13.0.1).
 */
export function filterListResult(
  policy: CompiledPolicy,
  p: Principal,
  upstream: string,
  transport: string,
  feature: NonNullable<Authorization['listFeature']>,
  result: Record<string, unknown>,
): Record<string, unknown> {
  const key = LIST_KEYS[feature];
  const items = result[key];
  if (!Array.isArray(items)) return result;
  const method = CALL_METHOD[feature];
  const input = principalInput(p, upstream, method, transport);
  const kept = items.filter((raw) => {
    const item = obj(raw);
    switch (feature) {
      case 'tool': {
        const name = str(item.name);
        return (
          name !== undefined &&
          visible(
            policy,
            method,
            upstream,
            { feature: 'tool', name },
            { ...input, tool: { name, annotations: obj(item.annotations) } },
            ['args'],
          )
        );
      }
      case 'prompt': {
        const name = str(item.name);
        return (
          name !== undefined &&
          visible(
            policy,
            method,
            upstream,
            { feature: 'prompt', name },
            { ...input, prompt: { name } as NonNullable<PolicyInput['prompt']> },
            ['args', 'prompt.arguments'],
          )
        );
      }
      case 'resource': {
        const uri = str(item.uri);
        return (
          uri !== undefined &&
          visible(policy, method, upstream, { feature: 'resource', name: uri }, { ...input, resource: { uri } }, [
            'args',
          ])
        );
      }
      case 'resource-template': {
        // The template's text stands for every URI it expands to: rules match it by glob, and rules reading resource.uri are settled per read.
        const uri = str(item.uriTemplate);
        return (
          uri !== undefined &&
          visible(policy, method, upstream, { feature: 'resource', name: uri }, input, ['args', 'resource'])
        );
      }
    }
  });
  return { ...result, [key]: kept };
}
