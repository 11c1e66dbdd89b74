/**
 * Per-path rules for a filesystem upstream: on the quickstart's `files`
 * upstream (the unmodified server-filesystem serving one folder per user) a
 * user may touch only paths in her own folder — normalised, no `..` escapes,
 * no symlink tricks. First pathWithin and the CEL function on their own, then
 * the real gateway in front of the real server.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Environment } from '@marcbachmann/cel-js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { filesystemServerEntry, prepareUserFolders } from '../demo/quickstart/files.js';
import { FILESYSTEM_TOOL_PATHS, filesystemPolicy } from '../demo/quickstart/policy.js';
import { registerPolicyFunctions } from '../src/policy/functions.js';
import { pathWithin } from '../src/policy/path-within.js';
import { connectStreamable } from './helpers/clients.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { tempDir } from './helpers/tmp.js';
import { closeAll } from './helpers/transport-clients.js';
import { resultText } from './helpers/transport-third-party.js';

const BOB_SECRET = 'bob-only: the Q3 numbers are 4711';
/** "Å" precomposed (NFC) and decomposed (NFD): different names on Linux, one name to server-filesystem. */
const NFC_NAME = 'Å-link';
const NFD_NAME = 'A\u030A-link';

/** Paths (under the files root) by which alice would try to reach bob's secret. */
const ATTACKS: ReadonlyArray<readonly [string, (root: string) => string]> = [
  ["bob's file", (root) => join(root, 'bob', 'secret.txt')],
  ['a `..` escape from her folder', (root) => `${root}/alice/../bob/secret.txt`],
  ["a symlink in her folder pointing to bob's folder", (root) => join(root, 'alice', 'to-bob', 'secret.txt')],
  ["a symlink file in her folder pointing to bob's file", (root) => join(root, 'alice', 'bobs-secret.txt')],
  ["a Unicode-equivalent name of a symlink to bob's folder", (root) => join(root, 'alice', NFD_NAME, 'secret.txt')],
  ["a path relative to the server's root", () => 'bob/secret.txt'],
];

describe('pathWithin', () => {
  let root: string;
  let alice: string;
  let bob: string;

  before(() => {
    root = realpathSync(tempDir('behalf-path-within-'));
    alice = join(root, 'alice');
    bob = join(root, 'bob');
    for (const d of [alice, bob, join(root, 'alice2'), join(alice, 'sub')]) mkdirSync(d, { recursive: true });
    writeFileSync(join(alice, 'notes.txt'), 'alice\n');
    writeFileSync(join(bob, 'secret.txt'), BOB_SECRET);
    symlinkSync(bob, join(alice, 'to-bob'));
    symlinkSync(join(bob, 'secret.txt'), join(alice, 'bobs-secret.txt'));
    symlinkSync(join(alice, 'notes.txt'), join(alice, 'my-notes-link'));
    symlinkSync(join(alice, 'sub'), join(alice, 'sub-link'));
    symlinkSync(join(bob, 'not-yet.txt'), join(alice, 'dangling'));
    symlinkSync(bob, join(alice, NFC_NAME));
    symlinkSync(root, join(root, 'root-link'));
  });

  const cases: Array<[string, () => string, () => string, boolean]> = [
    ['a file in her folder', () => join(alice, 'notes.txt'), () => alice, true],
    ['her folder itself', () => alice, () => alice, true],
    ['her folder with a trailing slash', () => `${alice}/`, () => alice, true],
    ['a non-existing file in her folder (write_file to a new file)', () => join(alice, 'new.txt'), () => alice, true],
    [
      'a non-existing nested path in her folder (create_directory)',
      () => join(alice, 'a', 'b', 'c'),
      () => alice,
      true,
    ],
    ['a `..` that stays inside', () => `${alice}/sub/../notes.txt`, () => alice, true],
    ['a symlink to a file inside her folder', () => join(alice, 'my-notes-link'), () => alice, true],
    ['a new file under a symlinked dir inside her folder', () => join(alice, 'sub-link', 'new.txt'), () => alice, true],
    [
      'base given through a symlinked parent',
      () => join(root, 'root-link', 'alice', 'notes.txt'),
      () => join(root, 'root-link', 'alice'),
      true,
    ],
    ["bob's file", () => join(bob, 'secret.txt'), () => alice, false],
    ['a sibling sharing her prefix (/alice2)', () => join(root, 'alice2', 'x'), () => alice, false],
    ['the sibling folder itself (/alice2)', () => join(root, 'alice2'), () => alice, false],
    ['the parent folder', () => root, () => alice, false],
    ["a `..` escape to bob's file", () => `${alice}/../bob/secret.txt`, () => alice, false],
    ['a `..` escape from a subfolder', () => `${alice}/sub/../../bob/secret.txt`, () => alice, false],
    ['a relative path', () => 'alice/notes.txt', () => alice, false],
    ['a relative `..` path', () => '../bob/secret.txt', () => alice, false],
    ['an empty path', () => '', () => alice, false],
    ['a `~` path', () => '~/notes.txt', () => alice, false],
    ['a bare `~`', () => '~', () => alice, false],
    ['a `~user` path', () => '~alice/notes.txt', () => alice, false],
    ['a NUL byte', () => `${alice}/notes.txt\0.png`, () => alice, false],
    ['a NUL byte in base', () => join(alice, 'notes.txt'), () => `${alice}\0`, false],
    ['a relative base', () => join(alice, 'notes.txt'), () => 'alice', false],
    ['a base that does not exist', () => join(root, 'dave', 'x'), () => join(root, 'dave'), false],
    ['a path below a file (ENOTDIR)', () => join(alice, 'notes.txt', 'x'), () => alice, false],
    ["a symlinked dir in her folder pointing to bob's folder", () => join(alice, 'to-bob'), () => alice, false],
    ['an existing file under that symlinked dir', () => join(alice, 'to-bob', 'secret.txt'), () => alice, false],
    ['a non-existing file under that symlinked dir', () => join(alice, 'to-bob', 'new.txt'), () => alice, false],
    ["a symlink file pointing to bob's file", () => join(alice, 'bobs-secret.txt'), () => alice, false],
    ["a dangling symlink pointing into bob's folder", () => join(alice, 'dangling'), () => alice, false],
    ['a path through a dangling symlink', () => join(alice, 'dangling', 'x'), () => alice, false],
    [
      "a Unicode-equivalent (NFD) name of a symlink to bob's folder",
      () => join(alice, NFD_NAME, 'secret.txt'),
      () => alice,
      false,
    ],
  ];
  for (const [name, path, base, expected] of cases) {
    it(`${expected ? 'inside' : 'not inside'}: ${name}`, () => {
      assert.equal(pathWithin(path(), base()), expected);
    });
  }

  it('non-strings are refused, not thrown on', () => {
    assert.equal(pathWithin(42 as unknown as string, alice), false);
    assert.equal(pathWithin(join(alice, 'notes.txt'), undefined as unknown as string), false);
  });
});

describe('path_within in CEL', () => {
  let base: string;
  before(() => {
    base = realpathSync(tempDir('behalf-cel-path-'));
    mkdirSync(join(base, 'alice'));
  });

  it('parses, type-checks and evaluates through registerPolicyFunctions', () => {
    const env = new Environment();
    env.registerVariable('args', 'map<string, dyn>');
    env.registerVariable('user', 'map<string, dyn>');
    registerPolicyFunctions(env);
    const program = env.parse(`has(args.path) && path_within(args.path, ${JSON.stringify(base)} + "/" + user.sub)`);
    const checked = program.check();
    assert.equal(checked.valid, true, checked.error?.message);
    assert.equal(checked.type, 'bool');
    assert.equal(program({ args: { path: join(base, 'alice', 'new.txt') }, user: { sub: 'alice' } }), true);
    assert.equal(program({ args: { path: join(base, 'alice', '..', 'bob', 'x') }, user: { sub: 'alice' } }), false);
    assert.equal(program({ args: { path: join(base, 'alice', 'x') }, user: { sub: 'bob' } }), false);
    assert.equal(program({ args: {}, user: { sub: 'alice' } }), false);
  });

  it('a call with the wrong argument types is a check error, not a silent false', () => {
    const env = registerPolicyFunctions(new Environment());
    assert.equal(env.parse('path_within("/x", 1)').check().valid, false);
  });

  it('every server-filesystem tool is covered by exactly one allow rule of filesystemPolicy', () => {
    const rules = filesystemPolicy(base);
    for (const tool of Object.keys(FILESYSTEM_TOOL_PATHS)) {
      assert.equal(rules.filter((r) => r.tools?.includes(tool)).length, 1, tool);
    }
    assert.ok(rules.every((r) => r.effect === 'allow' && r.upstreams?.length === 1 && r.upstreams[0] === 'files'));
  });
});

describe('the files upstream: server-filesystem behind the gateway, one folder per user', () => {
  let fx: Fixture;
  let root: string;
  let alice: string;
  let bob: string;
  const clients: Client[] = [];
  /** Every text alice got back, denials included: bob's secret must never be in it. */
  const seenByAlice: string[] = [];

  async function connectAs(user: string): Promise<Client> {
    const client = await connectStreamable(
      fx.gateway.urlFor('files'),
      await fx.headersFor(user, { upstream: 'files' }),
    );
    clients.push(client);
    return client;
  }

  async function call(client: Client, name: string, args: Record<string, unknown>): Promise<string> {
    const text = resultText(await client.callTool({ name, arguments: args }));
    seenByAlice.push(text);
    return text;
  }

  async function assertForbidden(client: Client, name: string, args: Record<string, unknown>): Promise<void> {
    await assert.rejects(client.callTool({ name, arguments: args }), (err: unknown) => {
      assert.ok(err instanceof McpError, `expected an McpError, got ${String(err)}`);
      seenByAlice.push(err.message);
      assert.equal(err.code, -32003);
      assert.doesNotMatch(err.message, /bob|secret|files-own|rule/i);
      return true;
    });
  }

  before(async () => {
    root = prepareUserFolders(join(tempDir('behalf-files-'), 'files'));
    alice = join(root, 'alice');
    bob = join(root, 'bob');
    writeFileSync(join(bob, 'secret.txt'), BOB_SECRET);
    // Planted in alice's folder by something other than the agent (server-filesystem has no symlink tool).
    symlinkSync(bob, join(alice, 'to-bob'));
    symlinkSync(join(bob, 'secret.txt'), join(alice, 'bobs-secret.txt'));
    symlinkSync(bob, join(alice, NFC_NAME));
    fx = await startFixture({
      upstreams: { files: { transport: 'stdio', command: process.execPath, args: [filesystemServerEntry(), root] } },
      policy: filesystemPolicy(root),
    });
  });
  after(async () => {
    await closeAll(clients);
    await fx?.close();
  });

  it("without the gateway, server-filesystem serves bob's secret by every one of these paths (the control)", async () => {
    const direct = new Client({ name: 'behalf-test', version: '0.0.0' });
    await direct.connect(
      new StdioClientTransport({ command: process.execPath, args: [filesystemServerEntry(), root], stderr: 'ignore' }),
    );
    try {
      for (const [name, path] of ATTACKS) {
        const text = resultText(await direct.callTool({ name: 'read_text_file', arguments: { path: path(root) } }));
        assert.equal(text, BOB_SECRET, name);
      }
    } finally {
      await direct.close();
    }
  });

  it('alice reads, writes and lists in her own folder (positive control)', async () => {
    const a = await connectAs('alice');
    assert.match(await call(a, 'read_text_file', { path: join(alice, 'welcome.txt') }), /Welcome, alice/);
    await call(a, 'write_file', { path: join(alice, 'todo.txt'), content: 'call carol\n' });
    assert.equal(readFileSync(join(alice, 'todo.txt'), 'utf8'), 'call carol\n');
    assert.equal(await call(a, 'read_text_file', { path: join(alice, 'todo.txt') }), 'call carol\n');
    await call(a, 'create_directory', { path: join(alice, 'drafts', '2026') });
    await call(a, 'move_file', { source: join(alice, 'todo.txt'), destination: join(alice, 'drafts', 'todo.txt') });
    assert.ok(existsSync(join(alice, 'drafts', 'todo.txt')));
    const many = await call(a, 'read_multiple_files', {
      paths: [join(alice, 'welcome.txt'), join(alice, 'drafts', 'todo.txt')],
    });
    assert.match(many, /Welcome, alice[\s\S]*call carol/);
    const listing = await call(a, 'list_directory', { path: alice });
    assert.match(listing, /\[FILE\] welcome\.txt/);
    assert.match(listing, /\[DIR\] drafts/);
    assert.match(await call(a, 'get_file_info', { path: join(alice, 'welcome.txt') }), /isFile: true/);
    assert.match(await call(a, 'search_files', { path: alice, pattern: '**/*.txt' }), /drafts\/todo\.txt/);
    assert.match(
      await call(a, 'list_allowed_directories', {}),
      new RegExp(root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
    );
  });

  it("bob reads his own secret (the positive control for alice's denials)", async () => {
    const b = await connectAs('bob');
    assert.equal(
      resultText(await b.callTool({ name: 'read_text_file', arguments: { path: join(bob, 'secret.txt') } })),
      BOB_SECRET,
    );
  });

  for (const [name, path] of [...ATTACKS, ['a `~` path', () => '~/secret.txt'] as const]) {
    it(`alice is denied ${name}`, async () => {
      const a = await connectAs('alice');
      await assertForbidden(a, 'read_text_file', { path: path(root) });
    });
  }

  it("alice is denied every other tool on bob's folder", async () => {
    const a = await connectAs('alice');
    for (const tool of [
      'read_file',
      'read_media_file',
      'get_file_info',
      'list_directory',
      'list_directory_with_sizes',
      'directory_tree',
      'search_files',
    ]) {
      await assertForbidden(a, tool, { path: bob, pattern: '*' });
    }
    await assertForbidden(a, 'list_directory', { path: join(alice, 'to-bob') });
    await assertForbidden(a, 'list_directory', { path: root });
    await assertForbidden(a, 'write_file', { path: join(bob, 'planted.txt'), content: 'x' });
    await assertForbidden(a, 'write_file', { path: join(alice, 'to-bob', 'planted.txt'), content: 'x' });
    await assertForbidden(a, 'create_directory', { path: join(alice, 'to-bob', 'planted') });
    await assertForbidden(a, 'edit_file', {
      path: join(alice, 'bobs-secret.txt'),
      edits: [{ oldText: '4711', newText: '0' }],
    });
    assert.ok(
      !existsSync(join(bob, 'planted.txt')) && !existsSync(join(bob, 'planted')),
      "nothing reached bob's folder",
    );
    assert.equal(readFileSync(join(bob, 'secret.txt'), 'utf8'), BOB_SECRET);
  });

  it("alice is denied read_multiple_files mixing her file and bob's", async () => {
    const a = await connectAs('alice');
    await assertForbidden(a, 'read_multiple_files', { paths: [join(alice, 'welcome.txt'), join(bob, 'secret.txt')] });
    await assertForbidden(a, 'read_multiple_files', {
      paths: [join(alice, 'welcome.txt'), join(alice, 'to-bob', 'secret.txt')],
    });
  });

  it("alice is denied move_file into or out of bob's folder", async () => {
    const a = await connectAs('alice');
    await call(a, 'write_file', { path: join(alice, 'gift.txt'), content: 'for bob\n' });
    await assertForbidden(a, 'move_file', { source: join(alice, 'gift.txt'), destination: join(bob, 'gift.txt') });
    await assertForbidden(a, 'move_file', {
      source: join(alice, 'gift.txt'),
      destination: join(alice, 'to-bob', 'gift.txt'),
    });
    await assertForbidden(a, 'move_file', { source: join(bob, 'secret.txt'), destination: join(alice, 'stolen.txt') });
    assert.ok(existsSync(join(alice, 'gift.txt')) && !existsSync(join(bob, 'gift.txt')));
    assert.ok(existsSync(join(bob, 'secret.txt')) && !existsSync(join(alice, 'stolen.txt')));
  });

  it('missing or mistyped path arguments deny rather than error through', async () => {
    const a = await connectAs('alice');
    await assertForbidden(a, 'read_text_file', {});
    await assertForbidden(a, 'read_text_file', { path: 42 });
    await assertForbidden(a, 'read_multiple_files', { paths: [] });
    await assertForbidden(a, 'read_multiple_files', { paths: join(alice, 'welcome.txt') });
    await assertForbidden(a, 'move_file', { source: join(alice, 'welcome.txt') });
  });

  it('tools/list shows alice the tools she may call: every server-filesystem tool the policy names', async () => {
    const a = await connectAs('alice');
    const listed = (await a.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(listed, Object.keys(FILESYSTEM_TOOL_PATHS).sort());
  });

  it("bob's secret never appeared in anything alice got back", () => {
    assert.ok(seenByAlice.length > 10);
    for (const text of seenByAlice) assert.ok(!text.includes(BOB_SECRET), `leaked in: ${text.slice(0, 200)}`);
  });
});
