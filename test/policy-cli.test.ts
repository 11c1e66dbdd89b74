import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse as parseYaml, stringify } from 'yaml';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { readPolicyFile } from '../src/policy/source.js';
import { tempDir } from './helpers/tmp.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
const EXAMPLE_POLICY = join(EXAMPLES, 'policy.yaml');
const EXAMPLE_TESTS = join(EXAMPLES, 'policy.test.yaml');

function behalf(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, 'policy', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Writes files into a fresh folder and returns its path. */
function folder(files: Record<string, unknown>): string {
  const dir = tempDir();
  for (const [name, content] of Object.entries(files))
    writeFileSync(join(dir, name), typeof content === 'string' ? content : stringify(content));
  return dir;
}

const ALICE = {
  user: { sub: 'alice', claims: { role: 'rep', customers: ['c-100'] }, scopes: ['mcp:tools', 'crm:read'] },
};

describe('behalf policy test', () => {
  it('passes the example decision matrix and reports its count', () => {
    const cases = (parseYaml(readFileSync(EXAMPLE_TESTS, 'utf8')) as { tests: unknown[] }).tests.length;
    assert.ok(cases >= 40, `the matrix has ${cases} cases`);
    const r = behalf('test', EXAMPLE_TESTS);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^${cases} passed, 0 failed$`, 'm'));
    assert.equal(r.stdout.match(/^PASS /gm)?.length, cases);
    assert.match(r.stdout, /^PASS alice reads her own customer$/m);

    const json = behalf('test', EXAMPLE_TESTS, '--json');
    assert.equal(json.code, 0);
    const out = JSON.parse(json.stdout) as {
      passed: number;
      failed: number;
      results: { name: string; pass: boolean }[];
    };
    assert.deepEqual([out.passed, out.failed, out.results.length], [cases, 0, cases]);
  });

  it('every denial in the example matrix has a positive control: the same call allowed for someone', () => {
    const file = parseYaml(readFileSync(EXAMPLE_TESTS, 'utf8')) as {
      tests: {
        name: string;
        tool?: string;
        resource?: string;
        prompt?: string;
        request?: { method: string };
        args?: Record<string, unknown>;
        expect: { decision: string };
      }[];
    };
    const key = (t: (typeof file.tests)[number]) =>
      JSON.stringify([t.tool, t.resource, t.prompt, t.request?.method, t.args?.customer_id ?? t.args?.owner]);
    const allowed = new Set(file.tests.filter((t) => t.expect.decision === 'allow').map(key));
    const owned = (id: unknown) => typeof id === 'string' && /^c-[12]0[0-4]$/.test(id);
    // Default-deny cases: a tool no rule names has no rightful user.
    const noRightfulUser = new Set(['delete_customer']);
    for (const t of file.tests.filter((x) => x.expect.decision === 'deny' && !noRightfulUser.has(x.tool ?? ''))) {
      // Denials of a call that names a demo customer: the rightful user's call must be in the file.
      if (
        owned(t.args?.customer_id) ||
        ['alice', 'bob'].includes(String(t.args?.owner)) ||
        t.resource?.startsWith('crm://customers/c-')
      ) {
        const control = t.resource?.includes('..')
          ? JSON.stringify([undefined, 'crm://customers/c-200', undefined, undefined, undefined])
          : key(t);
        assert.ok(allowed.has(control), `no positive control for "${t.name}"`);
      }
    }
  });

  it('a wrong expectation fails, names the case and what was decided, and exits 1', () => {
    const file = parseYaml(readFileSync(EXAMPLE_TESTS, 'utf8')) as {
      policy: string;
      tests: { name: string; expect: unknown }[];
    };
    file.policy = EXAMPLE_POLICY;
    const wrong = file.tests.find((t) => t.name === "alice reads bob's customer")!;
    wrong.expect = { decision: 'allow', rules: ['reps-read-own'] };
    const dir = folder({ 'wrong.test.yaml': file });
    const r = behalf('test', join(dir, 'wrong.test.yaml'));
    assert.equal(r.code, 1);
    assert.match(
      r.stdout,
      /^FAIL alice reads bob's customer: expected allow \[reps-read-own\], got deny \[\] \(no rule allows this\)$/m,
    );
    assert.match(r.stdout, new RegExp(`^${file.tests.length - 1} passed, 1 failed$`, 'm'));
    // --verbose explains the failing case rule by rule.
    const v = behalf('test', join(dir, 'wrong.test.yaml'), '--verbose');
    assert.match(v.stdout, /reps-read-own \(allow\): applies[\s\S]*result false/);
  });

  it('a policy that does not compile exits 1 naming the rule, and for expressions the position', () => {
    const bad: [string, Record<string, unknown>, RegExp][] = [
      ['syntax error', { when: 'user.sub == ' }, /Unexpected token/],
      ['type error', { when: 'user.sub == 1' }, /no such overload: string == int/],
      ['unknown variable', { when: 'foo == 1' }, /Unknown variable: foo/],
      ['misspelt field', { when: 'user.subb == "x"' }, /No such key: subb/],
    ];
    for (const [what, rule, message] of bad) {
      const when = rule.when as string;
      const dir = folder({
        'p.yaml': {
          rules: [
            { id: 'fine', effect: 'allow', tools: ['get_customer'] },
            { id: 'broken-rule', effect: 'allow', tools: ['get_customer'], ...rule },
          ],
        },
        't.yaml': {
          policy: 'p.yaml',
          principals: { a: {} },
          tests: [{ name: 'x', as: 'a', tool: 'get_customer', expect: { decision: 'allow' } }],
        },
      });
      const r = behalf('test', join(dir, 't.yaml'));
      assert.equal(r.code, 1, what);
      assert.match(r.stderr, /does not compile/, what);
      assert.match(r.stderr, /rule broken-rule: invalid when expression/, what);
      assert.match(r.stderr, message, what);
      // The code frame quotes the expression and points into it.
      const frame = r.stderr.split('\n');
      const source = frame.findIndex((l) => l.includes(`1 | ${when}`));
      assert.ok(source > 0, `${what}: the expression is quoted`);
      const column = frame[source + 1]!.indexOf('^') - frame[source]!.indexOf('| ') - 2;
      const expected = {
        'syntax error': when.length,
        'type error': 0,
        'unknown variable': 0,
        'misspelt field': when.indexOf('subb'),
      }[what]!;
      assert.equal(column, expected, `${what}: caret position`);
    }

    const structural: [string, Record<string, unknown>, RegExp][] = [
      ['matches nothing', { id: 'idle-rule', effect: 'allow' }, /rules\.0 \(idle-rule\): matches nothing/],
      [
        'unknown upstream',
        { id: 'billing-rule', effect: 'allow', upstreams: ['billing'], tools: ['x'] },
        /rules\.0 \(billing-rule\)\.upstreams: billing matches no upstream \(known: crm\)/,
      ],
    ];
    for (const [what, rule, message] of structural) {
      const dir = folder({
        'p.yaml': { rules: [rule] },
        't.yaml': {
          policy: 'p.yaml',
          principals: { a: {} },
          tests: [{ name: 'x', as: 'a', tool: 'x', expect: { decision: 'deny' } }],
        },
      });
      const r = behalf('test', join(dir, 't.yaml'));
      assert.equal(r.code, 1, what);
      assert.match(r.stderr, message, what);
    }
  });

  it('rejects a malformed test file with the path of each problem', () => {
    const dir = folder({
      't.yaml': {
        policy: EXAMPLE_POLICY,
        principals: { a: { user: { sub: 'a', claim: {} } } },
        tests: [{ name: 'x', as: 'a', tool: 'x', resource: 'y', expect: { decision: 'allow' } }],
      },
      'u.yaml': {
        policy: EXAMPLE_POLICY,
        principals: { a: {} },
        tests: [
          { name: 'x', as: 'a', tool: 'x', expect: { decision: 'deny' } },
          { name: 'x', as: 'b', tool: 'x', expect: { decision: 'deny' } },
          { name: 'y', as: 'a', tool: 'x', upstream: 'nope', expect: { decision: 'deny' } },
        ],
      },
    });
    const t = behalf('test', join(dir, 't.yaml'));
    assert.equal(t.code, 1);
    assert.match(t.stderr, /principals\.a\.user: Unrecognized key: "claim"/);
    assert.match(t.stderr, /tests\.0: give exactly one of tool, resource, prompt and request/);
    const u = behalf('test', join(dir, 'u.yaml'));
    assert.equal(u.code, 1);
    assert.match(u.stderr, /tests\.1\.name: duplicate test name "x"/);
    assert.match(u.stderr, /tests\.1\.as: unknown principal "b"/);
    assert.equal(behalf('test').code, 2, 'no file is a usage error');
  });

  it("decides with the upstream's tool catalogue when a rule reads tool.annotations, as the gateway does", () => {
    const dir = folder({
      'p.yaml': {
        rules: [
          { id: 'tools', effect: 'allow', tools: ['*'] },
          {
            id: 'no-destructive',
            effect: 'deny',
            tools: ['*'],
            when: 'has(tool.annotations.destructiveHint) && tool.annotations.destructiveHint',
          },
        ],
      },
      't.yaml': {
        policy: 'p.yaml',
        principals: { a: { user: { sub: 'a' } } },
        tools: { wipe: { annotations: { destructiveHint: true } }, read: {} },
        tests: [
          { name: 'destructive', as: 'a', tool: 'wipe', expect: { decision: 'deny', rules: ['no-destructive'] } },
          { name: 'harmless', as: 'a', tool: 'read', expect: { decision: 'allow', rules: ['tools'] } },
          { name: 'unlisted', as: 'a', tool: 'other', expect: { decision: 'deny', rules: ['catalog:unlisted-tool'] } },
        ],
      },
    });
    const r = behalf('test', join(dir, 't.yaml'));
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});

describe('behalf policy explain', () => {
  const dir = folder({
    'p.yaml': {
      rules: [
        { id: 'reps-read', effect: 'allow', tools: ['get_customer'], when: 'user.claims.role == "rep"' },
        { id: 'no-vip', effect: 'deny', tools: ['get_customer'], when: 'args.customer_id == "c-vip"' },
        { id: 'files-only', effect: 'allow', upstreams: ['files'], tools: ['*'] },
      ],
    },
    'alice.json': JSON.stringify(ALICE),
  });
  const policy = join(dir, 'p.yaml');

  it('shows deny beating allow, naming both rules', () => {
    const r = behalf(
      'explain',
      '--policy',
      policy,
      '--upstreams',
      'crm,files',
      '--principal',
      `@${join(dir, 'alice.json')}`,
      '--request',
      '{"tool":"get_customer","args":{"customer_id":"c-vip"}}',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /request +\{"method":"tools\/call","params":\{"name":"get_customer","arguments":\{"customer_id":"c-vip"\}\}\}/,
    );
    assert.match(
      r.stdout,
      /1\. reps-read \(allow\): applies\n +when +user\.claims\.role == "rep"\n +result true\n +→ +ALLOWS/,
    );
    assert.match(
      r.stdout,
      /2\. no-vip \(deny\): applies\n +when +args\.customer_id == "c-vip"\n +result true\n +→ +DENIES/,
    );
    assert.match(r.stdout, /3\. files-only \(allow\): does not apply: upstream crm is not in upstreams \[files\]/);
    assert.match(r.stdout, /^decision +DENY \[no-vip\]: denied by rule$/m);
    assert.match(r.stdout, /^why +deny beats allow: no-vip denies, although reps-read allows$/m);
  });

  it('shows that no matching allow denies', () => {
    const r = behalf(
      'explain',
      '--policy',
      policy,
      '--upstreams',
      'crm,files',
      '--principal',
      '{user: {sub: dave, claims: {role: intern}}}',
      '--request',
      '{tool: get_customer, args: {customer_id: c-1}}',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /reps-read \(allow\): applies[\s\S]*?result false\n +→ +no effect/);
    assert.match(r.stdout, /^decision +DENY \[\]: no rule allows this$/m);
    assert.match(r.stdout, /^why +no matching allow rule: denied by default$/m);
    const none = behalf(
      'explain',
      '--policy',
      policy,
      '--upstreams',
      'crm,files',
      '--principal',
      '{}',
      '--request',
      '{resource: "crm://x"}',
    );
    assert.match(none.stdout, /reps-read \(allow\): does not apply: this is a resource and the rule names only tools/);
    assert.match(none.stdout, /^why +no rule applies to this request: denied by default/m);
  });

  it('an expression that cannot be evaluated denies, never allows', () => {
    const r = behalf(
      'explain',
      '--policy',
      policy,
      '--upstreams',
      'crm,files',
      '--principal',
      JSON.stringify(ALICE),
      '--request',
      '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_customer"}}',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.stdout) as {
      decision: { effect: string; ruleIds: string[]; reason: string };
      rules: { id: string; matched?: boolean; error?: string }[];
      why: string;
    };
    assert.deepEqual(e.decision, { effect: 'deny', ruleIds: ['no-vip'], reason: 'rule evaluation error' });
    assert.equal(e.rules.find((x) => x.id === 'reps-read')!.matched, true, 'the allow rule matched');
    assert.match(e.rules.find((x) => x.id === 'no-vip')!.error!, /customer_id/);
    assert.match(e.why, /cannot be evaluated denies \(fail closed\): no-vip, although reps-read allows/);

    const text = behalf('explain', '--test', EXAMPLE_TESTS, '--case', 'alice reads without a customer id');
    assert.match(
      text.stdout,
      /reps-read-own \(allow\): applies[\s\S]*?result error: .*customer_id\n +→ +evaluation error: counts as a matching deny \(fail closed\)/,
    );
    assert.match(text.stdout, /^decision +DENY \[reps-read-own\]: rule evaluation error$/m);
    assert.match(text.stdout, /^expected +deny \[reps-read-own\] reason "rule evaluation error": PASS$/m);
  });

  it('shows a step-up: the allow needs a scope the token lacks', () => {
    const r = behalf(
      'explain',
      '--test',
      EXAMPLE_TESTS,
      '--case',
      'alice without crm:write updates her own customer (step-up)',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /scopes \[mcp:tools crm:read\]/);
    assert.match(
      r.stdout,
      /reps-update-own \(allow, needs scopes crm:write\): applies[\s\S]*?result true\n +→ +would allow, but the token lacks crm:write \(step-up\): does not allow/,
    );
    assert.match(r.stdout, /^decision +DENY \[reps-update-own\]: insufficient scope; step-up scopes crm:write$/m);
    assert.match(r.stdout, /^why +.*403 insufficient_scope/m);
  });

  it('explains with a gateway config, and refuses bad arguments as usage errors', () => {
    const r = behalf(
      'explain',
      '--config',
      join(EXAMPLES, 'gateway.yaml'),
      '--upstream',
      'docs',
      '--principal',
      '{user: {sub: x}}',
      '--request',
      '{tool: search}',
      '--tools',
      '{search: {annotations: {readOnlyHint: true}}}',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /user x from https:\/\/idp\.example\.com/, "the config's issuer is the default");
    assert.match(r.stdout, /^decision +ALLOW \[docs-for-everyone\]/m);
    assert.match(r.stdout, /^note +the config requires scopes mcp:tools/m);

    assert.equal(behalf('explain', '--policy', policy, '--principal', '{}').code, 2);
    assert.equal(
      behalf('explain', '--policy', policy, '--config', 'x', '--principal', '{}', '--request', '{tool: x}').code,
      2,
    );
    assert.equal(
      behalf(
        'explain',
        '--policy',
        policy,
        '--upstreams',
        'crm,files',
        '--principal',
        '{}',
        '--request',
        '{tool: x, resource: y}',
      ).code,
      2,
    );
    assert.equal(
      behalf(
        'explain',
        '--policy',
        policy,
        '--upstreams',
        'crm,files',
        '--principal',
        '{}',
        '--request',
        '{tool: x}',
        '--upstream',
        'nope',
      ).code,
      2,
    );
    assert.equal(behalf('explain', '--test', EXAMPLE_TESTS, '--case', 'no such case').code, 2);
  });
});

describe('examples/policy.yaml', () => {
  it("is exactly the quickstart's DEMO_POLICY, so the example cannot drift from the demo", () => {
    assert.deepStrictEqual(readPolicyFile(EXAMPLE_POLICY), { rules: DEMO_POLICY, rateLimits: [], methods: {} });
  });
});
