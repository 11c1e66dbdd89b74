import type { Server } from 'node:http';
import type { AuditLog } from '../../audit/audit-log.js';
import type { GatewayConfig } from '../../config/schema.js';
import { AuthFailureRecorder } from './auth-failures.js';
import { BodyBudget } from './body-budget.js';
import { guardConnections, type ConnectionGuard } from './connections.js';
import { intervalLogger, type IntervalLogger } from './tally.js';

/** What bounds the cost of requests together: connections, buffered bodies, the writes of failed authentications. */
export interface RuntimeLimits {
  connections: ConnectionGuard;
  bodies: BodyBudget;
  authFailures: AuthFailureRecorder;
  /** Refusals at a limit, logged once per interval per kind. */
  logs: IntervalLogger;
  /** The body cap of an authenticated client: its own maxBodyBytes, else server.maxBodyBytes. */
  maxBodyBytesOf(clientId: string | undefined): number;
  /** Logs and writes what was counted; before the audit log closes. */
  flush(): void;
}

export function buildLimits(
  config: GatewayConfig,
  server: Server,
  audit: AuditLog,
  log: (line: string) => void,
): RuntimeLimits {
  const logs = intervalLogger(log);
  const { maxBufferedBodyBytes } = config.server;
  const perClient = new Map(
    config.clients.flatMap((c) => (c.maxBodyBytes === undefined ? [] : [[c.id, c.maxBodyBytes] as const])),
  );
  const authFailures = new AuthFailureRecorder(audit);
  return {
    connections: guardConnections(server, config.server, logs),
    bodies: new BodyBudget(maxBufferedBodyBytes, () =>
      logs.note('bodies', `request refused with 503: server.maxBufferedBodyBytes (${maxBufferedBodyBytes}) reached`),
    ),
    authFailures,
    logs,
    maxBodyBytesOf: (clientId) =>
      (clientId === undefined ? undefined : perClient.get(clientId)) ?? config.server.maxBodyBytes,
    flush() {
      logs.flush();
      authFailures.flush();
    },
  };
}
