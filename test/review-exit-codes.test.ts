/**
 * behalf review's verdicts that must not mislead (issue 16): severities and the
 * `warn` status, exit codes 0/1/2/4 with --fail-on, failing fast on a target
 * that is not an MCP endpoint, hints that wrap instead of being cut, and the
 * pointer to a quickstart's own profile.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { startQuickstart, type Quickstart } from '../demo/quickstart/run.js';
import { summaryTable } from '../src/cli/review-format.js';
import { loadProfile, profileSchema } from '../src/review/profile.js';
import { runReview } from '../src/review/run.js';
import { renderSarif } from '../src/review/evidence/sarif.js';
import { reviewExitCode, withSeverities } from '../src/review/severity.js';
import type { CheckResult } from '../src/review/types.js';
import { tempDir } from './helpers/tmp.js';

const BIN = fileURLToPath(new URL('../../bin/behalf.js', import.meta.url));
const GOOD_TOKEN = 'opaque-good-token-for-the-review-test';

function behalf(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, ...args], { ...opts, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function listen(server: Server): Promise<string> {
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

/** An official-SDK server behind the SDK's own requireBearerAuth: correct, except error="invalid_token" on a request with no token. */
async function sdkBearerServer(): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  const server = createServer(app);
  const base = await listen(server);
  const metadataUrl = `${base}/.well-known/oauth-protected-resource/mcp`;
  app.get('/.well-known/oauth-protected-resource/mcp', (_req, res) => {
    res.json({ resource: `${base}/mcp`, authorization_servers: [`${base}/issuer`] });
  });
  const verifier = {
    verifyAccessToken(token: string) {
      if (token !== GOOD_TOKEN) return Promise.reject(new InvalidTokenError('unknown token'));
      return Promise.resolve({ token, clientId: 'agent', scopes: [], expiresAt: Math.floor(Date.now() / 1000) + 3600 });
    },
  };
  app.post(
    '/mcp',
    express.json(),
    requireBearerAuth({ verifier, resourceMetadataUrl: metadataUrl }),
    async (req, res) => {
      const mcp = new McpServer({ name: 'sdk-bearer', version: '1.0.0' });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      await mcp.connect(transport);
      res.on('close', () => void mcp.close());
      await transport.handleRequest(req, res, req.body);
    },
  );
  return { url: `${base}/mcp`, close: () => new Promise((r) => server.close(() => r())) };
}

function synthetic(
  id: CheckResult['id'],
  status: CheckResult['status'],
  outcome: 'bad' | 'warn' | 'ok' = 'ok',
): CheckResult {
  return withSeverities({
    id,
    title: id,
    question: '',
    status,
    finding: '',
    remediation: '',
    evidence: [{ outcome, probe: 'p' }],
    durationMs: 0,
  });
}

describe('review severities and exit codes', () => {
  it('maps statuses to exit codes with --fail-on: 0 clean, 1 at or above the bar, 4 not clean below it', () => {
    const pass = synthetic('BND-01', 'pass');
    const na = { ...synthetic('BND-02', 'n/a'), evidence: [] };
    assert.equal(reviewExitCode([pass, na], 'high'), 0);
    const critical = synthetic('BND-05', 'fail', 'bad');
    assert.equal(critical.severity, 'critical');
    assert.equal(critical.evidence[0]!.severity, 'critical', 'each bad item carries a severity');
    assert.equal(reviewExitCode([pass, critical], 'high'), 1);
    const medium = synthetic('BND-06', 'fail', 'bad');
    assert.equal(medium.severity, 'medium');
    assert.equal(
      reviewExitCode([pass, medium], 'high'),
      4,
      'a medium failure under --fail-on high is not clean, not 1',
    );
    assert.equal(reviewExitCode([pass, medium], 'medium'), 1);
    const warn = synthetic('BND-11', 'warn', 'warn');
    assert.equal(warn.severity, 'low');
    assert.equal(reviewExitCode([pass, warn], 'high'), 4);
    assert.equal(reviewExitCode([pass, warn], 'low'), 1);
    const partial = synthetic('BND-03', 'partial');
    assert.equal(reviewExitCode([pass, partial], 'low'), 4);
    const notSelected = { ...synthetic('BND-04', 'not-assessed'), reason: 'not selected in this run' };
    assert.equal(reviewExitCode([pass, notSelected], 'high'), 0, '--only leaves the others out of the verdict');
  });

  it("BND-11 against the SDK's requireBearerAuth: error= on a tokenless challenge is warn/low (SARIF note), not fail", async () => {
    const srv = await sdkBearerServer();
    try {
      const profile = profileSchema.parse({
        identities: { alice: { headers: { authorization: `Bearer ${GOOD_TOKEN}` } } },
      });
      const run = await runReview(
        { target: new URL(srv.url), transport: 'streamable', profile: { profile, dir: tempDir() } },
        { only: ['BND-11'] },
      );
      const b11 = run.pack.checks.find((c) => c.id === 'BND-11')!;
      const lines = b11.evidence.map((e) => `${e.outcome} ${e.probe}: ${e.observed ?? ''}`).join('\n');
      assert.equal(b11.status, 'warn', lines);
      assert.equal(b11.severity, 'low');
      const item = b11.evidence.find((e) => /without a token carries no error code/.test(e.probe))!;
      assert.equal(item.outcome, 'warn');
      assert.match(item.observed ?? '', /invalid_token/);
      // Everything else about it is right (positive control): metadata, the garbage-token challenge.
      assert.ok(!b11.evidence.some((e) => e.outcome === 'bad'), lines);
      assert.equal(b11.evidence.find((e) => /garbage bearer/.test(e.probe))?.outcome, 'ok', lines);
      const sarif = renderSarif(run.pack) as {
        runs: Array<{ results: Array<{ ruleId: string; level: string; kind: string }> }>;
      };
      const r = sarif.runs[0]!.results.find((x) => x.ruleId === 'BND-11')!;
      assert.deepEqual([r.kind, r.level], ['fail', 'note']);
      assert.equal(reviewExitCode(run.pack.checks as CheckResult[], 'high'), 4);
    } finally {
      await srv.close();
    }
  });
});

describe('behalf review on the command line: fail fast, wrapped hints, the quickstart profile', () => {
  let qs: Quickstart;
  let html: Server;
  let htmlUrl: string;
  before(async () => {
    qs = await startQuickstart({
      ...process.env,
      BEHALF_STATE_DIR: join(tempDir('behalf-review-exit-'), '.behalf'),
      BEHALF_PORT: '',
    });
    html = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>hello</body></html>'),
    );
    htmlUrl = `${await listen(html)}/mcp`;
  });
  after(async () => {
    await qs?.close();
    await new Promise((r) => html?.close(r));
  });

  it('a wrong path (404) and a web page end the review at once with exit 2 and one line; the right path runs', async () => {
    const wrong = qs.file.gateway.replace(/\/mcp\/crm$/, '/mcp/nope');
    for (const [target, why] of [
      [wrong, /not an MCP endpoint: HTTP 404/],
      [htmlUrl, /not an MCP endpoint: HTTP 200 \(text\/html\)/],
      ['http://127.0.0.1:9/mcp', /unreachable/],
    ] as const) {
      const out = join(tempDir(), 'pack');
      const r = await behalf([
        'review',
        '--target',
        target,
        '--profile',
        qs.file.review.profile,
        '--out',
        out,
        '--quiet',
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, why);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.equal(existsSync(out), false, 'no checks ran, no pack was written');
    }
    const ok = await behalf([
      'review',
      '--target',
      qs.file.gateway,
      '--profile',
      qs.file.review.profile,
      '--out',
      join(tempDir(), 'p'),
      '--only',
      'BND-01',
      '--quiet',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('without --profile in a quickstart folder it points to .behalf/review-profile.yaml and exits 4 (not assessed), not 0', async () => {
    const cwd = dirname(qs.stateDir);
    const { BEHALF_STATE_DIR: _unused, ...env } = process.env;
    const r = await behalf(['review', '--target', qs.file.gateway, '--out', 'review-out', '--only', 'BND-03,BND-05'], {
      cwd,
      env,
    });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr.replace(/\s+/g, ' '), /add --profile \.behalf\/review-profile\.yaml/);
    assert.match(r.stdout, /exit 4: nothing failed/);
    // The table's findings are whole: a hint naming the profile field to add is never cut mid-word.
    assert.doesNotMatch(r.stdout, /…/);
    const pack = JSON.parse(readFileSync(join(cwd, 'review-out', 'evidence.json'), 'utf8')) as {
      checks: CheckResult[];
    };
    for (const c of pack.checks.filter((x) => x.status === 'not-assessed' && x.reason !== 'not selected in this run'))
      for (const word of c.finding.split(/\s+/)) assert.ok(r.stdout.includes(word), `${c.id}: "${word}" is shown`);
  });

  it('BND-06 calls a safe listed tool that needs no arguments with {}, and names each listed tool it could not compare', async () => {
    const loaded = loadProfile(qs.file.review.profile);
    // No crossUser calls: nothing gives get_customer's required customer_id, so it cannot be compared.
    const profile = { ...loaded, profile: { ...loaded.profile, crossUser: [], examples: {} } };
    const run = await runReview(
      { target: new URL(qs.file.gateway), transport: 'streamable', profile },
      { only: ['BND-06'] },
    );
    const b06 = run.pack.checks.find((c) => c.id === 'BND-06')!;
    const lines = b06.evidence.map((e) => `${e.outcome} ${e.probe}: ${e.detail ?? ''}`).join('\n');
    const skipped = b06.evidence.find((e) => e.probe === 'listed tools not compared');
    assert.ok(skipped, lines);
    assert.match(
      skipped.detail ?? '',
      /get_customer: no arguments to call it with \(its input schema requires customer_id\); add profile\.examples\.get_customer/,
    );
    assert.ok(!loaded.profile.safeToCall.includes('update_customer'));
    assert.match(skipped.detail ?? '', /update_customer: not in safeToCall, so never called/);
    // list_customers needs no argument: it was called bare for the users it is listed to.
    assert.ok(
      b06.evidence.some((e) => /calls list_customers\(\{\}\), listed to/.test(e.probe) && e.outcome !== 'not-assessed'),
      lines,
    );
  });

  it('wraps a long finding under its column instead of cutting it', () => {
    const finding =
      'the profile names no client-only identity, so a client without a user cannot be tried: add one (clientOnly: an identity name whose headers carry the client credential alone)';
    const table = summaryTable(
      [{ ...synthetic('BND-03', 'not-assessed'), title: 'user-identity-required', finding }],
      false,
      80,
    );
    for (const line of table.split('\n')) assert.ok(line.length <= 80, `≤ 80 columns: ${line}`);
    assert.equal(table.split('\n').slice(1).join(' ').replace(/\s+/g, ' ').includes(finding), true);
  });
});
