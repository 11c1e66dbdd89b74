import type { MessageContext, MessageStep } from '../gateway/message/context.js';
import { traceFields } from './request-ops.js';
import type { TraceSpan } from './tracing.js';

/** The MCP semantic conventions' span name: the method, then the tool or prompt it targets (never a resource URI: it may carry data). */
function messageSpan(m: MessageContext): TraceSpan | undefined {
  const { http } = m;
  if (!http.span) return undefined;
  if (!m.span) {
    m.span = http.rt.ops.tracing!.child(http.span, m.method, {
      'mcp.method.name': m.method,
      'mcp.protocol.version': http.protocolVersion,
      // Not mcp.session.id: a session id is a bearer handle; its fingerprint is what the audit trail names.
      'behalf.session.fingerprint': m.session.fingerprint,
      'jsonrpc.protocol.version': '2.0',
    });
  }
  return m.span;
}

function portOf(u: URL): number {
  return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

/**
 * Runs one message step. With metrics or tracing on, its time is taken
 * (policy evaluation, the audit append, the upstream's answer have
 * histograms) and it gets a span; the decision is counted and logged once
 * it is on the record. Without either, it is a plain call: nothing is paid
 * for observability that is off.
 */
export async function runMessageStep(m: MessageContext, step: MessageStep): Promise<void> {
  const { ops } = m.http.rt;
  const parent = messageSpan(m);
  if (!parent && !ops.metrics) {
    try {
      await step.run(m);
    } finally {
      // Also when the decision step throws: a step-up refusal becomes the HTTP answer, and is still a decision.
      if (step.name === 'record_decision') decided(m);
    }
    return;
  }
  const span = parent && ops.tracing!.child(parent, step.name, undefined, step.name === 'forward');
  if (span && step.name === 'forward') {
    const upstream = m.http.route.upstream;
    const at = upstream.transport === 'stdio' ? undefined : new URL(upstream.url);
    span.set({ 'behalf.upstream': m.http.route.name, 'server.address': at?.hostname, 'server.port': at && portOf(at) });
    m.outboundTrace = span;
  }
  const started = performance.now();
  let threw = false;
  try {
    await step.run(m);
  } catch (err) {
    // The runner turns it into this step's refusal; here it only marks the step failed.
    threw = true;
    throw err;
  } finally {
    ops.metrics?.stepTime(step.name, m.http.route.name, (performance.now() - started) / 1000);
    if (span) {
      if (m.refusal?.by === step.name) span.fail(m.refusal.error.code);
      span.end();
    }
    if (step.name === 'record_decision') decided(m);
    else if (step.name === 'obtain_credential') credentialOutcome(m, threw);
  }
}

/** A strategy was asked for this call's credential: it gave one, or the step failed (the call is refused). */
function credentialOutcome(m: MessageContext, failed: boolean): void {
  const { rt, route } = m.http;
  const strategy = route.downstreamStrategy;
  if (!strategy || !m.allowed || !rt.delegation.has(route.name)) return;
  if (failed || m.credential) rt.ops.metrics?.credential(route.name, strategy, !failed);
}

/** The decision is on the record: counted, and logged with the record's seq (refusals at info, allowed calls at debug). */
function decided(m: MessageContext): void {
  const { rt, route } = m.http;
  const { ops } = rt;
  const authz = m.authz;
  const decision = m.allowed ? 'allow' : 'deny';
  const ruleIds = authz?.ruleIds ?? [];
  const tool = authz?.target?.feature === 'tool' ? authz.target.name : undefined;
  const refusal = m.refusal?.error.code;
  if (m.recordKind === 'auth-failure') ops.metrics?.authFailure(refusal ?? 'user_context_invalid');
  ops.metrics?.decided({ policy: m.policy, upstream: route.name, method: m.method, tool, decision, ruleIds, refusal });
  m.span?.set({ 'behalf.decision': decision, 'behalf.rule_id': ruleIds[0], 'gen_ai.tool.name': tool });
  const level = m.allowed ? 'debug' : 'info';
  if (!ops.logger.isLevelEnabled(level)) return;
  ops.logger[level](
    {
      event: 'decision',
      requestId: m.http.requestId,
      session: m.session.fingerprint,
      route: route.name,
      method: m.method,
      tool,
      decision,
      ruleIds,
      refusedBy: m.refusal?.by,
      code: refusal,
      auditSeq: m.auditSeq,
      clientId: m.principal.client.id,
      ...traceFields(m.http),
    },
    `${decision === 'allow' ? 'allowed' : 'refused'} ${m.method}${tool ? ` ${tool}` : ''} on ${route.name}${refusal ? `: ${refusal}` : ''}`,
  );
}

/** The message is answered: its end-to-end time, and the end of its span. */
export function messageDone(m: MessageContext): void {
  const { ops } = m.http.rt;
  ops.metrics?.callTime(m.http.route.name, m.policy, m.method, (performance.now() - m.started) / 1000);
  if (m.span) {
    if (m.refusal) m.span.fail(m.refusal.error.code);
    m.span.end();
  }
}
