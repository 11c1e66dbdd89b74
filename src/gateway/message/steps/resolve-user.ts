import { toBehalfError } from '../../../errors.js';
import type { Principal } from '../../../identity/principal.js';
import { callFacts, userForMessage } from '../../../identity/user-context.js';
import { classifyMethod } from '../../../policy/method-table.js';
import { headerValue } from '../../http-io.js';
import { inboundOf } from '../../route.js';
import type { MessageContext, MessageStep } from '../context.js';

/**
 * The principal one message is decided for. Routes that take tokens only
 * (the default) use the request's; routes that accept signed user context
 * take the user from the message's assertion (src/identity/user-context.ts).
 */
async function messagePrincipal(m: MessageContext): Promise<Principal> {
  const { rt, route, req } = m.http;
  const principal = m.principal;
  if (!('method' in m.msg)) return principal;
  const inbound = inboundOf(route);
  const verifier = inbound.includes('signed-context') ? rt.userContext : undefined;
  const headerAssertion = verifier ? headerValue(req, verifier.header) : undefined;
  if (m.assertion === undefined && headerAssertion === undefined && (principal.user || !verifier)) return principal;
  const cls = classifyMethod(m.msg.method, m.policy.methods);
  const needsUser =
    cls !== undefined &&
    !(cls.kind === 'housekeeping' || cls.kind === 'client-roots' || (cls.kind === 'custom' && cls.decide === 'allow'));
  const user = await userForMessage({
    inbound,
    principal,
    msg: m.msg,
    metaAssertion: m.assertion,
    headerAssertion,
    verifier,
    resource: route.resource,
    needsUser,
    userRequired: rt.config.userAuth.required,
  });
  return user === principal.user ? principal : { client: principal.client, user };
}

export const resolveUser: MessageStep = {
  name: 'resolve_user',
  why: 'before any decision: a call is decided for the user it carries, and a missing or invalid user context refuses it',
  async run(m) {
    try {
      m.principal = await messagePrincipal(m);
    } catch (err) {
      // Refused as that call, on the record as an authentication failure with the reason (never the assertion).
      const e = toBehalfError(err);
      const name = 'method' in m.msg ? callFacts(m.msg).name : undefined;
      m.targetName = typeof name === 'string' ? name : undefined;
      m.recordKind = 'auth-failure';
      m.authz = { effect: 'deny', ruleIds: ['user-context'], reason: `${e.code}: ${e.message}` };
      m.refusal = { by: this.name, error: e };
    }
  },
};
