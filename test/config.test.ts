import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadConfigFile, parseConfig } from '../src/config/load.js';
import { gatewayJsonSchema } from '../src/config/schema.js';
import { resolveSecret } from '../src/config/secrets.js';
import { BehalfError } from '../src/errors.js';
import { startGateway } from '../src/gateway/server.js';
import { tempDir } from './helpers/tmp.js';

/**
 * Configuration loading: every error names the path and the reason, secrets
 * are references only and never echoed, unknown keys are refused, and the
 * published JSON Schema is generated from the same definition.
 */

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const HASH = `sha256:${'ab'.repeat(32)}`;

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A valid configuration, as an operator would write it. */
function good(): Raw {
  return {
    server: { host: '127.0.0.1', port: 0 },
    clientAuth: { methods: ['api-key'] },
    clients: [{ id: 'agent', apiKeys: [{ id: 'k1', hash: HASH }], oauthClientIds: ['agent'] }],
    userAuth: { issuers: [{ issuer: 'http://127.0.0.1:9000', algorithms: ['ES256'] }] },
    upstreams: { crm: { transport: 'stdio', command: 'node', args: ['crm.js'] } },
    policy: { rules: [{ id: 'r1', effect: 'allow', tools: ['get_customer'], when: 'true' }] },
    audit: { sqlitePath: ':memory:' },
  };
}

function writeConfig(raw: Raw | string, name = 'behalf.yaml'): string {
  const file = join(tempDir('behalf-config-'), name);
  writeFileSync(file, typeof raw === 'string' ? raw : stringify(raw));
  return file;
}

/** The config_invalid error a load throws. */
function loadError(file: string): BehalfError {
  try {
    loadConfigFile(file);
  } catch (err) {
    assert.ok(err instanceof BehalfError, `expected a BehalfError, got ${String(err)}`);
    assert.equal(err.code, 'config_invalid');
    assert.equal(err.publicMessage, 'Internal error', 'config details are never exposable to HTTP callers');
    return err;
  }
  assert.fail('the configuration was accepted');
}

describe('config: the good configuration (control for every refusal below)', () => {
  it('loads, with defaults filled in and relative paths resolved against its folder', () => {
    const file = writeConfig(good());
    const { config, baseDir } = loadConfigFile(file);
    assert.equal(baseDir, join(file, '..'));
    assert.equal(config.userAuth.mode, 'dual');
    assert.equal(config.userAuth.delegation, 'require-match');
    assert.equal(config.server.allowUnauthenticated, false);
    assert.deepEqual(config.userAuth.issuers[0]!.requiredClaims, ['sub', 'exp', 'iat']);
    assert.equal(config.clientAuth.apiKeyHeader, 'x-api-key');
  });

  it('credential header names are normalised to lower case (Node lower-cases incoming names)', () => {
    const raw = good();
    raw.clientAuth = { methods: ['api-key'], apiKeyHeader: 'X-Agent-Key', clientTokenHeader: 'X-Client-Token' };
    const { config } = parseConfig(raw, tempDir());
    assert.equal(config.clientAuth.apiKeyHeader, 'x-agent-key');
    assert.equal(config.clientAuth.clientTokenHeader, 'x-client-token');
  });
});

describe('config: errors name the path and the reason', () => {
  const cases: Array<{ name: string; mutate: (r: Raw) => void; expect: RegExp[]; secret?: string }> = [
    {
      name: 'a stdio upstream without command',
      mutate: (r) => delete r.upstreams.crm.command,
      expect: [/upstreams\.crm\.command: Invalid input: expected string, received undefined/],
    },
    {
      name: 'an empty command',
      mutate: (r) => {
        r.upstreams.crm.command = '';
      },
      expect: [/upstreams\.crm\.command: /],
    },
    {
      name: 'an unknown transport',
      mutate: (r) => {
        r.upstreams.crm.transport = 'carrier-pigeon';
      },
      expect: [/upstreams\.crm\.transport: /],
    },
    {
      name: 'an upstream name that is not an identifier',
      mutate: (r) => {
        r.upstreams = { 'My CRM': r.upstreams.crm };
      },
      expect: [/upstreams\.My CRM: Invalid key in record/],
    },
    {
      name: 'no upstreams',
      mutate: (r) => {
        r.upstreams = {};
      },
      expect: [/upstreams: at least one upstream is required/],
    },
    { name: 'no userAuth', mutate: (r) => delete r.userAuth, expect: [/userAuth: /] },
    {
      name: 'no issuers',
      mutate: (r) => {
        r.userAuth.issuers = [];
      },
      expect: [/userAuth\.issuers: /],
    },
    {
      name: 'an issuer that is not a URL',
      mutate: (r) => {
        r.userAuth.issuers[0].issuer = 'my-idp';
      },
      expect: [/userAuth\.issuers\.0\.issuer: /],
    },
    {
      name: 'HS256 on the algorithm allow-list',
      mutate: (r) => {
        r.userAuth.issuers[0].algorithms = ['ES256', 'HS256'];
      },
      expect: [/userAuth\.issuers\.0\.algorithms\.1: /],
    },
    {
      name: 'alg none on the allow-list',
      mutate: (r) => {
        r.userAuth.issuers[0].algorithms = ['none'];
      },
      expect: [/userAuth\.issuers\.0\.algorithms\.0: /],
    },
    {
      name: 'a clock skew of an hour',
      mutate: (r) => {
        r.userAuth.issuers[0].clockSkewSeconds = 3600;
      },
      expect: [/userAuth\.issuers\.0\.clockSkewSeconds: /],
    },
    {
      name: 'a port out of range',
      mutate: (r) => {
        r.server.port = 70000;
      },
      expect: [/server\.port: /],
    },
    {
      name: 'an unknown client-auth method',
      mutate: (r) => {
        r.clientAuth.methods = ['api-key', 'password'];
      },
      expect: [/clientAuth\.methods\.1: /],
    },
    {
      name: 'an unknown key at the root (strict)',
      mutate: (r) => {
        r.upstream = {};
      },
      expect: [/\(root\): Unrecognized key: "upstream"/],
    },
    {
      name: 'a misspelt key in server (strict)',
      mutate: (r) => {
        r.server.tsl = {};
      },
      expect: [/server: .*"tsl"/],
    },
    {
      name: 'a misspelt key in a client (strict)',
      mutate: (r) => {
        r.clients[0].apikeys = [];
      },
      expect: [/clients\.0: .*"apikeys"/],
    },
    {
      name: 'a misspelt key in an issuer (strict)',
      mutate: (r) => {
        r.userAuth.issuers[0].audience = 'x';
      },
      expect: [/userAuth\.issuers\.0: .*"audience"/],
    },
    {
      name: 'a misspelt key in an upstream (strict)',
      mutate: (r) => {
        r.upstreams.crm.enviroment = {};
      },
      expect: [/upstreams\.crm: .*"enviroment"/],
    },
    {
      name: 'a lower-case certificate fingerprint',
      mutate: (r) => {
        r.clients[0].certificates = [{ fingerprint256: 'ab:'.repeat(31) + 'ab' }];
      },
      expect: [/clients\.0\.certificates\.0\.fingerprint256: must be an uppercase colon-separated SHA-256 fingerprint/],
    },
    {
      name: 'api-key enabled but no client has keys',
      mutate: (r) => {
        r.clients[0].apiKeys = [];
      },
      expect: [/clients: api-key authentication is enabled but no client has apiKeys/],
    },
    {
      name: 'mtls without a client CA',
      mutate: (r) => {
        r.clientAuth.methods = ['mtls'];
        r.clients[0].certificates = [{ fingerprint256: 'AB:'.repeat(31) + 'AB' }];
      },
      expect: [/server\.tls\.clientCa: mtls authentication needs a client CA/],
    },
    {
      name: 'client-credentials in oauth mode',
      mutate: (r) => {
        r.userAuth.mode = 'oauth';
        r.clientAuth.methods = ['api-key', 'client-credentials'];
      },
      expect: [/clientAuth\.methods: client-credentials is for dual mode/],
    },
    {
      name: 'two clients with one id',
      mutate: (r) => {
        r.clients.push({ id: 'agent', apiKeys: [{ id: 'k2', hash: `sha256:${'cd'.repeat(32)}` }] });
      },
      expect: [/clients\.1\.id: duplicate client id agent/],
    },
    {
      name: 'one key configured for two clients',
      mutate: (r) => {
        r.clients.push({ id: 'other', apiKeys: [{ id: 'k2', hash: HASH }] });
      },
      expect: [/clients\.1\.apiKeys\.0: the same key is configured twice/],
    },
    {
      name: 'a rule naming an unknown upstream',
      mutate: (r) => {
        r.policy.rules[0].upstreams = ['nope'];
      },
      expect: [/policy: rules\.0 \([^)]+\)\.upstreams: nope matches no upstream/],
    },
    {
      name: "a stdio upstream's per-user process cap above the per-user session quota",
      mutate: (r) => {
        r.upstreams.crm.perUser = { maxPerUser: 8 };
        r.sessions = { maxPerUser: 4 };
      },
      expect: [/upstreams\.crm\.perUser\.maxPerUser: 8 exceeds sessions\.maxPerUser \(4\)/],
    },
    {
      name: 'a session quota of zero',
      mutate: (r) => {
        r.sessions = { maxPerUser: 0 };
      },
      expect: [/sessions\.maxPerUser: /],
    },
    {
      name: 'an issuer key fetch timeout above 30 s',
      mutate: (r) => {
        r.userAuth.issuers[0].keyFetch = { timeoutMs: 60_000 };
      },
      expect: [/userAuth\.issuers\.0\.keyFetch\.timeoutMs: /],
    },
    {
      name: 'two problems at once: both are listed',
      mutate: (r) => {
        delete r.upstreams.crm.command;
        r.server.port = -1;
      },
      expect: [/upstreams\.crm\.command: /, /server\.port: /],
    },
  ];
  for (const c of cases) {
    it(`refuses ${c.name}`, () => {
      const raw = good();
      c.mutate(raw);
      const err = loadError(writeConfig(raw));
      assert.match(err.message, /^invalid configuration:\n/);
      for (const re of c.expect) assert.match(err.message, re);
    });
  }
});

describe('config: secrets are references, never literals, and never echoed', () => {
  const literal: Array<{ name: string; mutate: (r: Raw, secret: string) => void; path: RegExp }> = [
    {
      name: 'a literal TLS private key',
      mutate: (r, s) => {
        r.server.tls = { cert: 'file:server.crt', key: s };
      },
      path: /server\.tls\.key: must be a secret reference: env:NAME or file:PATH/,
    },
    {
      name: 'a literal TLS certificate',
      mutate: (r, s) => {
        r.server.tls = { cert: s, key: 'env:TLS_KEY' };
      },
      path: /server\.tls\.cert: must be a secret reference/,
    },
    {
      name: 'a literal upstream header',
      mutate: (r, s) => {
        r.upstreams.api = {
          transport: 'streamable-http',
          url: 'http://127.0.0.1:1/mcp',
          headers: { authorization: `Bearer ${s}` },
        };
      },
      path: /upstreams\.api\.headers\.authorization: must be a secret reference/,
    },
    {
      name: "a literal value in a stdio child's environment",
      mutate: (r, s) => {
        r.upstreams.crm.env = { CRM_TOKEN: s };
      },
      path: /upstreams\.crm\.env\.CRM_TOKEN: must be a secret reference/,
    },
    {
      name: 'an API key instead of its hash',
      mutate: (r, s) => {
        r.clients[0].apiKeys[0].hash = s;
      },
      path: /clients\.0\.apiKeys\.0\.hash: must be sha256:<64 lowercase hex digits>/,
    },
    {
      name: 'a secret reference with an invalid variable name',
      mutate: (r) => {
        r.server.tls = { cert: 'env:1BAD', key: 'env:TLS_KEY' };
      },
      path: /server\.tls\.cert: must be a secret reference/,
    },
  ];
  for (const c of literal) {
    it(`refuses ${c.name}, naming the path but not the value`, () => {
      const secret = `bhk_literal-secret-${Math.random().toString(36).slice(2)}`;
      const raw = good();
      c.mutate(raw, secret);
      const err = loadError(writeConfig(raw));
      assert.match(err.message, c.path);
      assert.ok(!err.message.includes(secret), 'the literal is not echoed');
    });
  }

  it('accepts the same places written as references (control)', () => {
    const raw = good();
    raw.server.tls = { cert: 'file:server.crt', key: 'env:TLS_KEY', clientCa: 'file:/etc/behalf/ca.pem' };
    raw.upstreams.api = {
      transport: 'streamable-http',
      url: 'http://127.0.0.1:1/mcp',
      headers: { authorization: 'env:API_TOKEN' },
    };
    raw.upstreams.crm.env = { CRM_TOKEN: 'env:CRM_TOKEN', MODE: { value: 'demo' } };
    assert.doesNotThrow(() => loadConfigFile(writeConfig(raw)));
  });

  const unresolved: Array<{ name: string; ref: string; env: NodeJS.ProcessEnv; expect: RegExp }> = [
    {
      name: 'env: naming an unset variable',
      ref: 'env:BEHALF_TEST_MISSING',
      env: { OTHER: 'hunter2-value' },
      expect: /^secret env:BEHALF_TEST_MISSING: environment variable BEHALF_TEST_MISSING is not set$/,
    },
    {
      name: 'env: naming an empty variable',
      ref: 'env:BEHALF_TEST_EMPTY',
      env: { BEHALF_TEST_EMPTY: '' },
      expect: /environment variable BEHALF_TEST_EMPTY is not set/,
    },
    {
      name: 'file: naming a missing file',
      ref: 'file:does/not/exist.pem',
      env: {},
      expect: /^secret file:does\/not\/exist\.pem: file cannot be read$/,
    },
    {
      name: 'a literal where a reference is required',
      ref: 'hunter2-value',
      env: {},
      expect: /^not a secret reference: use env:NAME or file:PATH$/,
    },
  ];
  for (const u of unresolved) {
    it(`resolving ${u.name} is a clear config_invalid error without any secret value`, () => {
      assert.throws(
        () => resolveSecret(u.ref, tempDir(), u.env),
        (err: unknown) => {
          assert.ok(err instanceof BehalfError);
          assert.equal(err.code, 'config_invalid');
          assert.match(err.message, u.expect);
          assert.ok(!err.message.includes('hunter2'));
          return true;
        },
      );
    });
  }

  it('resolves env: and file: references (control)', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'key.txt'), 'file-secret\n');
    assert.equal(resolveSecret('env:BEHALF_TEST_SET', dir, { BEHALF_TEST_SET: 'env-secret' }), 'env-secret');
    assert.equal(resolveSecret('file:key.txt', dir, {}), 'file-secret');
  });

  it('a gateway whose TLS certificate is env:MISSING refuses to start, naming the reference and no secret', async () => {
    const raw = good();
    raw.server.tls = { cert: 'env:BEHALF_TEST_MISSING_CERT', key: 'env:BEHALF_TEST_KEY' };
    const loaded = parseConfig(raw, tempDir());
    const env = { BEHALF_TEST_KEY: '-----BEGIN PRIVATE KEY-----hunter2-key-material' };
    await assert.rejects(startGateway(loaded, { env, log: () => {} }), (err: unknown) => {
      assert.ok(err instanceof BehalfError);
      assert.equal(err.code, 'config_invalid');
      assert.match(err.message, /env:BEHALF_TEST_MISSING_CERT/);
      assert.ok(!err.message.includes('hunter2'));
      return true;
    });
  });
});

describe('config: files', () => {
  it('a YAML syntax error gives the line and column', () => {
    const text = ['server:', '  port: 8080', 'upstreams:', '  crm: {transport: stdio, command: [node', ''].join('\n');
    const err = loadError(writeConfig(text));
    assert.match(err.message, /is not valid YAML at line \d+, column \d+$/);
    const [, line] = /line (\d+)/.exec(err.message)!;
    assert.ok(Number(line) >= 4, `points at or after the broken line, got ${line}`);
  });

  it("a YAML error never quotes the file's contents", () => {
    const err = loadError(writeConfig('server:\n  tls: {cert: "hunter2-inline-secret"\n'));
    assert.match(err.message, /not valid YAML at line/);
    assert.ok(!err.message.includes('hunter2'));
  });

  it('an unreadable file is named', () => {
    const missing = join(tempDir(), 'nope.yaml');
    assert.match(
      loadError(missing).message,
      new RegExp(`^cannot read config file ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`),
    );
  });
});

describe('config: JSON Schema (behalf config schema)', () => {
  const schema = gatewayJsonSchema() as {
    type: string;
    required: string[];
    additionalProperties: boolean;
    properties: Record<string, { type?: string; properties?: Record<string, any>; additionalProperties?: unknown }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  it('is an object schema that lists upstreams, userAuth and clientAuth and refuses unknown keys', () => {
    assert.match(String((schema as { $schema?: string }).$schema), /json-schema\.org/);
    assert.equal(schema.type, 'object');
    for (const k of ['upstreams', 'userAuth', 'clientAuth', 'clients', 'server', 'policy'])
      assert.ok(schema.properties[k], `lists ${k}`);
    assert.ok(schema.required.includes('userAuth'));
    assert.ok(schema.required.includes('upstreams'));
    assert.equal(schema.additionalProperties, false);
  });

  it('documents the client-auth methods, the algorithm allow-list and secret references', () => {
    const clientAuth = schema.properties.clientAuth!.properties!;
    assert.deepEqual(clientAuth.methods.items.enum, ['api-key', 'mtls', 'client-credentials']);
    const issuer = schema.properties.userAuth!.properties!.issuers.items;
    const algs: string[] = issuer.properties.algorithms.items.enum;
    assert.ok(algs.includes('ES256'));
    assert.ok(!algs.some((a) => a === 'none' || a.startsWith('HS')), 'no none, no HMAC');
    const tls = schema.properties.server!.properties!.tls;
    assert.match(tls.properties.key.pattern, /env:.*file:/);
  });

  it('`behalf config schema` prints exactly this schema', () => {
    const r = spawnSync(process.execPath, [CLI, 'config', 'schema'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), JSON.parse(JSON.stringify(gatewayJsonSchema())));
  });
});

describe('config: `behalf config check`', () => {
  const check = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, 'config', 'check', ...args], { encoding: 'utf8' });

  it('exits 0 on a good file', () => {
    const r = check('--config', writeConfig(good()));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'configuration is valid\n');
  });

  const bad: Array<{ name: string; file: () => string; expect: RegExp; secret?: string }> = [
    {
      name: 'a missing command',
      file: () => {
        const r = good();
        delete r.upstreams.crm.command;
        return writeConfig(r);
      },
      expect: /^behalf: invalid configuration:\n {2}upstreams\.crm\.command: /,
    },
    {
      name: 'a YAML syntax error',
      file: () => writeConfig('server: [\n'),
      expect: /not valid YAML at line \d+, column \d+/,
    },
    {
      name: 'a literal secret',
      file: () => {
        const r = good();
        r.server.tls = { cert: 'file:c.pem', key: 'hunter2-literal' };
        return writeConfig(r);
      },
      expect: /server\.tls\.key: must be a secret reference/,
      secret: 'hunter2',
    },
    {
      name: 'an unknown key',
      file: () => {
        const r = good();
        r.extra = 1;
        return writeConfig(r);
      },
      expect: /"extra"/,
    },
    { name: 'a missing file', file: () => join(tempDir(), 'missing.yaml'), expect: /cannot read config file/ },
  ];
  for (const b of bad) {
    it(`exits 1 on ${b.name}, with the reason on stderr`, () => {
      const r = check('--config', b.file());
      assert.equal(r.status, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, b.expect);
      if (b.secret) assert.ok(!r.stderr.includes(b.secret));
    });
  }

  it('exits 2 (usage, as every command does) with usage when --config is missing', () => {
    const r = check();
    assert.equal(r.status, 2);
    assert.match(r.stderr, /usage: behalf config check --config FILE/);
  });
});
