import { z } from 'zod';

/**
 * The file `behalf policy test` runs (in the spirit of `opa test`): a policy
 * or gateway config, named principals, and cases that each build one JSON-RPC
 * message and state the decision the gateway must reach for it.
 */

const Json = z.record(z.string(), z.unknown());

export const DEFAULT_ISSUER = 'https://issuer.test';
const DEFAULT_CLIENT = { id: 'test-client', method: 'api-key' } as const;

export const TestPrincipalSchema = z
  .object({
    client: z
      .object({
        id: z.string().min(1).default(DEFAULT_CLIENT.id),
        method: z.enum(['api-key', 'mtls', 'client-credentials', 'oauth-token', 'none']).default(DEFAULT_CLIENT.method),
      })
      .strict()
      .default({ ...DEFAULT_CLIENT }),
    user: z
      .object({
        issuer: z.string().min(1).optional().describe(`default: the config's first issuer, else ${DEFAULT_ISSUER}`),
        sub: z.string().min(1),
        claims: Json.default({}),
        scopes: z.array(z.string()).default([]),
      })
      .strict()
      .optional()
      .describe('absent: a client with no user'),
  })
  .strict();

/** What the upstream lists about its tools, for rules that read tool.annotations. */
export const ToolCatalogSchema = z.record(z.string(), z.object({ annotations: Json.default({}) }).strict());

/** The message one case sends: exactly one of tool, resource, prompt or request. */
export const CaseRequestSchema = z.object({
  tool: z.string().min(1).optional().describe('tools/call of this tool with `args`'),
  resource: z.string().min(1).optional().describe('resources/read of this URI'),
  prompt: z.string().min(1).optional().describe('prompts/get of this prompt with `args`'),
  args: Json.optional(),
  request: z
    .object({ method: z.string().min(1), params: Json.optional() })
    .strict()
    .optional()
    .describe('any JSON-RPC method and params, e.g. resources/subscribe or completion/complete'),
});

/** A message on its own (`behalf policy explain --request`): a shorthand, or a JSON-RPC request whose id is ignored. */
export const StandaloneRequestSchema = z.preprocess(
  (v) =>
    typeof v === 'object' && v !== null && 'method' in v
      ? { request: { method: v.method, ...('params' in v ? { params: v.params } : {}) } }
      : v,
  CaseRequestSchema.strict().superRefine((c, ctx) => targetProblems(c, ctx)),
);

const EXPECT = z
  .object({
    decision: z.enum(['allow', 'deny']),
    rules: z.array(z.string()).optional().describe("the decision's rule ids, compared as a set"),
    reason: z.string().optional(),
    stepUpScopes: z.array(z.string()).optional().describe('compared as a set; [] = none'),
  })
  .strict();

export const TestCaseSchema = CaseRequestSchema.extend({
  name: z.string().min(1),
  as: z.string().min(1).describe('a principal of this file'),
  upstream: z.string().min(1).optional().describe('default: the first upstream'),
  transport: z.enum(['streamable-http', 'sse']).default('streamable-http'),
  tools: ToolCatalogSchema.optional().describe("this case's tool catalogue (replaces the file's)"),
  expect: EXPECT,
})
  .strict()
  .superRefine((c, ctx) => targetProblems(c, ctx));

export const PolicyTestFileSchema = z
  .object({
    policy: z.string().min(1).optional().describe('a policy file (rules, rateLimits, methods), relative to this file'),
    config: z
      .string()
      .min(1)
      .optional()
      .describe('a gateway config, relative to this file: its policy and upstreams are used'),
    upstreams: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('with `policy`: the upstream names rules may refer to; default [crm]'),
    tools: ToolCatalogSchema.optional().describe('the tool catalogue every case sees unless it gives its own'),
    principals: z.record(z.string().min(1), TestPrincipalSchema),
    tests: z.array(TestCaseSchema).min(1),
  })
  .strict()
  .superRefine((f, ctx) => {
    if ((f.policy === undefined) === (f.config === undefined))
      ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of policy and config' });
    if (f.config !== undefined && f.upstreams !== undefined)
      ctx.addIssue({ code: 'custom', path: ['upstreams'], message: "with config, the upstreams are the config's" });
    const seen = new Map<string, number>();
    for (const [i, t] of f.tests.entries()) {
      const first = seen.get(t.name);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['tests', i, 'name'],
          message: `duplicate test name "${t.name}" (also tests.${first})`,
        });
      else seen.set(t.name, i);
      if (!Object.hasOwn(f.principals, t.as)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tests', i, 'as'],
          message: `unknown principal "${t.as}" (known: ${Object.keys(f.principals).join(', ') || 'none'})`,
        });
      }
    }
  });

export type TestPrincipal = z.infer<typeof TestPrincipalSchema>;
export type ToolCatalog = z.infer<typeof ToolCatalogSchema>;
export type CaseRequest = z.infer<typeof CaseRequestSchema>;
export type PolicyTestCase = z.infer<typeof TestCaseSchema>;
export type PolicyTestFile = z.infer<typeof PolicyTestFileSchema>;

function targetProblems(c: CaseRequest, ctx: z.RefinementCtx): void {
  const given = (['tool', 'resource', 'prompt', 'request'] as const).filter((k) => c[k] !== undefined);
  if (given.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: `give exactly one of tool, resource, prompt and request${given.length ? ` (got ${given.join(', ')})` : ''}`,
    });
  }
  if (c.args !== undefined && c.tool === undefined && c.prompt === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['args'],
      message: 'args go with tool or prompt; for other methods put them in request.params',
    });
  }
}
