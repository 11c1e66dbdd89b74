/**
 * What a user sees is what she may call (docs/architecture.md §3 step 8, BND-06; ToolHive
 * #6217, Kong 3.13.0.1), as properties over generated principals and calls,
 * for both demo policies: DEMO_POLICY on the CRM upstream and
 * filesystemPolicy(root) on server-filesystem over a real folder tree.
 *
 * "Listed" is what filterListResult keeps of the upstream's catalogue (the
 * gateway's own list filter); "allowed" is what authorizeMessage decides (the
 * gateway's own call-time decision). The catalogues are the real ones: the
 * demo CRM's tools, prompt, resources and resource template, read from the
 * server itself, and server-filesystem's tools as FILESYSTEM_TOOL_PATHS names
 * them, each plus items a later server version might add that no rule names.
 *
 * (a) Nothing unlisted is callable: for every generated call — any
 *     arguments, own and others' ids, paths in and out of her folder, missing
 *     and wrong-typed arguments, plus the witness calls of (b) — an allowed
 *     tools/call names a listed tool, an allowed prompts/get (or prompt
 *     completion) a listed prompt, and an allowed resources/read (subscribe,
 *     resource completion) of a URI the upstream declares (a resource it
 *     lists, or an instance of one of its templates) reaches a URI listed as
 *     a resource or an instance of a listed template. Principals include no
 *     user at all and missing or mistyped role/customers claims.
 * (b) Everything listed passes the tool-level rules, i.e. some call to it is
 *     allowed, or refused only for step-up scopes. "Tool-level" is what
 *     visible.ts can know without arguments: each applicable rule is
 *     evaluated with no `args` / `prompt.arguments`; one that yields
 *     true/false yields it for every call, and one that throws while reading
 *     arguments is "undecided" and counts as a possible allow. So "listed"
 *     means "no argument-independent deny or error, and some allow that is
 *     true or depends on the arguments" — an over-approximation of "some call
 *     is allowed". The property checks that it is tight: among witness calls
 *     built from the principal (her own customer ids, owner = herself, a path
 *     in her own folder) one is allowed or step-up-only. Principals: a role
 *     claim (rep/manager/other) and a list of the CRM's ids as `customers`;
 *     for the filesystem, a subject whose folder exists (for one whose folder
 *     does not, path tools are listed by design — as far as the listing can
 *     tell, some path might be hers — and every path call is refused).
 *
 * Known gaps, kept as TODO tests so their counterexamples stay visible:
 * (b) fails when a claim a rule reads is missing or mistyped (visible.ts
 * treats any error of an args-reading rule as "undecided"), and (a) fails for
 * resource templates (judged by their literal URI) and for URIs the glob
 * `crm://customers/*` admits beyond the CRM's template.
 * (c) Decisions never throw, every deny says why (non-empty reason; an
 *     evaluation error names the rules that failed), and any rule evaluation
 *     error makes the decision a deny.
 * (d) The engine decides what each policy says: an independent plain-code
 *     reading of both policies (an oracle) agrees on every generated call.
 *
 * Then one integration check through the real gateway: tools/list per demo
 * user equals the engine's visible set, and each listed tool has a
 * successful witness call.
 */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { seedCustomers } from '../demo/crm/data.js';
import { createCrmServer } from '../demo/crm/server.js';
import { filesystemServerEntry, prepareUserFolders } from '../demo/quickstart/files.js';
import { DEMO_POLICY, FILESYSTEM_TOOL_PATHS, filesystemPolicy } from '../demo/quickstart/policy.js';
import { DEMO_SCOPE, DEMO_USERS, userClaims } from '../demo/quickstart/users.js';
import type { PolicyRuleConfig } from '../src/config/schema.js';
import type { Principal } from '../src/identity/principal.js';
import type { JsonRpcMessage } from '../src/jsonrpc.js';
import { authorizeMessage, filterListResult, type Authorization } from '../src/policy/authorize.js';
import { decide, type RuleTrace } from '../src/policy/decide.js';
import { pathWithin } from '../src/policy/path-within.js';
import { compilePolicy, type CompiledPolicy } from '../src/policy/policy.js';
import { connectStreamable } from './helpers/clients.js';
import { CRM_STDIO, startFixture, type Fixture } from './helpers/fixture.js';
import { tempDir } from './helpers/tmp.js';
import { closeAll } from './helpers/transport-clients.js';

const RUNS = { a: 300, b: 400, c: 600, d: 1000 } as const;
/** fast-check's report names the failing assertion, not only the counterexample. */
const REPORT = { includeErrorInReport: true } as const;
const TRANSPORT = 'streamable-http';

// ------------------------------------------------------------------ catalogues

interface Catalogue {
  tools: Array<{ name: string; annotations?: Record<string, unknown> }>;
  prompts: Array<{ name: string }>;
  resources: Array<{ uri: string }>;
  resourceTemplates: Array<{ uriTemplate: string }>;
}

interface Listed {
  tools: Set<string>;
  prompts: Set<string>;
  resources: Set<string>;
  templates: string[];
}

/** What the gateway's list filter keeps of a catalogue for `p`. */
function listedFor(policy: CompiledPolicy, upstream: string, p: Principal, cat: Catalogue): Listed {
  const keep = <T>(feature: 'tool' | 'prompt' | 'resource' | 'resource-template', key: string, items: T[]): T[] =>
    filterListResult(policy, p, upstream, TRANSPORT, feature, { [key]: items })[key] as T[];
  return {
    tools: new Set(keep('tool', 'tools', cat.tools).map((t) => t.name)),
    prompts: new Set(keep('prompt', 'prompts', cat.prompts).map((x) => x.name)),
    resources: new Set(keep('resource', 'resources', cat.resources).map((r) => r.uri)),
    templates: keep('resource-template', 'resourceTemplates', cat.resourceTemplates).map((t) => t.uriTemplate),
  };
}

/** RFC 6570 level-1 template → matcher (a simple expansion never yields `/`). */
function templateMatches(template: string, uri: string): boolean {
  const re = new RegExp(
    `^${template
      .split(/\{[^}]+\}/)
      .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^/]+')}$`,
  );
  return re.test(uri);
}

function instantiate(template: string, value: string): string {
  return template.replace(/\{[^}]+\}/g, encodeURIComponent(value));
}

// ------------------------------------------------------------------ principals

const CUSTOMERS = seedCustomers();
const CUSTOMER_IDS = CUSTOMERS.map((c) => c.id);
/** Users with a folder under the files root; the others in SUBS have none. */
const FOLDER_USERS = ['alice', 'bob', 'carol', 'dave', 'alice2'];
const SUBS = [...FOLDER_USERS, 'eve', 'Alice', '', '.', '..', 'a/b', '../bob', 'alice/..'];
const ROLES = ['rep', 'manager', 'other'] as const;
const SCOPES = ['mcp:tools', 'crm:read', 'crm:write'];

interface Shape {
  client: string;
  /** undefined: no user at all (allowUnauthenticated / required: false). */
  sub: string | undefined;
  /** undefined: the claim is missing from the token. */
  role: unknown;
  customers: unknown;
  scopes: string[];
}

function principalOf(s: Shape): Principal {
  const claims: Record<string, unknown> = {};
  if (s.role !== undefined) claims.role = s.role;
  if (s.customers !== undefined) claims.customers = s.customers;
  return {
    client: { id: s.client, method: 'api-key', credentialId: 'k1' },
    ...(s.sub === undefined
      ? {}
      : {
          user: {
            issuer: 'https://idp.example',
            subject: s.sub,
            claims,
            scopes: s.scopes,
            expiresAt: 0,
            tokenFingerprint: 'f',
          },
        }),
  };
}

interface ShapeOptions {
  /** Add what a careless IdP might send: no user, a missing or non-list `customers`, a non-string role. */
  wide?: boolean;
  /** Let `customers` name a customer the CRM does not list (c-999). */
  unknownIds?: boolean;
  /** Leave out principals without a role claim. */
  roleRequired?: boolean;
}

/**
 * Principals from the brief's pool: a demo or other subject, role
 * rep/manager/other/missing, `customers` a subset of the CRM's ids (empty
 * included), any subset of scopes; widened by `o`.
 */
function shapeArb(o: ShapeOptions = {}): fc.Arbitrary<Shape> {
  const roles = o.roleRequired ? [...ROLES] : [...ROLES, undefined];
  const role = o.wide
    ? fc.oneof(fc.constantFrom<unknown>(...roles), fc.constantFrom<unknown>(42, null, ['rep'], 'REP', 'manager '))
    : fc.constantFrom<unknown>(...roles);
  const ids = fc.subarray(o.unknownIds ? [...CUSTOMER_IDS, 'c-999'] : CUSTOMER_IDS);
  const customers = o.wide
    ? fc.oneof(
        { weight: 4, arbitrary: ids },
        fc.constantFrom<unknown>(undefined, 'c-100', [100], ['c-100', 7], {}, null),
      )
    : ids;
  return fc.record({
    client: fc.constantFrom('agent', 'other-agent', 'x'),
    sub: o.wide ? fc.option(fc.constantFrom(...SUBS), { nil: undefined, freq: 8 }) : fc.constantFrom(...SUBS),
    role,
    customers,
    scopes: fc.subarray(SCOPES),
  });
}

// ------------------------------------------------------------------ calls

let root = '';
const paths = (): string[] => [
  ...FOLDER_USERS.flatMap((u) => [join(root, u), join(root, u, 'welcome.txt'), join(root, u, 'new', 'file.txt')]),
  join(root, 'eve', 'x.txt'),
  root,
  `${root}/alice/../bob/welcome.txt`,
  join(root, 'alice', 'to-bob', 'welcome.txt'),
  join(root, 'alice', 'to-bob'),
  `${root}/alice/./sub/..`,
  'alice/welcome.txt',
  '../bob',
  '~/welcome.txt',
  '~',
  '',
  `${join(root, 'alice', 'welcome.txt')}\0.png`,
  '/etc/passwd',
];

const WRONG_TYPES = [42, -1, 0, true, false, null, [], {}, ['c-100'], { id: 'c-100' }] as const;

function valueArb(): fc.Arbitrary<unknown> {
  const pathArb = fc.constantFrom(...paths());
  return fc.oneof(
    fc.constantFrom<unknown>(...CUSTOMER_IDS, 'c-999', '', 'C-100', 'c-100 ', ' c-100'),
    fc.constantFrom<unknown>(...SUBS),
    pathArb,
    fc.array(pathArb, { maxLength: 3 }),
    fc.constantFrom<unknown>(...WRONG_TYPES),
    fc.string({ maxLength: 8 }),
  );
}

/** Arguments with any subset of the names the two upstreams' tools read, plus noise. */
function argsArb(): fc.Arbitrary<Record<string, unknown>> {
  const v = valueArb();
  return fc
    .tuple(
      fc.record(
        { owner: v, customer_id: v, path: v, paths: v, source: v, destination: v, notes: v, pattern: v },
        { requiredKeys: [] },
      ),
      fc.dictionary(fc.string({ maxLength: 6 }), v, { maxKeys: 2 }),
    )
    .map(([known, extra]) => ({ ...extra, ...known }));
}

let nextId = 1;
function request(method: string, params?: Record<string, unknown>): JsonRpcMessage {
  return { jsonrpc: '2.0', id: nextId++, method, ...(params === undefined ? {} : { params }) };
}

type Expected = 'allow' | 'step-up' | 'deny';

function outcome(a: Authorization): Expected {
  if (a.effect === 'allow') return 'allow';
  return a.stepUpScopes?.length ? 'step-up' : 'deny';
}

// ------------------------------------------------------------------ the two demo upstreams

interface Subject {
  upstream: 'crm' | 'files';
  policy: CompiledPolicy;
  catalogue: Catalogue;
  /** Names any caller might try: the catalogue's and some it does not hold. */
  toolNames: string[];
  promptNames: string[];
  uris: (values: unknown[]) => string[];
  /** Calls built from the principal that should pass where the item is listed (property b). */
  witnesses(s: Shape, kind: 'tool' | 'prompt' | 'resource' | 'template', item: string): JsonRpcMessage[];
  /** Whether a witness can exist for this principal at all (see (b) in the file comment). */
  witnessable(s: Shape): boolean;
  /** The policy read independently, in plain code (property d). */
  oracle(s: Shape, msg: JsonRpcMessage): Expected;
}

function ownIds(s: Shape): string[] {
  return Array.isArray(s.customers) ? s.customers.filter((c): c is string => typeof c === 'string') : [];
}

function crmSubject(catalogue: Catalogue): Subject {
  const policy = compilePolicy({ rules: DEMO_POLICY, rateLimits: [], methods: {} }, ['crm']);
  const isList = (v: unknown): v is unknown[] => Array.isArray(v);
  return {
    upstream: 'crm',
    policy,
    catalogue,
    toolNames: [...catalogue.tools.map((t) => t.name), 'List_customers', 'list_customers ', 'get_customer_v2', ''],
    promptNames: [...catalogue.prompts.map((p) => p.name), 'account_summary2', ''],
    uris: (values) => [
      ...catalogue.resources.map((r) => r.uri),
      ...values.filter((v): v is string => typeof v === 'string').map((v) => `crm://customers/${v}`),
      'crm://customers/',
      'crm://customers/c-100/notes',
      'crm://customers/c-100/../c-200',
      'crm://customers/%2e%2e/c-200',
      'crm://internal/audit-log',
      'crm://customers/c-100?x=1',
      'file:///etc/passwd',
    ],
    witnesses(s, kind, item) {
      const ids = [...ownIds(s), 'c-100'];
      const sub = s.sub ?? '';
      switch (kind) {
        case 'tool':
          if (item === 'list_customers')
            return [
              request('tools/call', { name: item, arguments: { owner: sub } }),
              request('tools/call', { name: item, arguments: {} }),
            ];
          if (item === 'get_customer' || item === 'update_customer')
            return ids.map((id) => request('tools/call', { name: item, arguments: { customer_id: id, notes: 'x' } }));
          return [request('tools/call', { name: item, arguments: {} })];
        case 'prompt':
          return ids.map((id) => request('prompts/get', { name: item, arguments: { customer_id: id } }));
        case 'resource':
          return [request('resources/read', { uri: item })];
        case 'template':
          return ids.map((id) => request('resources/read', { uri: instantiate(item, id) }));
      }
    },
    // Every CRM principal can have a witness where an item is listed: reps who own nothing are not shown get/update/prompt (size > 0).
    witnessable: () => true,
    oracle(s, msg) {
      const m = msg as { method: string; params?: Record<string, unknown> };
      const params = m.params ?? {};
      const role = s.sub === undefined ? undefined : s.role;
      const sub = s.sub ?? '';
      const manager = role === 'manager';
      const rep = role === 'rep';
      const owns = (id: unknown) =>
        rep && isList(s.customers) && s.customers.length > 0 && typeof id === 'string' && s.customers.includes(id);
      const scoped = (ok: boolean): Expected =>
        !ok ? 'deny' : s.sub !== undefined && s.scopes.includes('crm:write') ? 'allow' : 'step-up';
      const objOf = (v: unknown) =>
        typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
      const readResource = (uri: unknown): Expected => {
        if (typeof uri !== 'string' || !uri.startsWith('crm://customers/')) return 'deny';
        // The gateway refuses URIs with dot segments before any rule (they may name another resource upstream).
        if (/(^|\/)(\.|%2e){1,2}(\/|$|[?#])/i.test(uri)) return 'deny';
        return manager ||
          (rep && isList(s.customers) && s.customers.some((c) => uri === `crm://customers/${String(c)}`))
          ? 'allow'
          : 'deny';
      };
      const getPrompt = (name: unknown, args: Record<string, unknown>): Expected =>
        name === 'account_summary' && (manager || owns(args.customer_id)) ? 'allow' : 'deny';
      switch (m.method) {
        case 'tools/call': {
          const args = objOf(params.arguments);
          switch (params.name) {
            case 'list_customers':
              return manager || (rep && Object.hasOwn(args, 'owner') && args.owner === sub) ? 'allow' : 'deny';
            case 'get_customer':
              return manager || owns(args.customer_id) ? 'allow' : 'deny';
            case 'update_customer':
              return scoped(manager || owns(args.customer_id));
            case 'export_all_customers':
              return manager ? 'allow' : 'deny';
            default:
              return 'deny';
          }
        }
        case 'prompts/get':
          return getPrompt(params.name, objOf(params.arguments));
        case 'resources/read':
        case 'resources/subscribe':
          return readResource(params.uri);
        case 'completion/complete': {
          const ref = objOf(params.ref);
          if (ref.type === 'ref/prompt' && typeof ref.name === 'string' && ref.name) return getPrompt(ref.name, {});
          if (ref.type === 'ref/resource' && typeof ref.uri === 'string' && ref.uri) return readResource(ref.uri);
          return 'deny';
        }
        default:
          return 'deny';
      }
    },
  };
}

const PLAIN = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

function filesSubject(): Subject {
  const policy = compilePolicy({ rules: filesystemPolicy(root), rateLimits: [], methods: {} }, ['files']);
  const catalogue: Catalogue = {
    tools: [...Object.keys(FILESYSTEM_TOOL_PATHS), 'delete_file'].map((name) => ({ name })),
    prompts: [],
    resources: [],
    resourceTemplates: [],
  };
  return {
    upstream: 'files',
    policy,
    catalogue,
    toolNames: [...catalogue.tools.map((t) => t.name), 'read_file ', 'READ_FILE', ''],
    promptNames: ['anything'],
    uris: () => [`file://${root}/alice/welcome.txt`, 'file:///etc/passwd'],
    witnesses(s, kind, item) {
      if (kind !== 'tool') return [];
      const own = join(root, s.sub ?? '');
      const file = join(own, 'welcome.txt');
      const call = (args: Record<string, unknown>) => request('tools/call', { name: item, arguments: args });
      switch (item) {
        case 'read_multiple_files':
          return [call({ paths: [file] })];
        case 'move_file':
          return [call({ source: file, destination: join(own, 'moved.txt') })];
        default:
          return [call({ path: file }), call({ path: own })];
      }
    },
    // A path in her own folder exists only for a plain subject with a folder.
    witnessable: (s) => s.sub !== undefined && FOLDER_USERS.includes(s.sub),
    oracle(s, msg) {
      const m = msg as { method: string; params?: Record<string, unknown> };
      if (m.method !== 'tools/call') return 'deny';
      const params = m.params ?? {};
      const args =
        typeof params.arguments === 'object' && params.arguments !== null && !Array.isArray(params.arguments)
          ? (params.arguments as Record<string, unknown>)
          : {};
      const sub = s.sub ?? '';
      if (params.name === 'list_allowed_directories') return 'allow';
      if (!PLAIN.test(sub)) return 'deny';
      const own = (v: unknown) => typeof v === 'string' && pathWithin(v, `${root}/${sub}`);
      const name = String(params.name);
      if (!Object.hasOwn(FILESYSTEM_TOOL_PATHS, name)) return 'deny';
      const spec: readonly string[] = FILESYSTEM_TOOL_PATHS[name as keyof typeof FILESYSTEM_TOOL_PATHS];
      const ok = spec.every((a) =>
        a.endsWith('[]')
          ? Array.isArray(args[a.slice(0, -2)]) &&
            (args[a.slice(0, -2)] as unknown[]).length > 0 &&
            (args[a.slice(0, -2)] as unknown[]).every(own)
          : Object.hasOwn(args, a) && own(args[a]),
      );
      return ok ? 'allow' : 'deny';
    },
  };
}

/** Every kind of message a caller can send to reach a tool, prompt or resource, from generated pieces. */
function callsArb(subject: Subject): fc.Arbitrary<JsonRpcMessage[]> {
  const v = valueArb();
  const args = argsArb();
  const tool = fc
    .tuple(
      fc.constantFrom(...subject.toolNames),
      fc.oneof({ weight: 5, arbitrary: args }, fc.constantFrom<unknown>(undefined, 'x', [1], null)),
    )
    .map(([name, a]) => request('tools/call', { name, ...(a === undefined ? {} : { arguments: a }) }));
  const prompt = fc
    .tuple(fc.constantFrom(...subject.promptNames), args)
    .map(([name, a]) => request('prompts/get', { name, arguments: a }));
  const uri = fc.array(v, { maxLength: 3 }).chain((values) => fc.constantFrom(...subject.uris(values)));
  const read = fc
    .tuple(fc.constantFrom('resources/read', 'resources/subscribe'), uri)
    .map(([method, u]) => request(method, { uri: u }));
  const complete = fc.oneof(
    fc.constantFrom(...subject.promptNames).map((name) =>
      request('completion/complete', {
        ref: { type: 'ref/prompt', name },
        argument: { name: 'customer_id', value: 'c' },
      }),
    ),
    uri.map((u) =>
      request('completion/complete', {
        ref: { type: 'ref/resource', uri: u },
        argument: { name: 'customer_id', value: 'c' },
      }),
    ),
  );
  return fc.array(
    fc.oneof(
      { weight: 6, arbitrary: tool },
      { weight: 2, arbitrary: prompt },
      { weight: 2, arbitrary: read },
      complete,
    ),
    { minLength: 1, maxLength: 6 },
  );
}

/**
 * Whether `msg`, allowed, reaches only what `listed` shows (property a).
 * Unless `strict`, a URI the upstream does not declare at all (neither a
 * resource it lists nor an instance of one of its templates) is out of
 * scope: there is nothing it could have been listed as.
 */
function reachesListed(msg: JsonRpcMessage, listed: Listed, cat: Catalogue, strict: boolean): boolean {
  const { method, params = {} } = msg as { method: string; params?: Record<string, unknown> };
  const uriListed = (uri: unknown) => {
    if (typeof uri !== 'string') return false;
    if (listed.resources.has(uri) || listed.templates.some((t) => templateMatches(t, uri))) return true;
    const declared =
      cat.resources.some((r) => r.uri === uri) ||
      cat.resourceTemplates.some((t) => templateMatches(t.uriTemplate, uri));
    return !strict && !declared;
  };
  switch (method) {
    case 'tools/call':
      return listed.tools.has(String(params.name));
    case 'prompts/get':
      return listed.prompts.has(String(params.name));
    case 'resources/read':
    case 'resources/subscribe':
      return uriListed(params.uri);
    case 'completion/complete': {
      const ref = params.ref as { type: string; name?: string; uri?: string };
      return ref.type === 'ref/prompt' ? listed.prompts.has(String(ref.name)) : uriListed(ref.uri);
    }
    default:
      return false;
  }
}

/** Property (a) for one upstream: every allowed call, generated or witness, reaches something listed. */
function nothingUnlistedIsCallable(
  subject: Subject,
  shapes: fc.Arbitrary<Shape>,
  strict: boolean,
  numRuns: number,
): void {
  fc.assert(
    fc.property(shapes, callsArb(subject), (s, calls) => {
      const p = principalOf(s);
      const listed = listedFor(subject.policy, subject.upstream, p, subject.catalogue);
      // The witnesses too: an unlisted item must refuse even the call built to pass.
      const witnesses = [
        ...subject.catalogue.tools.flatMap((t) => subject.witnesses(s, 'tool', t.name)),
        ...subject.catalogue.prompts.flatMap((x) => subject.witnesses(s, 'prompt', x.name)),
        ...subject.catalogue.resourceTemplates.flatMap((t) => subject.witnesses(s, 'template', t.uriTemplate)),
      ];
      for (const m of [...calls, ...witnesses]) {
        const a = authorizeMessage(subject.policy, p, subject.upstream, TRANSPORT, m);
        if (a.effect === 'allow')
          assert.ok(
            reachesListed(m, listed, subject.catalogue, strict),
            `allowed by ${a.ruleIds.join(', ')} but not listed: ${show(m)}`,
          );
      }
    }),
    { ...REPORT, numRuns },
  );
}

/** Property (b) for one upstream: every listed item has a witness that is allowed or refused only for step-up scopes. */
function everythingListedIsCallable(subject: Subject, shapes: fc.Arbitrary<Shape>, numRuns: number): void {
  fc.assert(
    fc.property(shapes, (s) => {
      fc.pre(subject.witnessable(s));
      const p = principalOf(s);
      const listed = listedFor(subject.policy, subject.upstream, p, subject.catalogue);
      const items: Array<['tool' | 'prompt' | 'resource' | 'template', string]> = [
        ...[...listed.tools].map((n): ['tool', string] => ['tool', n]),
        ...[...listed.prompts].map((n): ['prompt', string] => ['prompt', n]),
        ...[...listed.resources].map((n): ['resource', string] => ['resource', n]),
        ...listed.templates.map((n): ['template', string] => ['template', n]),
      ];
      for (const [kind, item] of items) {
        const witnesses = subject.witnesses(s, kind, item);
        const results = witnesses.map((m) => authorizeMessage(subject.policy, p, subject.upstream, TRANSPORT, m));
        assert.ok(
          results.some((r) => outcome(r) !== 'deny'),
          `${kind} ${item} is listed, but every witness is denied: ${results.map((r, i) => `${show(witnesses[i]!)} → ${r.reason} [${r.ruleIds.join(', ')}]`).join('; ')}`,
        );
      }
    }),
    { ...REPORT, numRuns },
  );
}

function show(msg: JsonRpcMessage): string {
  return JSON.stringify(msg).replaceAll(root, '<root>');
}

// ------------------------------------------------------------------ the properties

describe('listing consistency: the list filter and the call decision agree', () => {
  const subjects: Subject[] = [];

  before(async () => {
    root = prepareUserFolders(join(tempDir('behalf-listing-'), 'files'));
    for (const u of ['dave', 'alice2']) mkdirSync(join(root, u));
    for (const u of FOLDER_USERS) writeFileSync(join(root, u, 'welcome.txt'), `hello ${u}\n`);
    symlinkSync(join(root, 'bob'), join(root, 'alice', 'to-bob'));

    // The CRM's real catalogue, read from the demo server itself.
    const client = new Client({ name: 'catalogue', version: '0' });
    const [a, b] = InMemoryTransport.createLinkedPair();
    const server = createCrmServer();
    await server.connect(b);
    await client.connect(a);
    const catalogue: Catalogue = {
      tools: (await client.listTools()).tools.map((t) => ({ name: t.name, annotations: { ...t.annotations } })),
      prompts: (await client.listPrompts()).prompts.map((p) => ({ name: p.name })),
      resources: (await client.listResources()).resources.map((r) => ({ uri: r.uri })),
      resourceTemplates: (await client.listResourceTemplates()).resourceTemplates.map((t) => ({
        uriTemplate: t.uriTemplate,
      })),
    };
    await client.close();
    assert.deepEqual(catalogue.tools.map((t) => t.name).sort(), [
      'export_all_customers',
      'get_customer',
      'list_customers',
      'update_customer',
    ]);
    assert.equal(catalogue.resources.length, CUSTOMERS.length);
    // Items a later CRM version might add: no rule names them, so nobody sees or calls them.
    catalogue.tools.push({ name: 'delete_customer', annotations: { destructiveHint: true } });
    catalogue.prompts.push({ name: 'churn_report' });
    catalogue.resources.push({ uri: 'crm://internal/audit-log' });
    catalogue.resourceTemplates.push({ uriTemplate: 'crm://reps/{rep}/pipeline' });
    subjects.push(crmSubject(catalogue), filesSubject());
  });

  it('the generators reach both sides: some principals see items and some do not, some calls pass', () => {
    // A vacuity guard: (a) and (b) mean little if everything is hidden or every call is denied.
    const seen = { listed: 0, hidden: 0, allowed: 0 };
    for (const subject of subjects) {
      fc.assert(
        fc.property(shapeArb(), callsArb(subject), (s, calls) => {
          const l = listedFor(subject.policy, subject.upstream, principalOf(s), subject.catalogue);
          seen.listed += l.tools.size;
          seen.hidden += subject.catalogue.tools.length - l.tools.size;
          for (const m of calls)
            if (authorizeMessage(subject.policy, principalOf(s), subject.upstream, TRANSPORT, m).effect === 'allow')
              seen.allowed++;
        }),
        { numRuns: 100 },
      );
    }
    assert.ok(seen.listed > 100 && seen.hidden > 100 && seen.allowed > 20, JSON.stringify(seen));
  });

  it(`(a) nothing unlisted is callable, for every generated call (${RUNS.a} runs per policy; principals incl. no user, missing and mistyped claims)`, () => {
    for (const subject of subjects) nothingUnlistedIsCallable(subject, shapeArb({ wide: true }), false, RUNS.a);
  });

  it(`(b) everything listed has a witness call that is allowed or needs only step-up scopes (${RUNS.b} runs per policy; principals with a role claim)`, () => {
    for (const subject of subjects) everythingListedIsCallable(subject, shapeArb({ roleRequired: true }), RUNS.b);
  });

  // Known gaps, kept running as TODO so the counterexample stays visible until the engine closes them.
  it(
    '(b) also for principals without a role claim, or with a missing or mistyped customers claim',
    {
      todo: "without partial evaluation the list cannot always tell: when a rule fails both on a missing claim and on the arguments a listing does not know (role rep, customers claim missing: size(customers) and prompt.arguments both error), CEL reports one error; if it is the arguments', the item is listed though every call to it is denied (fail closed)",
    },
    () => {
      for (const subject of subjects) everythingListedIsCallable(subject, shapeArb({ wide: true }), RUNS.b);
    },
  );

  it(
    '(a) strict: also for claims naming a customer the CRM does not list, and for URIs the CRM does not declare',
    {
      todo: 'a template is judged by its literal URI, so reps never see crm://customers/{customer_id} though they may read its instances; and the glob crm://customers/* also admits URIs no template declares',
    },
    () => {
      for (const subject of subjects)
        nothingUnlistedIsCallable(subject, shapeArb({ wide: true, unknownIds: true }), true, RUNS.a);
    },
  );

  it(`(c) decisions never throw, every deny says why, and evaluation errors deny (${RUNS.c} runs per policy)`, () => {
    const methods = [
      'tools/call',
      'prompts/get',
      'resources/read',
      'resources/subscribe',
      'completion/complete',
      'tools/list',
      'ping',
      'initialize',
      'resources/unsubscribe',
      'notifications/roots/list_changed',
      'sampling/createMessage',
      'tools/call ',
      'admin/shutdown',
      '__proto__',
      'constructor',
    ];
    const anyParams = fc.option(
      fc.dictionary(
        fc.constantFrom('name', 'arguments', 'uri', 'ref', 'argument', '__proto__', 'x'),
        fc.oneof(fc.anything({ maxDepth: 2 }), valueArb(), argsArb()),
      ),
      { nil: undefined },
    );
    for (const subject of subjects) {
      const message = fc.oneof(
        callsArb(subject),
        fc.array(
          fc.tuple(fc.constantFrom(...methods), anyParams).map(([m, params]) => request(m, params)),
          { minLength: 1, maxLength: 4 },
        ),
      );
      fc.assert(
        fc.property(
          shapeArb({ wide: true, unknownIds: true }),
          message,
          fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 4 }),
          (s, msgs, junkItems) => {
            const p = principalOf(s);
            for (const m of msgs) {
              const a = authorizeMessage(subject.policy, p, subject.upstream, TRANSPORT, m);
              assert.ok(a.effect === 'allow' || a.effect === 'deny');
              assert.ok(Array.isArray(a.ruleIds));
              if (a.effect === 'deny') {
                assert.ok(typeof a.reason === 'string' && a.reason.length > 0, `a deny without a reason: ${show(m)}`);
                // Only the default deny has no rule to name; every other deny names what decided it.
                if (a.reason !== 'no rule allows this')
                  assert.ok(a.ruleIds.length > 0, `a deny naming no rule: ${a.reason}`);
              }
              if (a.input && a.target) {
                // The same decision again, traced: any rule that errored makes it a deny naming that rule.
                const trace: RuleTrace[] = [];
                const again = decide(
                  subject.policy,
                  (m as { method: string }).method,
                  subject.upstream,
                  a.target,
                  a.input,
                  trace,
                );
                assert.deepEqual([again.effect, again.ruleIds], [a.effect, a.ruleIds]);
                const errored = trace.filter((t) => t.error !== undefined).map((t) => t.id);
                if (errored.length) {
                  assert.equal(
                    a.effect,
                    'deny',
                    `rules ${errored.join(', ')} failed but the call was allowed: ${show(m)}`,
                  );
                  assert.equal(a.reason, 'rule evaluation error');
                  assert.deepEqual(a.ruleIds, errored);
                }
              }
            }
            // Lists with junk items are filtered without throwing, and only ever shrink.
            for (const [feature, key] of [
              ['tool', 'tools'],
              ['prompt', 'prompts'],
              ['resource', 'resources'],
              ['resource-template', 'resourceTemplates'],
            ] as const) {
              const items = [
                ...junkItems,
                ...junkItems.map((j) => ({ name: j, uri: j, uriTemplate: j, annotations: j })),
              ];
              const out = filterListResult(subject.policy, p, subject.upstream, TRANSPORT, feature, {
                [key]: items,
                nextCursor: 'n',
              });
              assert.equal(out.nextCursor, 'n');
              assert.ok((out[key] as unknown[]).every((i) => items.includes(i)));
            }
          },
        ),
        { ...REPORT, numRuns: RUNS.c },
      );
    }
  });

  it(`(d) the engine decides what each policy says, by an independent reading of it (${RUNS.d} runs per policy)`, () => {
    for (const subject of subjects) {
      fc.assert(
        fc.property(shapeArb({ unknownIds: true }), callsArb(subject), (s, calls) => {
          const p = principalOf(s);
          for (const m of calls) {
            const got = outcome(authorizeMessage(subject.policy, p, subject.upstream, TRANSPORT, m));
            assert.equal(got, subject.oracle(s, m), show(m));
          }
        }),
        { ...REPORT, numRuns: RUNS.d },
      );
    }
  });
});

// ------------------------------------------------------------------ through the real gateway

describe("listing consistency through the real gateway: tools/list per user = the engine's visible set, each with a working witness", () => {
  let fx: Fixture;
  let filesRoot: string;
  let rules: PolicyRuleConfig[];
  let policy: CompiledPolicy;
  const clients: Client[] = [];
  const upstreamTools: Record<'crm' | 'files', Catalogue['tools']> = { crm: [], files: [] };
  let crmCatalogue: Catalogue;

  before(async () => {
    filesRoot = prepareUserFolders(join(tempDir('behalf-listing-gw-'), 'files'));
    for (const u of DEMO_USERS) {
      writeFileSync(join(filesRoot, u.name, 'edit-me.txt'), 'old text\n');
      writeFileSync(join(filesRoot, u.name, 'move-me.txt'), 'moving\n');
    }
    rules = [...DEMO_POLICY, ...filesystemPolicy(filesRoot)];
    policy = compilePolicy({ rules, rateLimits: [], methods: {} }, ['crm', 'files']);
    const filesServer = { transport: 'stdio', command: process.execPath, args: [filesystemServerEntry(), filesRoot] };
    fx = await startFixture({ upstreams: { crm: CRM_STDIO, files: filesServer }, policy: rules });

    // Each upstream's own, unfiltered tool list, straight from the server.
    const crm = new Client({ name: 'catalogue', version: '0' });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await createCrmServer().connect(b);
    await crm.connect(a);
    upstreamTools.crm = (await crm.listTools()).tools.map((t) => ({ name: t.name, annotations: { ...t.annotations } }));
    crmCatalogue = {
      tools: upstreamTools.crm,
      prompts: (await crm.listPrompts()).prompts,
      resources: (await crm.listResources()).resources,
      resourceTemplates: (await crm.listResourceTemplates()).resourceTemplates,
    };
    await crm.close();
    const files = new Client({ name: 'catalogue', version: '0' });
    await files.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [filesystemServerEntry(), filesRoot],
        stderr: 'ignore',
      }),
    );
    try {
      upstreamTools.files = (await files.listTools()).tools.map((t) => ({
        name: t.name,
        annotations: { ...t.annotations },
      }));
    } finally {
      await files.close();
    }
  });
  after(async () => {
    await closeAll(clients);
    await fx?.close();
  });

  function witness(upstream: 'crm' | 'files', user: string, tool: string): Record<string, unknown> {
    if (upstream === 'crm') {
      const own = DEMO_USERS.find((u) => u.name === user)!.owns?.[0] ?? 'c-100';
      switch (tool) {
        case 'list_customers':
          return { owner: user };
        case 'get_customer':
          return { customer_id: own };
        case 'update_customer':
          return { customer_id: own, notes: `witness by ${user}` };
        default:
          return {};
      }
    }
    const dir = join(filesRoot, user);
    switch (tool) {
      case 'read_multiple_files':
        return { paths: [join(dir, 'welcome.txt'), join(dir, 'edit-me.txt')] };
      case 'move_file':
        return { source: join(dir, 'move-me.txt'), destination: join(dir, 'moved.txt') };
      case 'write_file':
        return { path: join(dir, 'written.txt'), content: 'witness\n' };
      case 'edit_file':
        return { path: join(dir, 'edit-me.txt'), edits: [{ oldText: 'old text', newText: 'new text' }] };
      case 'create_directory':
        return { path: join(dir, 'made') };
      case 'search_files':
        return { path: dir, pattern: '*.txt' };
      case 'list_directory':
      case 'list_directory_with_sizes':
      case 'directory_tree':
        return { path: dir };
      case 'list_allowed_directories':
        return {};
      default:
        return { path: join(dir, 'welcome.txt') };
    }
  }

  for (const upstream of ['crm', 'files'] as const) {
    for (const u of DEMO_USERS) {
      it(`${upstream}: ${u.name}'s tools/list equals the engine's visible set, and each listed tool's witness call succeeds`, async () => {
        const client = await connectStreamable(fx.gateway.urlFor(upstream), await fx.headersFor(u.name, { upstream }));
        clients.push(client);
        const listed = (await client.listTools()).tools.map((t) => t.name).sort();

        const p: Principal = {
          client: { id: 'agent', method: 'api-key', credentialId: 'k1' },
          user: {
            issuer: fx.idp.issuer,
            subject: u.name,
            claims: userClaims(u),
            scopes: DEMO_SCOPE.split(' '),
            expiresAt: 0,
            tokenFingerprint: 'f',
          },
        };
        const engine = (
          filterListResult(policy, p, upstream, TRANSPORT, 'tool', { tools: upstreamTools[upstream] }).tools as Array<{
            name: string;
          }>
        )
          .map((t) => t.name)
          .sort();
        assert.deepEqual(listed, engine);
        assert.ok(listed.length > 0);
        if (upstream === 'files') assert.deepEqual(listed, Object.keys(FILESYSTEM_TOOL_PATHS).sort());
        else
          assert.deepEqual(
            listed,
            u.role === 'manager'
              ? ['export_all_customers', 'get_customer', 'list_customers', 'update_customer']
              : ['get_customer', 'list_customers', 'update_customer'],
          );

        if (upstream === 'crm') {
          // The rest of the CRM's catalogue, through the same filter.
          const names = <T>(items: T[], key: keyof T) => items.map((i) => String(i[key])).sort();
          const engineList = <T>(feature: 'prompt' | 'resource' | 'resource-template', key: string, items: T[]) =>
            filterListResult(policy, p, upstream, TRANSPORT, feature, { [key]: items })[key] as T[];
          assert.deepEqual(
            names((await client.listPrompts()).prompts, 'name'),
            names(engineList('prompt', 'prompts', crmCatalogue.prompts), 'name'),
          );
          assert.deepEqual(
            names((await client.listResources()).resources, 'uri'),
            names(engineList('resource', 'resources', crmCatalogue.resources), 'uri'),
          );
          assert.deepEqual(
            names((await client.listResourceTemplates()).resourceTemplates, 'uriTemplate'),
            names(engineList('resource-template', 'resourceTemplates', crmCatalogue.resourceTemplates), 'uriTemplate'),
          );
          assert.equal(
            (await client.listResources()).resources.length,
            u.role === 'manager' ? CUSTOMERS.length : u.owns!.length,
          );
        }

        for (const tool of listed) {
          const result = await client.callTool({ name: tool, arguments: witness(upstream, u.name, tool) });
          assert.notEqual(result.isError, true, `${u.name} ${tool}: ${JSON.stringify(result.content).slice(0, 300)}`);
        }
      });
    }
  }
});
