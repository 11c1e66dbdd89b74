import type { AuditRecord } from '../../audit/event.js';
import type { Principal } from '../../identity/principal.js';
import type { JsonRpcMessage } from '../../jsonrpc.js';

/** Why a record does not hold a value a rule reads. */
export type UnknownWhy = 'not kept' | 'secret' | 'truncated' | 'not recorded';

/** One value a rule read that the record does not hold: `read` as the rule wrote it (args.customer_id). */
export interface UnknownRead {
  read: string;
  why: UnknownWhy;
  root: MapRoot | 'scopes';
  key?: string;
}

export type MapRoot = 'args' | 'promptArgs' | 'claims' | 'annotations';

/** What a record says about one map: the values it holds, and for any key whether it is known. */
export interface KnownMap {
  values: Record<string, unknown>;
  /** undefined: known (held, or known to be absent). */
  unknown(key: string): UnknownWhy | undefined;
  /** Some key's value or presence is not known: a rule reading the map whole cannot be decided. */
  anyUnknown: boolean;
}

/** Why a decision is not decided again. */
export type SkipWhy =
  'rate limited' | 'tool catalogue' | 'refused before the policy' | 'gateway error' | 'not a decision';

/** One recorded decision as a replay sees it: the message and principal again, and what of them it lacks. */
export interface RecordView {
  msg: JsonRpcMessage;
  upstream: string;
  transport: string;
  principal(scopes: readonly string[]): Principal;
  /** undefined when the record does not hold the token's scopes (written before they were recorded). */
  scopes?: string[];
  maps: Partial<Record<MapRoot, KnownMap>>;
  before: { effect: 'allow' | 'deny'; stepUp: boolean; ruleIds: string[]; reason: string };
}

const KNOWN_ALL: KnownMap = { values: {}, unknown: () => undefined, anyUnknown: false };
const UNKNOWN_ALL: KnownMap = { values: {}, unknown: () => 'not recorded', anyUnknown: true };

/** A value the redactor replaced, wholly or somewhere inside: `[redacted …]`, `[truncated …]`. */
function markerIn(v: unknown, depth = 0): UnknownWhy | undefined {
  if (typeof v === 'string') {
    if (v === '[redacted secret]' || v.startsWith('[redacted key')) return 'secret';
    if (v.startsWith('[redacted')) return depth === 0 ? 'not kept' : 'secret';
    if (v.startsWith('[truncated')) return 'truncated';
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  for (const [k, x] of Object.entries(v)) {
    const why = markerIn(k, depth + 1) ?? markerIn(x, depth + 1);
    if (why) return why;
  }
  return undefined;
}

function parseObject(json: string | undefined): Record<string, unknown> | undefined {
  if (json === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(json);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    // A column that is not the JSON the gateway writes holds nothing a replay can trust: treated as not recorded.
    return undefined;
  }
}

/** The arguments column: kept values as sent; markers for the rest; keys left out only when truncated or secret-named. */
export function argumentsMap(json: string | undefined): KnownMap {
  const recorded = parseObject(json);
  if (!recorded) return UNKNOWN_ALL;
  const values: Record<string, unknown> = {};
  const hidden = new Map<string, UnknownWhy>();
  let incomplete = false;
  for (const [k, v] of Object.entries(recorded)) {
    if (k === '[truncated]' || k.startsWith('[redacted key')) {
      incomplete = true;
      continue;
    }
    const why = markerIn(v);
    if (why) hidden.set(k, why);
    else values[k] = v;
  }
  return {
    values,
    unknown: (key) => hidden.get(key) ?? (incomplete && !Object.hasOwn(values, key) ? 'truncated' : undefined),
    anyUnknown: incomplete || hidden.size > 0,
  };
}

/** The userClaims column (decision-inputs.ts): named claims with values or known absent; any other claim is not recorded. */
export function claimsMap(json: string | undefined, authenticated: boolean): KnownMap {
  if (!authenticated) return KNOWN_ALL;
  const recorded = parseObject(json);
  const c = recorded?.claims;
  const claims = typeof c === 'object' && c !== null && !Array.isArray(c) ? (c as Record<string, unknown>) : {};
  const absent = new Set(Array.isArray(recorded?.absent) ? recorded.absent.map(String) : []);
  const values: Record<string, unknown> = {};
  const hidden = new Map<string, UnknownWhy>();
  for (const [k, v] of Object.entries(claims)) {
    const why = markerIn(v);
    if (why) hidden.set(k, why === 'not kept' ? 'secret' : why);
    else values[k] = v;
  }
  return {
    values,
    unknown: (key) => hidden.get(key) ?? (Object.hasOwn(values, key) || absent.has(key) ? undefined : 'not recorded'),
    anyUnknown: true,
  };
}

/** Whether a decision can be decided again at all; undefined when it can. */
function skipWhy(r: AuditRecord): SkipWhy | undefined {
  if (r.kind !== 'decision' || (r.decision !== 'allow' && r.decision !== 'deny')) return 'not a decision';
  if (r.refusedBy === 'rate_limit') return 'rate limited';
  const rules = r.ruleIds ?? [];
  if (rules.some((id) => id.startsWith('catalog:'))) return 'tool catalogue';
  if (rules.includes('policy:error')) return 'gateway error';
  if (rules.includes('pipeline:undecided')) return 'refused before the policy';
  if (r.refusedBy !== undefined && r.refusedBy !== 'authorize' && r.refusedBy !== 'record_decision')
    return 'refused before the policy';
  return undefined;
}

/** A completion's reference: a URI names a resource, anything else a prompt (the record keeps only the name). */
const URI = /^[a-z][a-z0-9+.-]*:/i;

function messageOf(r: AuditRecord, args: Record<string, unknown>): JsonRpcMessage {
  const method = r.method ?? '';
  if (method === 'response') return { jsonrpc: '2.0', id: r.seq, result: {} };
  const t = r.target;
  let params: Record<string, unknown> = {};
  switch (method) {
    case 'tools/call':
    case 'prompts/get':
      params = { ...(t !== undefined ? { name: t } : {}), arguments: args };
      break;
    case 'resources/read':
    case 'resources/subscribe':
      params = t !== undefined ? { uri: t } : {};
      break;
    case 'completion/complete':
      if (t !== undefined)
        params = { ref: URI.test(t) ? { type: 'ref/resource', uri: t } : { type: 'ref/prompt', name: t } };
      break;
    case 'subscriptions/listen':
      params = t !== undefined ? { notifications: { resourceSubscriptions: [t] } } : {};
      break;
  }
  return { jsonrpc: '2.0', id: r.seq, method, params };
}

/**
 * The view of one record, or why it is not decided again. `readsAnnotations`:
 * the proposed policy reads tool annotations, which no record holds.
 */
export function recordView(r: AuditRecord, readsAnnotations: boolean): RecordView | SkipWhy {
  const skip = skipWhy(r);
  if (skip) return skip;
  const authenticated = r.userSubject !== undefined;
  const maps: RecordView['maps'] = { claims: claimsMap(r.userClaims, authenticated) };
  let args: Record<string, unknown> = {};
  if (r.method === 'tools/call' || r.method === 'prompts/get') {
    const m = argumentsMap(r.args);
    maps[r.method === 'tools/call' ? 'args' : 'promptArgs'] = m;
    args = m.values;
  }
  if (r.method === 'tools/call' && readsAnnotations) maps.annotations = UNKNOWN_ALL;
  const claims = maps.claims!.values;
  const scopes = authenticated ? r.userScopes?.split(' ').filter(Boolean) : [];
  return {
    msg: messageOf(r, args),
    upstream: r.upstream ?? r.route ?? '',
    transport: r.transport ?? 'streamable-http',
    principal: (s) => ({
      client: {
        id: r.clientId ?? '',
        method: (r.clientMethod ?? 'none') as Principal['client']['method'],
        credentialId: r.credentialId ?? '',
      },
      ...(authenticated
        ? {
            user: {
              issuer: r.userIssuer ?? '',
              subject: r.userSubject!,
              claims,
              scopes: [...s],
              expiresAt: 0,
              tokenFingerprint: r.tokenFingerprint ?? '',
            },
          }
        : {}),
    }),
    ...(scopes ? { scopes } : {}),
    maps,
    before: {
      effect: r.decision!,
      stepUp: r.reason === 'insufficient scope',
      ruleIds: r.ruleIds ?? [],
      reason: r.reason ?? '',
    },
  };
}
