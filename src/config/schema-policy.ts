import { z } from 'zod';

/** The policy: rules, rate limits and custom methods, inline or in a policy file. */

export const PolicyRuleSchema = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/, 'letters, digits, _ . : - only')
      .describe('Stable id, named in every decision it makes'),
    effect: z.enum(['allow', 'deny']),
    description: z.string().optional(),
    methods: z
      .array(z.string())
      .optional()
      .describe(
        'JSON-RPC methods (globs) the rule applies to, e.g. [tools/call]; absent = every method that reaches its tools/resources/prompts',
      ),
    upstreams: z.array(z.string()).optional().describe('Upstream names or globs; absent = all'),
    tools: z.array(z.string()).optional().describe('Tool names or globs (*); matches tools/call'),
    resources: z
      .array(z.string())
      .optional()
      .describe('Resource URI globs; matches resources/read and resources/subscribe'),
    prompts: z.array(z.string()).optional().describe('Prompt names or globs; matches prompts/get'),
    when: z
      .string()
      .optional()
      .describe('CEL expression over user, client, request, upstream, tool, args, resource, prompt; must yield bool'),
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'an OAuth scope token'))
      .optional()
      .describe(
        'Step-up: an allow takes effect only when the user token carries these scopes; otherwise 403 insufficient_scope',
      ),
  })
  .strict();

export const RateLimitSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/, 'letters, digits, _ . : - only'),
    description: z.string().optional(),
    per: z
      .array(z.enum(['user', 'client', 'tool', 'upstream']))
      .min(1)
      .describe('What one bucket is for: e.g. [user] = one bucket per user, [user, tool] = one per user and tool'),
    upstreams: z.array(z.string()).optional().describe('Upstream names or globs; absent = all'),
    tools: z
      .array(z.string())
      .optional()
      .describe('Tool names or globs; absent = every decided call (tools, resources, prompts)'),
    capacity: z.number().int().positive().describe('Bucket size: the burst allowed'),
    refillPerSecond: z.number().positive().describe('Tokens added per second: the sustained rate'),
  })
  .strict();

export const CustomMethodSchema = z
  .object({
    reason: z.string().min(1).describe('Why this method may pass; recorded with every decision'),
    decide: z
      .enum(['allow', 'rules'])
      .default('rules')
      .describe('allow: housekeeping, always passes; rules: needs an allow rule whose methods name it'),
  })
  .strict();

/** The policy proper: inline in the gateway config or in its own file (watched and hot-reloaded). */
export const PolicyDocumentSchema = z
  .object({
    rules: z.array(PolicyRuleSchema).default([]),
    rateLimits: z.array(RateLimitSchema).default([]),
    methods: z
      .record(z.string().regex(/^[A-Za-z0-9_./-]+$/, 'a JSON-RPC method name'), CustomMethodSchema)
      .default({})
      .describe('JSON-RPC methods outside the built-in table that may pass; unknown methods are denied'),
  })
  .strict();

export const PolicySchema = PolicyDocumentSchema.extend({
  file: z
    .string()
    .optional()
    .describe(
      'Policy file (YAML: rules, rateLimits, methods), relative to this config; watched and reloaded on change or SIGHUP',
    ),
  watch: z.boolean().default(true).describe('Reload the policy file when it changes (SIGHUP always reloads)'),
}).strict();
