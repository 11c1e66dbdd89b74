/**
 * `BENCH_ONLY=sdk npm run bench`: what `behalf/sdk` costs a server per call,
 * in-process, in one run: the demo CRM on MCP SDK v1 answering `tools/call
 * get_customer` without the boundary, and the same server behind it (the
 * request's authentication — a verified-token cache hit after the first —
 * the policy decision, the decision record awaited from the SQLite audit
 * writer, the handler, the outcome record). Messages go straight into the
 * server's transport, so HTTP is not measured: only what the SDK adds.
 * Rounds alternate between the two so a shared machine's drift hits both.
 * CPU is the whole process's (the audit writer thread included).
 */
import { join } from 'node:path';
import type { AuditEvent, AuditRecord, AuditStore } from '../src/audit/event.js';
import { createCustomerStore } from '../demo/crm/data.js';
import { createCrmServer } from '../demo/crm/server.js';
import { DEMO_POLICY } from '../demo/quickstart/policy.js';
import { authInfoFor, SdkCaller, type BehalfAuthInfo } from '../src/sdk/caller.js';
import { createBoundary, type Boundary } from '../src/sdk/index.js';
import { DirectTransport } from '../test/helpers/direct-transport.js';
import { tempDir } from '../test/helpers/tmp.js';
import { benchToken, startBenchIdp } from './bench-setup.js';

const RESOURCE = 'http://127.0.0.1:1/mcp';

/** For the breakdown only: a store that keeps nothing, so the boundary's own checks are measured apart from the audit write. */
class DiscardingStore implements AuditStore {
  private seq = 0;
  append(event: AuditEvent): Promise<AuditRecord> {
    return Promise.resolve({ ...event, seq: ++this.seq, prevHash: '', hash: '' });
  }
  query(): Promise<AuditRecord[]> {
    return Promise.resolve([]);
  }
  async *records(): AsyncIterable<AuditRecord> {}
  secret(): Promise<Buffer> {
    return Promise.resolve(Buffer.alloc(32));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

type Which = 'plain' | 'protected' | 'noAudit';

export interface SdkBenchResult {
  calls: number;
  /** The same server without the SDK, with it (audit on, SQLite), and with it but a discarding audit store (breakdown). */
  series: Record<Which, { medianUs: number; cpuUsPerCall: number }>;
}

async function connected(boundary?: Boundary): Promise<DirectTransport> {
  const server = createCrmServer(createCustomerStore());
  if (boundary) boundary.protect(server);
  const t = new DirectTransport();
  await server.connect(t);
  return t;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function benchSdkInProcess(calls = 4000, rounds = 8): Promise<SdkBenchResult> {
  const idp = await startBenchIdp();
  const dir = tempDir('behalf-bench-sdk-');
  const raw = {
    clients: [{ id: 'agent', oauthClientIds: ['agent'] }],
    userAuth: {
      mode: 'oauth',
      issuers: [{ issuer: idp.issuer, algorithms: ['ES256'], userClaims: ['role', 'customers'] }],
    },
    policy: { rules: DEMO_POLICY },
    audit: { sqlitePath: join(dir, 'audit.db') },
    sdk: { name: 'crm', resource: RESOURCE },
  };
  const boundary = await createBoundary({ config: { raw, baseDir: dir }, log: () => undefined });
  const bare = await createBoundary({
    config: { raw, baseDir: dir },
    log: () => undefined,
    auditStore: new DiscardingStore(),
  });
  try {
    const token = await benchToken(idp, RESOURCE);
    // What the middleware does per request, minus HTTP: authenticate (a cache hit after the first), build the auth info.
    const authenticated = async (b: Boundary): Promise<BehalfAuthInfo> => {
      const headers = { authorization: `Bearer ${token}` };
      const principal = await b.runtime.authenticator.authenticate({ headers, resource: RESOURCE });
      return authInfoFor(new SdkCaller(principal, b.runtime));
    };
    const servers: Record<Which, { t: DirectTransport; b?: Boundary }> = {
      plain: { t: await connected() },
      protected: { t: await connected(boundary), b: boundary },
      noAudit: { t: await connected(bare), b: bare },
    };
    const init = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '0' } };
    for (const { t, b } of Object.values(servers))
      await t.request(0, 'initialize', init, b && (await authenticated(b)));
    const args = { name: 'get_customer', arguments: { customer_id: 'c-100' } };
    const series: Record<Which, number[]> = { plain: [], protected: [], noAudit: [] };
    const cpu: Record<Which, number> = { plain: 0, protected: 0, noAudit: 0 };
    let id = 1;
    const batch = async (which: Which, n: number, record: boolean) => {
      const { t: transport, b } = servers[which];
      const c0 = process.cpuUsage();
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        const reply = await transport.request(id++, 'tools/call', args, b && (await authenticated(b)));
        if (record) series[which].push((performance.now() - t) * 1000);
        if (!('result' in reply)) throw new Error(`${which}: the call failed: ${JSON.stringify(reply)}`);
      }
      const c = process.cpuUsage(c0);
      if (record) cpu[which] += c.user + c.system;
    };
    const order: Which[] = ['plain', 'protected', 'noAudit'];
    for (const w of order) await batch(w, 300, false);
    const per = Math.ceil(calls / rounds);
    for (let r = 0; r < rounds; r++) for (const w of order) await batch(w, per, true);
    const total = per * rounds;
    const of = (w: Which) => ({ medianUs: median(series[w]), cpuUsPerCall: cpu[w] / total });
    return { calls: total, series: { plain: of('plain'), protected: of('protected'), noAudit: of('noAudit') } };
  } finally {
    await boundary.close();
    await bare.close();
    await idp.close();
  }
}
