import { isRequest } from '../../../jsonrpc.js';
import { DEFAULT_USER_META_KEY, takeUserAssertion } from '../../../identity/user-context.js';
import type { MessageStep } from '../context.js';

export const stripUserContext: MessageStep = {
  name: 'strip_user_context',
  why: 'first, on every route: the signed user context is for the gateway only and must never reach an upstream',
  run(m) {
    const { msg, assertion } = takeUserAssertion(m.received, m.http.rt.userContext?.metaKey ?? DEFAULT_USER_META_KEY);
    m.msg = msg;
    m.assertion = assertion;
    m.method = 'method' in msg ? msg.method : 'response';
    m.request = isRequest(msg) ? msg : undefined;
  },
};
