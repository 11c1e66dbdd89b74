/**
 * What tokens with unknown `kid`s cost (issue 11, "cheaper failure paths"),
 * against a key set this script serves and counts on 127.0.0.1, with the
 * gateway as its own process:
 *
 *   1. a valid token (the keys are fetched once);
 *   2. 100 tokens with random unknown kids while the IdP is healthy, back to
 *      back, then 100 ms apart (what the refetch interval allows);
 *   3. the IdP hangs; after BENCH_WAIT_S (31 s: past every build's cool-down)
 *      BENCH_HUNG (10) tokens with unknown kids, one after the other;
 *   4. a fresh token with the known kid while the IdP still hangs.
 *
 *   node dist/bench/unknown-kid.js                                  # this tree's gateway
 *   BEHALF_ROOT=/work/wt-base/dist node dist/bench/unknown-kid.js   # another build's
 *
 * The config names only keys every build knows, so each runs its defaults.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { generateApiKey, hashApiKey } from '../src/identity/api-keys.js';
import { newSigningKey, signToken, startJwksServer } from '../test/helpers/jwks-server.js';
import { lineOf } from '../test/helpers/spawned-gateway.js';
import { tempDir } from '../test/helpers/tmp.js';

const WAIT_S = Number(process.env.BENCH_WAIT_S ?? 31);
const HUNG = Number(process.env.BENCH_HUNG ?? 10);
const ISSUER = 'https://idp.bench.test';
const here = fileURLToPath(new URL('..', import.meta.url));
const gatewayRoot = resolve(process.env.BEHALF_ROOT ?? here);

async function main(): Promise<void> {
  const k1 = await newSigningKey('k1');
  const stranger = await newSigningKey();
  const jwks = await startJwksServer([k1]);
  const crm = spawn(process.execPath, [join(here, 'demo/crm/http-main.js'), '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const crmUrl = (JSON.parse(await lineOf(crm, /^\{"url"/)) as { url: string }).url;
  const dir = tempDir('behalf-unknown-kid-');
  const apiKey = generateApiKey();
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    clientAuth: { methods: ['api-key'] },
    clients: [{ id: 'agent', apiKeys: [{ id: 'bench', hash: hashApiKey(apiKey) }], oauthClientIds: ['agent'] }],
    userAuth: { mode: 'dual', issuers: [{ issuer: ISSUER, jwksUri: jwks.url, algorithms: ['ES256'] }] },
    upstreams: { crm: { transport: 'streamable-http', url: crmUrl } },
    policy: { rules: [] },
    audit: { sqlitePath: join(dir, 'audit.db') },
  };
  writeFileSync(join(dir, 'gateway.yaml'), stringify(config));
  const gw = spawn(
    process.execPath,
    [join(gatewayRoot, 'src/cli/main.js'), 'gateway', '--config', join(dir, 'gateway.yaml')],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const url = (await lineOf(gw, /behalf gateway: crm at /)).split(' at ')[1]!.trim();
  const token = (kid?: string) =>
    signToken(kid ? stranger : k1, { iss: ISSUER, aud: url, sub: 'alice', client_id: 'agent' }, kid);
  const initialize = async (t: string) => {
    const started = performance.now();
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-api-key': apiKey,
        authorization: `Bearer ${t}`,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'kid-bench', version: '0' } },
      }),
    });
    await res.arrayBuffer();
    return { status: res.status, ms: performance.now() - started };
  };
  const statuses = (rs: { status: number }[]) => [...new Set(rs.map((r) => r.status))].join(',');
  const randomKid = () => randomBytes(8).toString('hex');
  try {
    console.log(`gateway: ${gatewayRoot}, Node ${process.version}`);
    const valid = await initialize(await token());
    console.log(`1. valid token: ${valid.status} in ${valid.ms.toFixed(1)} ms; JWKS fetches so far: ${jwks.fetches}`);

    let fetches = jwks.fetches;
    let started = performance.now();
    const healthy = [];
    for (let i = 0; i < 100; i++) healthy.push(await initialize(await token(randomKid())));
    console.log(
      `2. IdP healthy, 100 unknown kids one after the other: ${statuses(healthy)} in ${((performance.now() - started) / 1000).toFixed(2)} s; JWKS fetches: ${jwks.fetches - fetches}`,
    );

    fetches = jwks.fetches;
    started = performance.now();
    const paced = [];
    for (let i = 0; i < 100; i++) {
      paced.push(await initialize(await token(randomKid())));
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(
      `2b. IdP healthy, 100 unknown kids 100 ms apart: ${statuses(paced)} in ${((performance.now() - started) / 1000).toFixed(2)} s; JWKS fetches: ${jwks.fetches - fetches}`,
    );

    jwks.hang(true);
    await new Promise((r) => setTimeout(r, WAIT_S * 1000));
    fetches = jwks.fetches;
    started = performance.now();
    const hung = [];
    for (let i = 0; i < HUNG; i++) hung.push(await initialize(await token(randomKid())));
    const ms = hung.map((r) => r.ms).sort((a, b) => a - b);
    console.log(
      `3. IdP hung (after ${WAIT_S} s), ${HUNG} unknown kids one after the other: ${statuses(hung)} in ${((performance.now() - started) / 1000).toFixed(2)} s; per token median ${ms[Math.floor(ms.length / 2)]!.toFixed(1)} ms, max ${ms.at(-1)!.toFixed(1)} ms; JWKS fetch attempts: ${jwks.fetches - fetches}`,
    );
    const known = await initialize(await token());
    console.log(`4. IdP hung, fresh token with the known kid: ${known.status} in ${known.ms.toFixed(1)} ms`);
  } finally {
    jwks.hang(false);
    gw.kill('SIGINT');
    await new Promise((r) => gw.once('exit', r));
    crm.kill('SIGTERM');
    await jwks.close();
  }
}

await main();
