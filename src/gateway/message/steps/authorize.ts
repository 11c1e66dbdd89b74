import { BehalfError, describeError } from '../../../errors.js';
import { authorizeMessage, type Authorization, type ToolLookup } from '../../../policy/authorize.js';
import type { MessageContext, MessageStep } from '../context.js';

/** The upstream's catalogue, when the policy reads tool annotations; its failure is a deny with the cause logged. */
async function toolLookup(m: MessageContext): Promise<ToolLookup | Authorization | undefined> {
  if (!m.policy.needsToolCatalog || m.method !== 'tools/call') return undefined;
  try {
    return await m.session.tools.lookup();
  } catch (err) {
    m.http.rt.log(`tool list of ${m.http.route.name} could not be read; the call is denied: ${describeError(err)}`);
    return { effect: 'deny', ruleIds: ['catalog:unavailable'], reason: "the upstream's tool list could not be read" };
  }
}

function decideOrDeny(m: MessageContext, tools: ToolLookup | undefined): Authorization {
  const { route, transport } = m.http;
  try {
    return authorizeMessage(m.policy, m.principal, route.name, transport, m.msg, {
      forwardRoots: route.upstream.forwardClientRoots,
      tools,
    });
  } catch (err) {
    // Rule errors are already denies inside the policy engine; reaching here is a defect, and it must not allow.
    m.http.rt.log(`policy evaluation failed on ${route.name} ${m.method}; the call is denied: ${describeError(err)}`);
    return { effect: 'deny', ruleIds: ['policy:error'], reason: 'the policy could not be evaluated' };
  }
}

export const authorize: MessageStep = {
  name: 'authorize',
  why: 'after the user is known and before anything is recorded or forwarded: deny beats allow, unknown methods are denied',
  async run(m) {
    const tools = await toolLookup(m);
    m.authz = tools && 'effect' in tools ? tools : decideOrDeny(m, tools as ToolLookup | undefined);
    if (m.authz.effect === 'allow') return;
    const stepUp = m.authz.stepUpScopes;
    if (!stepUp) {
      // 2026-07-28 answers a method the server does not serve with Method not found (and 404): a denial that says no more than that.
      const unknown = m.session.kind === 'stateless' && m.authz.ruleIds[0] === 'method-table:unknown';
      m.refusal = { by: this.name, error: new BehalfError(unknown ? 'method_not_found' : 'forbidden') };
      return;
    }
    const scope = [...new Set([...m.http.rt.config.userAuth.scopes, ...stepUp])].join(' ');
    m.refusal = {
      by: this.name,
      error: new BehalfError('step_up_required', undefined, { scope }),
      data: { error: 'insufficient_scope', scope },
    };
  },
};
