/**
 * Decision time per call: the exact function the gateway runs for each
 * message (authorizeMessage: method table, rule matching, CEL evaluation),
 * over the quickstart's policy (CRM + filesystem rules), in-process.
 */
import { DEMO_POLICY, filesystemPolicy } from '../demo/quickstart/policy.js';
import { userClaims, DEMO_USERS } from '../demo/quickstart/users.js';
import type { Principal } from '../src/identity/principal.js';
import type { JsonRpcMessage } from '../src/jsonrpc.js';
import { authorizeMessage } from '../src/policy/authorize.js';
import { compilePolicy } from '../src/policy/policy.js';
import { tempDir } from '../test/helpers/tmp.js';
import { prepareUserFolders } from '../demo/quickstart/files.js';

export interface LatencySummary {
  medianUs: number;
  p99Us: number;
  calls: number;
}

function summarize(samples: Float64Array): { medianUs: number; p99Us: number } {
  const s = Array.from(samples).sort((a, b) => a - b);
  return { medianUs: s[Math.floor(s.length / 2)]!, p99Us: s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]! };
}

function principal(name: string): Principal {
  const u = DEMO_USERS.find((d) => d.name === name)!;
  return {
    client: { id: 'demo-agent', method: 'api-key', credentialId: 'k1' },
    user: {
      issuer: 'https://idp.example',
      subject: name,
      claims: userClaims(u),
      scopes: ['mcp:tools', 'crm:read', 'crm:write'],
      expiresAt: 0,
      tokenFingerprint: 'x',
    },
  };
}

export function benchPolicyEval(n = 100_000): Record<string, LatencySummary> {
  const root = prepareUserFolders(tempDir('behalf-bench-files-'));
  const policy = compilePolicy({ rules: [...DEMO_POLICY, ...filesystemPolicy(root)], rateLimits: [], methods: {} }, [
    'crm',
    'files',
  ]);
  const call = (name: string, args: Record<string, unknown>): JsonRpcMessage => ({
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name, arguments: args },
  });
  const cases: Record<string, { p: Principal; upstream: string; msg: JsonRpcMessage; expect: 'allow' | 'deny' }> = {
    'crm get_customer, own (allow)': {
      p: principal('alice'),
      upstream: 'crm',
      msg: call('get_customer', { customer_id: 'c-100' }),
      expect: 'allow',
    },
    "crm get_customer, other's (deny)": {
      p: principal('alice'),
      upstream: 'crm',
      msg: call('get_customer', { customer_id: 'c-200' }),
      expect: 'deny',
    },
    'files read_text_file, own (allow; realpath on disk)': {
      p: principal('alice'),
      upstream: 'files',
      msg: call('read_text_file', { path: `${root}/alice/welcome.txt` }),
      expect: 'allow',
    },
  };
  const out: Record<string, LatencySummary> = {};
  for (const [label, c] of Object.entries(cases)) {
    const run = () => authorizeMessage(policy, c.p, c.upstream, 'streamable-http', c.msg);
    if (run().effect !== c.expect) throw new Error(`${label}: expected ${c.expect}`);
    for (let i = 0; i < 5000; i++) run();
    const samples = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      run();
      samples[i] = Number(process.hrtime.bigint() - t) / 1000;
    }
    out[label] = { ...summarize(samples), calls: n };
  }
  return out;
}
