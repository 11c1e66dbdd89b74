import type { PolicyRuleConfig } from '../../src/config/schema.js';

/**
 * The demo policy: reps reach only the customers their token says they own;
 * managers reach everything; only managers export. Everything else is denied
 * by default.
 */
export const DEMO_POLICY: PolicyRuleConfig[] = [
  {
    id: 'reps-list-own',
    effect: 'allow',
    description: 'A rep lists only her own customers (owner must be herself)',
    tools: ['list_customers'],
    when: 'user.claims.role == "rep" && has(args.owner) && args.owner == user.sub',
  },
  {
    id: 'reps-own-customers',
    effect: 'allow',
    description: 'A rep reads and updates the customers she owns',
    tools: ['get_customer', 'update_customer'],
    when: 'user.claims.role == "rep" && args.customer_id in user.claims.customers',
  },
  {
    id: 'managers-read-all',
    effect: 'allow',
    description: 'Managers read, update and export every customer',
    tools: ['list_customers', 'get_customer', 'update_customer', 'export_all_customers'],
    when: 'user.claims.role == "manager"',
  },
  {
    id: 'everyone-reads-prompts',
    effect: 'allow',
    description: 'The account summary prompt only for the customers one may read',
    prompts: ['account_summary'],
    when: 'user.claims.role == "manager" || (has(prompt.arguments.customer_id) && prompt.arguments.customer_id in user.claims.customers)',
  },
  {
    id: 'customer-resources',
    effect: 'allow',
    description: 'Customer resources for their owner or a manager',
    resources: ['crm://customers/*'],
    when: 'user.claims.role == "manager" || user.claims.customers.exists(c, resource.uri == "crm://customers/" + c)',
  },
];
