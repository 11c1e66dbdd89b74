/**
 * For policy replay tests: the CLI run as its own process, and MCP sessions
 * on a spawned gateway whose calls each note the seq of their decision record.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import { DEMO_POLICY } from '../../demo/quickstart/policy.js';
import type { AuditRecord } from '../../src/audit/event.js';
import type { PolicyRuleConfig } from '../../src/config/schema.js';
import { SqliteAuditStore } from '../../src/audit/sqlite-store.js';
import { postOn, type SpawnedGateway } from './spawned-gateway.js';

export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** The CLI as its own process; asynchronously, so an IdP living in the test's process keeps answering meanwhile. */
export function behalf(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

async function lastDecision(auditPath: string, method: string): Promise<AuditRecord> {
  const store = new SqliteAuditStore(auditPath, { readonly: true });
  try {
    return (await store.query({ kind: 'decision', method, limit: 1 }))[0]!;
  } finally {
    await store.close();
  }
}

/**
 * One user's MCP session on the gateway. `request` (and `call`, a
 * tools/call) answers with "STATUS DECISION REASON" and notes the decision's
 * seq in `seqs[name]`: the gateway writes a decision before it answers, so
 * the newest of its method is this request's.
 */
export async function replaySession(gw: SpawnedGateway, auditPath: string, seqs: Record<string, number>, user: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const base = await gw.headersFor(user);
  const init = await postOn(agent, gw.url, base, {
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'replay-test', version: '0' } },
  });
  assert.equal(init.status, 200, init.text);
  const headers = {
    ...base,
    'mcp-session-id': String(init.headers['mcp-session-id']),
    'mcp-protocol-version': '2025-11-25',
  };
  let id = 1;
  const request = async (name: string, method: string, params: Record<string, unknown>): Promise<string> => {
    const r = await postOn(agent, gw.url, headers, { jsonrpc: '2.0', id: id++, method, params });
    const rec = await lastDecision(auditPath, method);
    seqs[name] = rec.seq;
    return `${r.status} ${rec.decision} ${rec.reason}`;
  };
  return {
    request,
    call: (name: string, tool: string, args: Record<string, unknown>) =>
      request(name, 'tools/call', { name: tool, arguments: args }),
    close: () => agent.destroy(),
  };
}

/** The demo policy with one rule changed. */
export function withRule(id: string, change: Partial<PolicyRuleConfig>): PolicyRuleConfig[] {
  return DEMO_POLICY.map((r) => (r.id === id ? { ...r, ...change } : r));
}

/** The seqs of a report's examples, in order. */
export const seqsOf = (examples: ReadonlyArray<{ seq: number }>) => examples.map((e) => e.seq).sort((a, b) => a - b);

/** carol may export once; her second export within the test is refused by the limit, whatever the policy. */
export const RATE_LIMITS = [
  { id: 'export-once', per: ['user'], tools: ['export_all_customers'], capacity: 1, refillPerSecond: 0.001 },
];
