import { filterListResult } from '../../../policy/authorize.js';
import type { MessageStep } from '../context.js';

export const filterList: MessageStep = {
  name: 'filter_list',
  why: 'after the upstream answers a list: a user sees only what the call-time rules would let her call',
  run(m) {
    const feature = m.authz?.listFeature;
    const response = m.response;
    if (!feature || !response || !('result' in response)) return;
    const { route, transport } = m.http;
    m.response = {
      ...response,
      result: filterListResult(m.policy, m.principal, route.name, transport, feature, response.result),
    };
  },
};
