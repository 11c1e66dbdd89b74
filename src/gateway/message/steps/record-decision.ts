import { randomUUID } from 'node:crypto';
import { principalFields } from '../../../audit/audit-log.js';
import { decisionInputFields } from '../../../audit/decision-inputs.js';
import type { AuditEvent } from '../../../audit/event.js';
import { BehalfError } from '../../../errors.js';
import type { MessageContext, MessageStep } from '../context.js';

/** Who, where and under which policy: the fields every record of one message shares. */
function auditBase(m: MessageContext): Partial<AuditEvent> {
  const { rt, route, transport } = m.http;
  const target = m.authz?.target;
  return {
    callId: randomUUID(),
    route: route.name,
    upstream: route.name,
    transport,
    sessionFingerprint: m.session.fingerprint,
    method: m.method,
    target: target?.name ?? m.targetName,
    downstreamStrategy: route.downstreamStrategy,
    policyVersion: m.policy.version,
    ...principalFields(m.principal),
    ...(m.continuationOf ? { continuationOf: m.continuationOf } : {}),
    ...(target && m.authz?.args ? rt.redactor.summarize(route.name, target.name, m.authz.args) : {}),
  };
}

export const recordDecision: MessageStep = {
  name: 'record_decision',
  why: 'before anything is forwarded, refusals included: a decision that cannot be written refuses the call (fail closed)',
  afterRefusal: true,
  async run(m) {
    const authz = m.authz ?? {
      effect: 'deny' as const,
      ruleIds: ['pipeline:undecided'],
      reason: 'no step decided this message',
    };
    m.audit = auditBase(m);
    const refusedBy = m.refusal?.by ?? (authz.effect === 'deny' ? this.name : undefined);
    try {
      const record = await m.http.rt.audit.mustAppend({
        ts: Date.now(),
        kind: m.recordKind,
        ...m.audit,
        decision: authz.effect,
        ruleIds: authz.ruleIds,
        reason: authz.reason,
        ...(refusedBy ? { refusedBy } : {}),
        ...decisionInputFields(m.principal, m.policy.claimsRead, m.http.rt.config.audit.claims.keep),
      });
      m.auditSeq = record.seq;
    } catch (err) {
      // The store's failure and its cause are logged by the audit log; the client learns only that the log is unavailable.
      m.refusal = {
        by: this.name,
        error: err instanceof BehalfError ? err : new BehalfError('audit_unavailable', undefined, {}, { cause: err }),
      };
      return;
    }
    if (authz.effect === 'allow' && !m.refusal) {
      m.allowed = true;
      return;
    }
    m.refusal ??= { by: this.name, error: new BehalfError('forbidden') };
    // A single request refused only for step-up scopes is answered 403 with a challenge listing them; in a batch it stays a JSON-RPC error.
    const single = m.http.messages?.length === 1 && !m.http.isBatch;
    const { error } = m.refusal;
    if (m.request && single && error.code === 'step_up_required') {
      throw new BehalfError('insufficient_scope', undefined, { scope: error.details.scope ?? '', audited: 'yes' });
    }
  },
};
