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
import {
  DEFAULT_ISSUER,
  PolicyTestFileSchema,
  type CaseRequest,
  type PolicyTestFile,
  type TestPrincipal,
} from './test-schema.js';

/**
 * Loading what `behalf policy test` runs: the policy (a policy file or a
 * gateway config) and the test file (its shape is in test-schema.ts).
 */

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
