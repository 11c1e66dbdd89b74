import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import type { PolicyDocument } from '../../src/config/schema.js';
import { DEMO_POLICY, filesystemPolicy } from './policy.js';

/** A rate limit to show the feature: exports are heavy, so five per user per minute. */
export const DEMO_RATE_LIMITS: PolicyDocument['rateLimits'] = [
  {
    id: 'exports-per-user',
    description: 'Five exports per user per minute',
    per: ['user'],
    upstreams: ['crm'],
    tools: ['export_all_customers'],
    capacity: 5,
    refillPerSecond: 5 / 60,
  },
];

export function quickstartPolicy(filesRoot: string): PolicyDocument {
  // The CRM's rules hold on both of its routes: users with their own token (crm) and users in a signed context (crm-signed).
  const crm = DEMO_POLICY.map((r) => ({ ...r, upstreams: ['crm', 'crm-signed'] }));
  return { rules: [...crm, ...filesystemPolicy(filesRoot)], rateLimits: DEMO_RATE_LIMITS, methods: {} };
}

/**
 * The quickstart's policy as a file the gateway watches, so editing it shows
 * hot reload. It is written afresh at every start: the demo policy in code
 * stays the source of truth.
 */
export function writeQuickstartPolicy(path: string, filesRoot: string): void {
  const header = [
    "# The quickstart's policy. Edit and save: the gateway reloads it at once (a broken file is",
    '# rejected and the previous policy keeps serving). Rewritten from demo/quickstart/policy.ts at every start.',
    '# Try: behalf policy test examples/policy.test.yaml, behalf policy explain --help',
    '',
  ].join('\n');
  writeFileSync(path, header + stringify(quickstartPolicy(filesRoot), { lineWidth: 0 }), { mode: 0o600 });
}
