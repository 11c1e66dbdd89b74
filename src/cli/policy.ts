import { readFileSync } from 'node:fs';
import { BehalfError } from '../errors.js';
import type { Principal } from '../identity/principal.js';
import type { JsonRpcRequest } from '../jsonrpc.js';
import { authorizeMessage, type ToolLookup } from '../policy/authorize.js';
import type { RuleTrace } from '../policy/decide.js';
import {
  loadConfigSource,
  loadPolicySource,
  parseWith,
  readTestFile,
  toMessage,
  toPrincipal,
  type LoadedTestFile,
  type PolicySource,
} from '../policy/test-file.js';
import {
  StandaloneRequestSchema,
  TestPrincipalSchema,
  ToolCatalogSchema,
  type PolicyTestCase,
  type ToolCatalog,
} from '../policy/test-schema.js';
import { parse } from './args.js';
import { explain, formatExplanation, type CaseRun } from './policy-explain.js';
import { REPLAY_USAGE, replayCommand } from './policy-replay.js';

export const USAGE = `usage: behalf policy test FILE [--json] [--verbose]
         run the cases of a policy test file (YAML): PASS/FAIL per case, exit 0 when all pass
       behalf policy explain (--config FILE | --policy FILE [--upstreams a,b]) --principal JSON|@FILE
                             --request JSON|@FILE [--upstream NAME] [--transport streamable-http|sse]
                             [--tools JSON|@FILE] [--json]
       behalf policy explain --test FILE --case NAME [--json]
         show every rule's part in one decision: applies or why not, its when, result, step-up scopes
  --principal  {client: {id, method}, user: {issuer, sub, claims, scopes}}; no user = a client alone
  --request    {tool, args} | {resource: URI} | {prompt, args} | {method, params}
  --upstreams  with --policy: upstream names rules may refer to (default crm); --upstream default: the first
  --tools      the upstream's tool catalogue, {NAME: {annotations}}, for rules on tool.annotations
       behalf policy replay --policy NEW.yaml (--config FILE | --db PATH | --postgres URL) [...]
         decide the recorded decisions again with a proposed policy (behalf policy replay --help)
Each decision is made by the gateway's own authorizeMessage. Not part of it: client and user
authentication and the config's userAuth.scopes (checked before the policy), and rate limits
(stateful, counted per call at the gateway).`;

function usage(message: string): BehalfError {
  return new BehalfError('usage', `${message}\n\n${USAGE}`);
}

/** `behalf policy test|explain|replay`: decides messages exactly as the gateway does, without a gateway. */
export function policyCommand(argv: string[]): void | Promise<void> {
  const [sub, ...rest] = argv;
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${sub === 'replay' ? REPLAY_USAGE : USAGE}\n`);
    return;
  }
  switch (sub) {
    case 'test':
      return testCommand(rest);
    case 'explain':
      return explainCommand(rest);
    case 'replay':
      return replayCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      throw usage(`unknown subcommand ${sub}`);
  }
}

/** Decides one message through authorizeMessage, as dispatch.ts does, recording each rule's trace. */
function runMessage(
  source: PolicySource,
  principal: Principal,
  upstream: string,
  transport: string,
  msg: JsonRpcRequest,
  catalog: ToolCatalog | undefined,
): CaseRun {
  // The gateway reads the upstream's tool list only when a rule reads annotations, and only for tools/call.
  const catalogUsed = source.policy.needsToolCatalog && msg.method === 'tools/call';
  const tools: ToolLookup | undefined = catalogUsed
    ? (name) => (catalog && Object.hasOwn(catalog, name) ? catalog[name] : undefined)
    : undefined;
  const trace: RuleTrace[] = [];
  const authz = authorizeMessage(source.policy, principal, upstream, transport, msg, {
    forwardRoots: source.forwardRoots.has(upstream),
    tools,
    trace,
  });
  return { msg, principal, upstream, transport, authz, trace, catalogUsed };
}

function runCase(t: LoadedTestFile, c: PolicyTestCase, index: number): CaseRun {
  const { file, source } = t;
  const principal = toPrincipal(file.principals[c.as]!, source.defaultIssuer);
  return runMessage(
    source,
    principal,
    c.upstream ?? source.upstreams[0]!,
    c.transport,
    toMessage(c, index + 1),
    c.tools ?? file.tools,
  );
}

interface CaseResult {
  name: string;
  pass: boolean;
  expected: PolicyTestCase['expect'];
  actual: { decision: 'allow' | 'deny'; rules: string[]; reason: string; stepUpScopes?: string[] };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

function check(c: PolicyTestCase, run: CaseRun): CaseResult {
  const { effect, ruleIds, reason, stepUpScopes } = run.authz;
  const e = c.expect;
  const pass =
    e.decision === effect &&
    (e.rules === undefined || sameSet(e.rules, ruleIds)) &&
    (e.reason === undefined || e.reason === reason) &&
    (e.stepUpScopes === undefined || sameSet(e.stepUpScopes, stepUpScopes ?? []));
  return {
    name: c.name,
    pass,
    expected: e,
    actual: { decision: effect, rules: ruleIds, reason, ...(stepUpScopes ? { stepUpScopes } : {}) },
  };
}

function describeExpected(e: PolicyTestCase['expect']): string {
  return [
    e.decision,
    ...(e.rules ? [`[${e.rules.join(', ')}]`] : []),
    ...(e.reason !== undefined ? [`reason "${e.reason}"`] : []),
    ...(e.stepUpScopes ? [`step-up scopes [${e.stepUpScopes.join(' ')}]`] : []),
  ].join(' ');
}

function describeActual(a: CaseResult['actual']): string {
  return `${a.decision} [${a.rules.join(', ')}] (${a.reason}${a.stepUpScopes ? `; step-up scopes ${a.stepUpScopes.join(' ')}` : ''})`;
}

function testCommand(argv: string[]): void {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' } });
  if (positionals.length !== 1) throw usage(positionals.length ? 'give one test file' : 'a test file is required');
  const loaded = readTestFile(positionals[0]!);
  const results = loaded.file.tests.map((c, i) => {
    const run = runCase(loaded, c, i);
    return { result: check(c, run), run };
  });
  const passed = results.filter((r) => r.result.pass).length;
  const failed = results.length - passed;
  if (values.json) {
    const out = {
      file: loaded.path,
      policy: { path: loaded.source.path, version: loaded.source.policy.version },
      passed,
      failed,
      results: results.map((r) => r.result),
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    const lines: string[] = [];
    if (values.verbose)
      lines.push(
        `policy ${loaded.source.path} (version ${loaded.source.policy.version}), ${results.length} cases from ${loaded.path}`,
      );
    for (const { result, run } of results) {
      if (result.pass) {
        lines.push(`PASS ${result.name}${values.verbose ? `: ${describeActual(result.actual)}` : ''}`);
      } else {
        lines.push(
          `FAIL ${result.name}: expected ${describeExpected(result.expected)}, got ${describeActual(result.actual)}`,
        );
        if (values.verbose)
          lines.push(
            formatExplanation(explain(run, loaded.source))
              .trimEnd()
              .split('\n')
              .map((l) => (l ? `    ${l}` : l))
              .join('\n'),
          );
      }
    }
    lines.push(`${passed} passed, ${failed} failed`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (failed) process.exitCode = 1;
}

/** A JSON (or YAML) argument given inline or as @FILE. */
function argument(value: string, what: string): string {
  if (!value.startsWith('@')) return value;
  try {
    return readFileSync(value.slice(1), 'utf8');
  } catch (err) {
    throw new BehalfError('usage', `cannot read ${what} file ${value.slice(1)}`, {}, { cause: err });
  }
}

function explainCommand(argv: string[]): void {
  const { values, positionals } = parse(argv, {
    config: { type: 'string', short: 'c' },
    policy: { type: 'string' },
    upstreams: { type: 'string' },
    principal: { type: 'string' },
    request: { type: 'string' },
    upstream: { type: 'string' },
    transport: { type: 'string' },
    tools: { type: 'string' },
    test: { type: 'string' },
    case: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length) throw usage(`unexpected argument ${positionals[0]}`);
  let run: CaseRun;
  let source: PolicySource;
  let expected: { text: string; result: CaseResult } | undefined;
  if (values.test !== undefined || values.case !== undefined) {
    if (values.test === undefined || values.case === undefined) throw usage('--test and --case go together');
    const others = (
      ['config', 'policy', 'upstreams', 'principal', 'request', 'upstream', 'transport', 'tools'] as const
    ).filter((k) => values[k] !== undefined);
    if (others.length) throw usage(`--test takes everything from the case; drop --${others.join(', --')}`);
    const loaded = readTestFile(values.test);
    const index = loaded.file.tests.findIndex((t) => t.name === values.case);
    if (index < 0) throw new BehalfError('usage', `${loaded.path} has no case named "${values.case}"`);
    source = loaded.source;
    const c = loaded.file.tests[index]!;
    run = runCase(loaded, c, index);
    expected = { text: describeExpected(c.expect), result: check(c, run) };
  } else {
    if ((values.config === undefined) === (values.policy === undefined))
      throw usage('give one of --config and --policy (or --test with --case)');
    if (values.config !== undefined && values.upstreams !== undefined)
      throw usage('--upstreams goes with --policy; a config names its own');
    if (values.principal === undefined || values.request === undefined)
      throw usage('--principal and --request are required');
    if (values.transport !== undefined && values.transport !== 'streamable-http' && values.transport !== 'sse')
      throw usage('--transport is streamable-http or sse');
    const upstreams = values.upstreams
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean) ?? ['crm'];
    if (upstreams.length === 0) throw usage('--upstreams names at least one upstream');
    source =
      values.config !== undefined ? loadConfigSource(values.config) : loadPolicySource(values.policy!, upstreams);
    const upstream = values.upstream ?? source.upstreams[0]!;
    if (!source.upstreams.includes(upstream))
      throw new BehalfError(
        'usage',
        `--upstream: unknown upstream ${upstream} (known: ${source.upstreams.join(', ')})`,
      );
    const p = parseWith(TestPrincipalSchema, argument(values.principal, '--principal'), '--principal', 'usage');
    const msg = toMessage(
      parseWith(StandaloneRequestSchema, argument(values.request, '--request'), '--request', 'usage'),
    );
    const catalog =
      values.tools === undefined
        ? undefined
        : parseWith(ToolCatalogSchema, argument(values.tools, '--tools'), '--tools', 'usage');
    run = runMessage(
      source,
      toPrincipal(p, source.defaultIssuer),
      upstream,
      values.transport ?? 'streamable-http',
      msg,
      catalog,
    );
  }
  const e = explain(run, source);
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify(expected ? { ...e, expected: expected.result.expected, pass: expected.result.pass } : e, null, 2)}\n`,
    );
    return;
  }
  process.stdout.write(formatExplanation(e));
  if (expected) process.stdout.write(`expected   ${expected.text}: ${expected.result.pass ? 'PASS' : 'FAIL'}\n`);
}
