import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseYamlText } from '../config/yaml-file.js';
import { z } from 'zod';
import { formatIssues } from '../config/issues.js';
import { loadConfigFile } from '../config/load.js';
import type { PolicyDocument } from '../config/schema.js';
import { BehalfError } from '../errors.js';
import type { Principal } from '../identity/principal.js';
import type { JsonRpcRequest } from '../jsonrpc.js';
import { compilePolicy, PolicyError, type CompiledPolicy } from './policy.js';
import { policyFilePath, readPolicyFile } from './source.js';

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

/** A policy ready to test, with what a test needs to know about where it came from. */
export interface PolicySource {
  /** The policy file or config file it was read from. */
  path: string;
  doc: PolicyDocument;
  policy: CompiledPolicy;
  upstreams: readonly string[];
  /** Issuer of principals that name none: the config's first issuer. */
  defaultIssuer: string;
  /** Upstreams whose route forwards the agent's MCP roots (config only). */
  forwardRoots: ReadonlySet<string>;
  /** Checks the gateway makes before the policy, which a policy test does not (config only). */
  before?: { userRequired: boolean; scopes: readonly string[] };
}

/** A policy file, compiled against the given upstream names exactly as the gateway compiles it. */
export function loadPolicySource(path: string, upstreams: readonly string[]): PolicySource {
  const full = resolve(path);
  try {
    const doc = readPolicyFile(full);
    return {
      path: full,
      doc,
      policy: compilePolicy(doc, upstreams),
      upstreams,
      defaultIssuer: DEFAULT_ISSUER,
      forwardRoots: new Set(),
    };
  } catch (err) {
    if (err instanceof PolicyError) throw policyProblems(full, err);
    throw err;
  }
}

/** A gateway config, loaded and checked as `behalf gateway` loads it; its policy (inline or policy.file) and upstreams. */
export function loadConfigSource(path: string): PolicySource {
  const full = resolve(path);
  const { config, baseDir } = loadConfigFile(full);
  const file = policyFilePath(config, baseDir);
  const { rules, rateLimits, methods } = file ? readPolicyFile(file) : config.policy;
  const doc = { rules, rateLimits, methods };
  const upstreams = Object.keys(config.upstreams);
  return {
    path: file ?? full,
    doc,
    policy: compilePolicy(doc, upstreams),
    upstreams,
    defaultIssuer: config.userAuth.issuers[0]?.issuer ?? DEFAULT_ISSUER,
    forwardRoots: new Set(
      Object.entries(config.upstreams)
        .filter(([, u]) => u.forwardClientRoots)
        .map(([name]) => name),
    ),
    before: { userRequired: config.userAuth.required, scopes: config.userAuth.scopes },
  };
}

function policyProblems(path: string, err: PolicyError): BehalfError {
  // Expression problems carry a code frame on the following lines: indent it with its problem, keeping the caret aligned.
  const lines = err.problems.flatMap((p) => p.split('\n').map((l, i) => (l === '' ? l : `${i ? '    ' : '  '}${l}`)));
  return new BehalfError('policy_invalid', `policy ${path} does not compile:\n${lines.join('\n')}`, {}, { cause: err });
}

/** Parses JSON or YAML text (JSON is YAML) and validates it, naming the path of every problem. */
export function parseWith<T extends z.ZodType>(
  schema: T,
  text: string,
  what: string,
  code: 'policy_invalid' | 'usage' = 'policy_invalid',
): z.infer<T> {
  let raw: unknown;
  try {
    raw = parseYamlText(text, what);
  } catch (err) {
    throw new BehalfError(
      code,
      (err as Error).message.replace(/not valid YAML/, 'not valid YAML or JSON'),
      {},
      { cause: err },
    );
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new BehalfError(code, `${what} is invalid:\n${formatIssues(parsed.error.issues)}`);
  return parsed.data;
}

export interface LoadedTestFile {
  path: string;
  file: PolicyTestFile;
  source: PolicySource;
}

/** Reads a test file and the policy it names; every case's upstream must be one the policy knows. */
export function readTestFile(path: string): LoadedTestFile {
  const full = resolve(path);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (err) {
    throw new BehalfError('policy_invalid', `cannot read test file ${full}`, {}, { cause: err });
  }
  const file = parseWith(PolicyTestFileSchema, text, `test file ${full}`);
  const dir = dirname(full);
  const source =
    file.config !== undefined
      ? loadConfigSource(resolve(dir, file.config))
      : loadPolicySource(resolve(dir, file.policy!), file.upstreams ?? ['crm']);
  const problems = file.tests.flatMap((t, i) =>
    t.upstream === undefined || source.upstreams.includes(t.upstream)
      ? []
      : [`  tests.${i}.upstream: unknown upstream "${t.upstream}" (known: ${source.upstreams.join(', ')})`],
  );
  if (problems.length) throw new BehalfError('policy_invalid', `test file ${full} is invalid:\n${problems.join('\n')}`);
  return { path: full, file, source };
}

/** The principal the gateway would have authenticated: a fixed credential id, a token valid for an hour. */
export function toPrincipal(p: TestPrincipal, defaultIssuer: string): Principal {
  return {
    client: { id: p.client.id, method: p.client.method, credentialId: 'policy-test' },
    ...(p.user
      ? {
          user: {
            issuer: p.user.issuer ?? defaultIssuer,
            subject: p.user.sub,
            claims: p.user.claims,
            scopes: p.user.scopes,
            expiresAt: Math.floor(Date.now() / 1000) + 3600,
            tokenFingerprint: 'policy-test',
          },
        }
      : {}),
  };
}

/** The JSON-RPC request a case stands for. */
export function toMessage(c: CaseRequest, id: number | string = 1): JsonRpcRequest {
  const base = { jsonrpc: '2.0' as const, id };
  if (c.tool !== undefined) return { ...base, method: 'tools/call', params: { name: c.tool, arguments: c.args ?? {} } };
  if (c.resource !== undefined) return { ...base, method: 'resources/read', params: { uri: c.resource } };
  if (c.prompt !== undefined)
    return { ...base, method: 'prompts/get', params: { name: c.prompt, arguments: c.args ?? {} } };
  const r = c.request!;
  return { ...base, method: r.method, ...(r.params ? { params: r.params } : {}) };
}
