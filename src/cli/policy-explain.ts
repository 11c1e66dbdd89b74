import type { PolicyRuleConfig } from '../config/schema.js';
import type { Principal } from '../identity/principal.js';
import type { JsonRpcRequest } from '../jsonrpc.js';
import type { Authorization } from '../policy/authorize.js';
import type { RuleTrace } from '../policy/decide.js';
import { FEATURE_KEYS, type Target } from '../policy/rules.js';
import type { PolicySource } from '../policy/test-file.js';
import { globMatcher } from '../shared/glob.js';

/** One message decided through the gateway's own code path, with what every rule did. */
export interface CaseRun {
  msg: JsonRpcRequest;
  principal: Principal;
  upstream: string;
  transport: string;
  authz: Authorization;
  trace: RuleTrace[];
  /** The policy reads tool annotations, so the decision used the catalogue (as the gateway would). */
  catalogUsed: boolean;
}

/** One rule's part in a decision, in words and as data. */
export interface RuleStep extends RuleTrace {
  index: number;
  when?: string;
  scopes?: readonly string[];
  /** Why the rule does not apply to this request. */
  notApplied?: string;
  /** What its result did: allows, denies, no effect, fails closed, step-up. */
  outcome: string;
}

export interface Explanation {
  request: JsonRpcRequest;
  upstream: string;
  transport: string;
  principal: {
    client: { id: string; method: string };
    user?: { issuer: string; sub: string; scopes: string[]; claims: Record<string, unknown> };
  };
  policy: { path: string; version: string };
  rules: RuleStep[];
  decision: { effect: 'allow' | 'deny'; ruleIds: string[]; reason: string; stepUpScopes?: string[] };
  why: string;
  notes: string[];
}

/**
 * Why a rule did not apply, from its configuration. Mirrors
 * CompiledRule.appliesTo (rules.ts): upstreams, then methods, then the names
 * of tools/resources/prompts.
 */
export function whyNotApplied(
  r: PolicyRuleConfig,
  method: string,
  upstream: string,
  target: Target | undefined,
): string {
  if (r.upstreams && !globMatcher(r.upstreams)(upstream))
    return `upstream ${upstream} is not in upstreams [${r.upstreams.join(', ')}]`;
  if (r.methods && !globMatcher(r.methods)(method))
    return `method ${method} is not in methods [${r.methods.join(', ')}]`;
  const named = (['tools', 'resources', 'prompts'] as const).filter((k) => r[k] !== undefined);
  if (named.length === 0) return 'it names no methods, tools, resources or prompts';
  if (!target) return `${method} reaches no tool, resource or prompt, and the rule names only ${named.join(' and ')}`;
  const key = FEATURE_KEYS[target.feature];
  const list = r[key];
  if (!list) return `this is a ${target.feature} and the rule names only ${named.join(' and ')}`;
  return `${target.feature} ${target.name} is not in ${key} [${list.join(', ')}]`;
}

export function explain(run: CaseRun, source: PolicySource): Explanation {
  const configs = new Map(source.doc.rules.map((r) => [r.id, r]));
  const method = run.msg.method;
  const target = run.authz.target;
  const rules = run.trace.map((t, i): RuleStep => {
    const r = configs.get(t.id)!;
    const step: RuleStep = {
      index: i + 1,
      ...t,
      ...(r.when !== undefined ? { when: r.when } : {}),
      ...(r.scopes?.length ? { scopes: r.scopes } : {}),
      outcome: '',
    };
    if (!t.applies) {
      step.notApplied = whyNotApplied(r, method, run.upstream, target);
      step.outcome = 'does not apply';
    } else if (t.error !== undefined) {
      step.outcome = 'evaluation error: counts as a matching deny (fail closed)';
    } else if (t.matched === false) {
      step.outcome = 'no effect';
    } else if (t.effect === 'deny') {
      step.outcome = 'DENIES';
    } else if (t.missingScopes?.length) {
      step.outcome = `would allow, but the token lacks ${t.missingScopes.join(' ')} (step-up): does not allow`;
    } else {
      step.outcome = 'ALLOWS';
    }
    return step;
  });
  const u = run.principal.user;
  const { effect, ruleIds, reason, stepUpScopes } = run.authz;
  return {
    request: run.msg,
    upstream: run.upstream,
    transport: run.transport,
    principal: {
      client: { id: run.principal.client.id, method: run.principal.client.method },
      ...(u ? { user: { issuer: u.issuer, sub: u.subject, scopes: u.scopes, claims: u.claims } } : {}),
    },
    policy: { path: source.path, version: source.policy.version },
    rules,
    decision: { effect, ruleIds, reason, ...(stepUpScopes ? { stepUpScopes } : {}) },
    why: why(run, rules),
    notes: notes(run, source),
  };
}

function list(ids: string[]): string {
  return ids.join(', ');
}

/** The decision in one sentence, naming the rule semantics that produced it. */
function why(run: CaseRun, rules: RuleStep[]): string {
  // No rule consulted but ids given: the method table, the route or the tool catalogue decided.
  if (run.trace.length === 0 && run.authz.ruleIds.length > 0) {
    if (run.authz.listFeature)
      return `${run.msg.method} passes; the gateway filters the list item by item with the call rules (explain a call to one item to see why it is shown)`;
    return `decided before any rule: ${run.authz.reason}`;
  }
  const applied = rules.filter((r) => r.applies);
  const errors = applied.filter((r) => r.error !== undefined).map((r) => r.id);
  const denies = applied
    .filter((r) => r.error === undefined && r.matched !== false && r.effect === 'deny')
    .map((r) => r.id);
  const allows = applied
    .filter((r) => r.error === undefined && r.matched !== false && r.effect === 'allow' && !r.missingScopes?.length)
    .map((r) => r.id);
  const stepUp = applied.filter((r) => r.missingScopes?.length).map((r) => r.id);
  const although = allows.length ? `, although ${list(allows)} allow${allows.length === 1 ? 's' : ''}` : '';
  if (errors.length) return `an expression that cannot be evaluated denies (fail closed): ${list(errors)}${although}`;
  const deny = `${list(denies)} ${denies.length === 1 ? 'denies' : 'deny'}`;
  if (denies.length) return allows.length ? `deny beats allow: ${deny}${although}` : deny;
  if (allows.length) return `allowed by ${list(allows)}; no deny rule matched`;
  if (stepUp.length) {
    return `no allow takes effect: ${list(stepUp)} would allow but needs ${run.authz.stepUpScopes?.join(' ')}; the gateway answers 403 insufficient_scope so the client can ask for them (step-up)`;
  }
  return applied.length
    ? 'no matching allow rule: denied by default'
    : 'no rule applies to this request: denied by default (no matching allow denies)';
}

function notes(run: CaseRun, source: PolicySource): string[] {
  const out: string[] = [];
  if (run.catalogUsed)
    out.push(
      'the policy reads tool.annotations: the decision used the given tool catalogue (a tool missing from it is denied, as at the gateway)',
    );
  const limits = source.policy.rateLimits.filter((l) => l.appliesTo(run.upstream, run.authz.target)).map((l) => l.id);
  if (run.authz.effect === 'allow' && run.authz.input && limits.length)
    out.push(`rate limits ${limits.join(', ')} also apply at the gateway (stateful: not evaluated here)`);
  if (source.before) {
    const u = run.principal.user;
    if (!u && source.before.userRequired)
      out.push('the config requires a user: the gateway answers 401 before the policy is consulted');
    const lacking = source.before.scopes.filter((s) => !u?.scopes.includes(s));
    if (u && lacking.length)
      out.push(
        `the config requires scopes ${lacking.join(' ')} on every request: the gateway answers 403 before the policy is consulted`,
      );
  }
  return out;
}

export function formatExplanation(e: Explanation): string {
  const lines: string[] = [];
  const p = e.principal;
  lines.push(`request    ${JSON.stringify({ method: e.request.method, params: e.request.params ?? {} })}`);
  lines.push(`           upstream ${e.upstream}, transport ${e.transport}`);
  lines.push(`principal  client ${p.client.id} (${p.client.method})`);
  if (p.user) {
    lines.push(`           user ${p.user.sub} from ${p.user.issuer}, scopes [${p.user.scopes.join(' ')}]`);
    lines.push(`           claims ${JSON.stringify(p.user.claims)}`);
  } else {
    lines.push('           no user');
  }
  lines.push(`policy     ${e.policy.path} (version ${e.policy.version})`);
  lines.push('');
  if (e.rules.length === 0) {
    lines.push('rules      none consulted');
  } else {
    lines.push('rules, in order (deny beats allow; no matching allow denies; an evaluation error denies):');
    for (const r of e.rules) {
      const head = `  ${r.index}. ${r.id} (${r.effect}${r.scopes ? `, needs scopes ${r.scopes.join(' ')}` : ''})`;
      if (!r.applies) {
        lines.push(`${head}: does not apply: ${r.notApplied}`);
        continue;
      }
      lines.push(`${head}: applies`);
      if (r.when === undefined) {
        lines.push('       when   (none: always true)');
      } else {
        lines.push(
          r.when
            .trim()
            .split('\n')
            .map((l, i) => `${i ? '              ' : '       when   '}${l}`)
            .join('\n'),
        );
        lines.push(`       result ${r.error !== undefined ? `error: ${r.error}` : String(r.matched)}`);
      }
      lines.push(`       →      ${r.outcome}`);
    }
  }
  lines.push('');
  const d = e.decision;
  lines.push(
    `decision   ${d.effect.toUpperCase()} [${d.ruleIds.join(', ')}]: ${d.reason}${d.stepUpScopes ? `; step-up scopes ${d.stepUpScopes.join(' ')}` : ''}`,
  );
  lines.push(`why        ${e.why}`);
  for (const n of e.notes) lines.push(`note       ${n}`);
  return `${lines.join('\n')}\n`;
}
