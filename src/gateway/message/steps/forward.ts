import { BehalfError, describeError } from '../../../errors.js';
import { localAnswer, takesMessageUsers, upstreamFor } from '../../user-upstreams.js';
import type { MessageStep } from '../context.js';
import { sendTraced } from '../../../ops/trace-propagation.js';

export const forward: MessageStep = {
  name: 'forward',
  why: "only an allowed, recorded call with its credential reaches the upstream, on this session's own connection",
  async run(m) {
    const { http, session, principal } = m;
    // Revoked while this call was being decided: known now, so not forwarded (docs/revocation.md).
    const revoked = http.rt.revocations?.service.check(principal);
    if (revoked) throw new BehalfError('forbidden', `revoked while in flight: ${revoked.kind}`);
    // A signed-context route's session has no user of its own: its housekeeping stays with the gateway (user-upstreams.ts).
    const noUserHere = takesMessageUsers(http.route) && !principal.user;
    if (!m.request) {
      if (noUserHere) return;
      try {
        await (await upstreamFor(http, session, principal)).send(m.msg);
      } catch (err) {
        // A notification has no answer to carry the failure: the log does.
        http.rt.log(`${m.method} to ${http.route.name} not delivered: ${describeError(err)}`);
      }
      return;
    }
    if (noUserHere) {
      m.response = localAnswer(m.request);
      m.answeredLocally = true;
      return;
    }
    try {
      const upstream = await upstreamFor(http, session, principal);
      m.response = await sendTraced(m, m.request, (req) =>
        upstream.request(req, { credential: m.credential, related: http.relatedSink }),
      );
    } catch (err) {
      if (err instanceof BehalfError) throw err;
      // Anything else (an upstream refusing the gateway's own initialize, a transport defect) is the upstream being unavailable.
      http.rt.log(`${m.method} to ${http.route.name} failed: ${describeError(err)}`);
      throw new BehalfError('upstream_unavailable', undefined, {}, { cause: err });
    }
  },
};
