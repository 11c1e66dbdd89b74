import { BehalfError, describeError } from '../../../errors.js';
import { takesMessageUsers } from '../../user-upstreams.js';
import type { MessageStep } from '../context.js';

export const obtainCredential: MessageStep = {
  name: 'obtain_credential',
  why: "after the decision is on the record and before forwarding: this user's credential (narrowed per tool) or no call — never a broader one",
  async run(m) {
    const { rt, route } = m.http;
    // A stdio child got its user's credential when it started (per-user process); notifications travel on the connection's own.
    if (!m.request || route.upstream.transport === 'stdio') return;
    if (takesMessageUsers(route) && !m.principal.user) return;
    const strategy = rt.delegation.get(route.name);
    if (!strategy) return;
    const tool = m.authz?.target?.feature === 'tool' ? m.authz.target.name : undefined;
    try {
      m.credential = await strategy.credentialFor({ principal: m.principal, upstream: route.name, tool });
    } catch (err) {
      // The fleet's state unreachable is the gateway's trouble, not the IdP's: 503, as everywhere else it is needed.
      if (err instanceof BehalfError && err.code === 'state_unavailable') throw err;
      // Why goes to the log and the outcome record; the caller gets the fixed public message (the code is not exposable).
      const why = err instanceof BehalfError ? err.message : describeError(err);
      rt.log(`downstream credential for ${route.name} failed: ${why}`);
      throw new BehalfError('downstream_credential_unavailable', why, {}, { cause: err });
    }
  },
};
