import { BehalfError, toBehalfError } from '../../../errors.js';
import { takeForCall } from '../../../policy/rate-limit.js';
import type { MessageStep } from '../context.js';

export const rateLimit: MessageStep = {
  name: 'rate_limit',
  why: "after authorization: only calls that would be allowed spend a token, so a denied flood cannot drain a user's bucket",
  async run(m) {
    const authz = m.authz;
    if (!authz || authz.effect !== 'allow' || !authz.input || !m.policy.rateLimits.length) return;
    const { input, target } = authz;
    let verdict;
    try {
      const taken = takeForCall(m.policy.rateLimits, m.http.rt.rateLimiter, m.http.route.name, input, target);
      // A shared store (Redis) answers later; the memory one answers now.
      verdict = taken instanceof Promise ? await taken : taken;
    } catch (err) {
      // A limit that cannot be counted refuses the call (fail closed), and the decision record says why.
      const error = toBehalfError(err);
      m.authz = { ...authz, effect: 'deny', ruleIds: ['rate-limit'], reason: `rate limits: ${error.message}` };
      m.refusal = { by: this.name, error };
      return;
    }
    if (verdict.ok) return;
    const retryAfterMs = verdict.retryAfterMs;
    m.authz = {
      ...authz,
      effect: 'deny',
      ruleIds: [`rate-limit:${verdict.limitId}`],
      reason: `rate limited; retry after ${retryAfterMs} ms`,
    };
    m.refusal = {
      by: this.name,
      error: new BehalfError('rate_limited'),
      data: { retryAfterMs, retryAfterSeconds: Math.ceil(retryAfterMs / 1000) },
    };
  },
};
