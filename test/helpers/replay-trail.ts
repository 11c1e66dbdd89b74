/**
 * For policy replay tests: the CLI run as its own process, and MCP sessions
 * on a spawned gateway whose calls each note the seq of their decision record.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { AuditRecord } from '../../src/audit/event.js';
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

async function lastCallDecision(auditPath: string): Promise<AuditRecord> {
  const store = new SqliteAuditStore(auditPath, { readonly: true });
  try {
    return (await store.query({ kind: 'decision', method: 'tools/call', limit: 1 }))[0]!;
  } finally {
    await store.close();
  }
}

/**
 * One user's MCP session on the gateway. `call` answers with "STATUS
 * DECISION REASON" and notes the decision's seq in `seqs[name]`: the
 * gateway writes a decision before it answers, so the newest is this call's.
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
  return {
    async call(name: string, tool: string, args: Record<string, unknown>): Promise<string> {
      const r = await postOn(agent, gw.url, headers, {
        jsonrpc: '2.0',
        id: id++,
        method: 'tools/call',
        params: { name: tool, arguments: args },
      });
      const rec = await lastCallDecision(auditPath);
      assert.equal(rec.target, tool);
      seqs[name] = rec.seq;
      return `${r.status} ${rec.decision} ${rec.reason}`;
    },
    close: () => agent.destroy(),
  };
}
