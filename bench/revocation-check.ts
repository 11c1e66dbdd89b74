/**
 * What the revocation check costs per call (docs/revocation.md):
 *
 * 1. in-process, the exact check every request runs (RevocationService.check
 *    plus the session lookup), with nothing revoked and with 10,000 other
 *    users, tokens and sessions revoked; timed in batches of 1,000 calls
 *    (one call is below the timer's resolution), median and p99 per call;
 * 2. round trips through one gateway in this run, on one session: before
 *    (nothing revoked) and right after (10,000 revocations in force, none of
 *    this user's). A revocation cannot be taken back, so the two series run
 *    in that order.
 */
import { join } from 'node:path';
import { AuditLog } from '../src/audit/audit-log.js';
import { SqliteAuditStore } from '../src/audit/sqlite-store.js';
import { parseConfig } from '../src/config/load.js';
import { startGateway } from '../src/gateway/server.js';
import { generateApiKey } from '../src/identity/api-keys.js';
import type { Principal } from '../src/identity/principal.js';
import { RevocationService, type RevocationRequest } from '../src/revocation/service.js';
import { sessionFingerprint } from '../src/state/sessions.js';
import { tempDir } from '../test/helpers/tmp.js';
import { benchGatewayConfig, benchToken, spawnDemoCrm, startBenchIdp } from './bench-setup.js';

const REVOKED = 10_000;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const principal: Principal = {
  client: { id: 'agent', method: 'api-key', credentialId: 'k1' },
  user: {
    issuer: 'https://idp.example',
    subject: 'alice',
    claims: {},
    scopes: [],
    tokenId: 'jti-alice',
    issuedAt: Math.floor(Date.now() / 1000),
    keyId: 'kid-1',
    expiresAt: Math.floor(Date.now() / 1000) + 600,
    tokenFingerprint: '0123456789abcdef',
  },
};

function others(i: number): RevocationRequest[] {
  const base = { actor: 'bench', source: 'admin' as const, reason: 'bench' };
  return [
    { ...base, kind: 'user', value: `user-${i}`, issuer: 'https://idp.example' },
    { ...base, kind: 'token', value: `jti-${i}` },
    { ...base, kind: 'session', value: sessionFingerprint(`session-${i}`) },
  ];
}

/** Per-call cost of the check, µs: batches of 1,000. */
function timeCheck(service: RevocationService, sessionId: string, batches = 300): { median: number; p99: number } {
  const perCall: number[] = [];
  let hits = 0;
  for (let b = 0; b < batches; b++) {
    const t = performance.now();
    for (let i = 0; i < 1000; i++) {
      if (service.check(principal)) hits++;
      if (service.set.hasSessions && service.sessionRevoked(sessionFingerprint(sessionId))) hits++;
    }
    perCall.push(((performance.now() - t) * 1000) / 1000);
  }
  if (hits) throw new Error('the bench principal must not be revoked');
  return { median: pct(perCall, 50), p99: pct(perCall, 99) };
}

export async function benchRevocationCheck(calls = 1000): Promise<void> {
  const audit = new AuditLog(new SqliteAuditStore(':memory:'));
  const service = new RevocationService({ ttlMs: 3_600_000, audit, log: () => {}, instanceId: 'bench' });
  timeCheck(service, 'warm-up', 50);
  const empty = timeCheck(service, 'bench-session');
  for (let i = 0; i < REVOKED / 3; i++) for (const r of others(i)) await service.revoke(r);
  // The audit records of 10,000 revocations are written meanwhile: let them land before timing.
  await new Promise((r) => setTimeout(r, 2000));
  timeCheck(service, 'warm-up', 50);
  const full = timeCheck(service, 'bench-session');
  service.close();
  await audit.close();
  console.log(
    '\nrevocation check per call, in-process (batches of 1,000; the session id is hashed when a session is revoked)',
  );
  console.table([
    { revocations: 0, 'median µs': empty.median.toFixed(3), 'p99 µs': empty.p99.toFixed(3) },
    { revocations: service.set.size, 'median µs': full.median.toFixed(3), 'p99 µs': full.p99.toFixed(3) },
  ]);
  await roundTrips(calls);
}

async function roundTrips(calls: number): Promise<void> {
  const { crm, crmUrl } = await spawnDemoCrm();
  const idp = await startBenchIdp();
  const apiKey = generateApiKey();
  const dir = tempDir('behalf-bench-revocation-');
  const gw = await startGateway(
    parseConfig(
      {
        ...benchGatewayConfig({ issuer: idp.issuer, apiKey, crmUrl }),
        audit: { sqlitePath: join(dir, 'audit.db') },
      },
      dir,
    ),
    { log: () => {} },
  );
  try {
    const url = gw.urlFor('crm');
    const token = await benchToken(idp, url);
    const headers = {
      'x-api-key': apiKey,
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    };
    const send = async (body: unknown, h: Record<string, string>) => {
      const res = await fetch(url, { method: 'POST', headers: h, body: JSON.stringify(body) });
      const text = await res.text();
      if (res.status >= 300) throw new Error(`bench call failed: ${res.status} ${text}`);
      return res;
    };
    const init = await send(
      {
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '0' } },
      },
      headers,
    );
    const h = {
      ...headers,
      'mcp-session-id': init.headers.get('mcp-session-id')!,
      'mcp-protocol-version': '2025-11-25',
    };
    await send({ jsonrpc: '2.0', method: 'notifications/initialized' }, h);
    const call = (i: number) =>
      send(
        {
          jsonrpc: '2.0',
          id: i + 1,
          method: 'tools/call',
          params: { name: 'get_customer', arguments: { customer_id: 'c-100' } },
        },
        h,
      );
    const series = async (n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await call(i);
        out.push(performance.now() - t);
      }
      return out;
    };
    // A long warm-up: the two series cannot interleave (a revocation is not taken back), so JIT warm-up must be over first.
    await series(Math.max(1000, calls));
    const before: number[] = [];
    const after: number[] = [];
    const service = gw.runtime.revocations!.service;
    const revokeOthers = async () => {
      for (let i = 0; i < REVOKED / 3; i++) for (const r of others(i)) await service.revoke(r);
    };
    before.push(...(await series(calls)));
    await revokeOthers();
    await new Promise((r) => setTimeout(r, 2000));
    after.push(...(await series(calls)));
    console.log(`\nround trip through the gateway, tools/call get_customer, ${calls} sequential calls each`);
    console.table([
      {
        series: 'before: nothing revoked',
        'median ms': pct(before, 50).toFixed(3),
        'p99 ms': pct(before, 99).toFixed(3),
      },
      {
        series: `after: ${service.set.size} revocations in force`,
        'median ms': pct(after, 50).toFixed(3),
        'p99 ms': pct(after, 99).toFixed(3),
      },
    ]);
    console.log(`round-trip ratio after/before (median): ${(pct(after, 50) / pct(before, 50)).toFixed(3)}`);
  } finally {
    await gw.close();
    crm.kill('SIGTERM');
    await idp.close();
  }
}
