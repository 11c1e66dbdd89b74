import type { Principal } from '../identity/principal.js';
import type { JsonRpcMessage } from '../jsonrpc.js';
import { decide, visible, type Decision } from '../policy/decide.js';
import { classifyMethod } from '../policy/method-table.js';
import type { CompiledRule, PolicyInput, Target } from '../policy/rules.js';

export interface Authorization extends Decision {
  /** What the call reaches: a tool name, resource URI or prompt name. */
  target?: string;
  /** Set for list methods: the response must be filtered before the user sees it. */
  listFeature?: 'tool' | 'prompt' | 'resource' | 'resource-template';
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function obj(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

export function policyInput(p: Principal, upstream: string, method: string, transport: string): PolicyInput {
  return {
    user: p.user ? { issuer: p.user.issuer, sub: p.user.subject, claims: p.user.claims, scopes: p.user.scopes } : { claims: {}, scopes: [] },
    client: { id: p.client.id, method: p.client.method },
    upstream,
    request: { method, transport },
  };
}

/** Maps one client→server message to a decision, through the method table (unknown methods are denied). */
export function authorizeMessage(rules: readonly CompiledRule[], p: Principal, upstream: string, transport: string, msg: JsonRpcMessage, forwardRoots = false): Authorization {
  if (!('method' in msg)) return { effect: 'allow', ruleIds: ['method-table:response'], reason: 'answer to an upstream request of this session' };
  const cls = classifyMethod(msg.method);
  if (!cls) return { effect: 'deny', ruleIds: ['method-table:unknown'], reason: 'method not in the method table' };
  const params = obj(msg.params);
  const input = policyInput(p, upstream, msg.method, transport);
  const decideFor = (target: Target, extra: Partial<PolicyInput>): Authorization => ({
    ...decide(rules, upstream, target, { ...input, ...extra }),
    target: target.name,
  });
  switch (cls.kind) {
    case 'housekeeping':
      return { effect: 'allow', ruleIds: [`method-table:${msg.method}`], reason: cls.why };
    case 'client-roots':
      return forwardRoots
        ? { effect: 'allow', ruleIds: ['route:forwardClientRoots'], reason: 'this route forwards the agent\'s roots' }
        : { effect: 'deny', ruleIds: ['route:forwardClientRoots'], reason: 'the agent\'s roots are not forwarded to this upstream' };
    case 'list':
      return { effect: 'allow', ruleIds: [`method-table:${msg.method}`], reason: 'list filtered by call-time rules', listFeature: cls.feature };
    case 'tool-call': {
      const name = str(params.name);
      if (!name) return { effect: 'deny', ruleIds: ['method-table:malformed'], reason: 'tools/call without a tool name' };
      return decideFor({ feature: 'tool', name }, { tool: { name }, args: obj(params.arguments) });
    }
    case 'resource-read': {
      const uri = str(params.uri);
      if (!uri) return { effect: 'deny', ruleIds: ['method-table:malformed'], reason: `${msg.method} without a uri` };
      return decideFor({ feature: 'resource', name: uri }, { resource: { uri } });
    }
    case 'prompt-get': {
      const name = str(params.name);
      if (!name) return { effect: 'deny', ruleIds: ['method-table:malformed'], reason: 'prompts/get without a name' };
      return decideFor({ feature: 'prompt', name }, { prompt: { name, arguments: obj(params.arguments) } });
    }
    case 'completion': {
      // Completing an argument reveals values of the prompt or resource: decide it as that prompt or resource.
      const ref = obj(params.ref);
      if (ref.type === 'ref/prompt' && str(ref.name)) return decideFor({ feature: 'prompt', name: str(ref.name)! }, { prompt: { name: str(ref.name)! } });
      if (ref.type === 'ref/resource' && str(ref.uri)) return decideFor({ feature: 'resource', name: str(ref.uri)! }, { resource: { uri: str(ref.uri)! } });
      return { effect: 'deny', ruleIds: ['method-table:malformed'], reason: 'completion/complete without a known ref' };
    }
  }
}

const LIST_KEYS = { tool: 'tools', prompt: 'prompts', resource: 'resources', 'resource-template': 'resourceTemplates' } as const;

/**
 * Filters a list result with the rules used at call time, so what a user sees
 * is what the user may call (ToolHive #6217, Kong 3.13.0.1).
 */
export function filterListResult(rules: readonly CompiledRule[], p: Principal, upstream: string, transport: string, method: string,
  feature: NonNullable<Authorization['listFeature']>, result: Record<string, unknown>): Record<string, unknown> {
  const key = LIST_KEYS[feature];
  const items = result[key];
  if (!Array.isArray(items)) return result;
  const input = policyInput(p, upstream, method, transport);
  const kept = items.filter((raw) => {
    const item = obj(raw);
    switch (feature) {
      case 'tool': {
        const name = str(item.name);
        return name !== undefined && visible(rules, upstream, { feature: 'tool', name }, { ...input, tool: { name } });
      }
      case 'prompt': {
        const name = str(item.name);
        return name !== undefined && visible(rules, upstream, { feature: 'prompt', name }, { ...input, prompt: { name } });
      }
      case 'resource': {
        const uri = str(item.uri);
        return uri !== undefined && visible(rules, upstream, { feature: 'resource', name: uri }, { ...input, resource: { uri } });
      }
      case 'resource-template': {
        const uri = str(item.uriTemplate);
        return uri !== undefined && visible(rules, upstream, { feature: 'resource', name: uri }, { ...input, resource: { uri } });
      }
    }
  });
  return { ...result, [key]: kept };
}
