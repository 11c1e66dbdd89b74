import type { MessageStep } from '../context.js';

export const recordOutcome: MessageStep = {
  name: 'record_outcome',
  why: 'last: every allowed call that went on gets its outcome, latency and downstream credential id on the record',
  afterRefusal: true,
  run(m) {
    if (!m.allowed || !m.request || m.answeredLocally) return;
    const refused = m.refusal;
    const response = m.response;
    const outcome = refused
      ? refused.error.code
      : response && 'error' in response
        ? `error ${response.error.code}`
        : response?.result.resultType === 'input_required'
          ? 'input_required'
          : 'ok';
    const reason = refused?.error.code === 'downstream_credential_unavailable' ? refused.error.message : undefined;
    // The call has already been decided and answered: a failed outcome write is logged by the audit log, not turned into a refusal.
    m.http.rt.audit.tryAppend({
      ts: Date.now(),
      kind: 'outcome',
      ...m.audit,
      outcome,
      latencyMs: performance.now() - m.started,
      downstreamCredentialId: m.credential?.id,
      ...(reason ? { reason } : {}),
      ...(refused ? { refusedBy: refused.by } : {}),
    });
  },
};
