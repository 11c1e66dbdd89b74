import type { ServerResponse } from 'node:http';
import type { AuditHealth } from '../audit/event.js';
import { sendJson } from './http-io.js';

const NO_STORE = { 'cache-control': 'no-store' };

/**
 * GET /readyz, unauthenticated like /healthz: 200 while calls can be
 * served; 503 while they would all be refused because the audit store
 * cannot take records (locked, failing, moved, its writer stopped). The
 * reason is a fixed phrase: paths and causes go to the operator's log only.
 */
export function sendReadiness(res: ServerResponse, audit: AuditHealth): void {
  if (audit.ready) return sendJson(res, 200, { status: 'ready' }, NO_STORE);
  sendJson(res, 503, { status: 'not ready', reason: audit.reason }, NO_STORE);
}
