import { BehalfError } from '../../errors.js';
import type { RequestContext, Step } from '../context.js';
import { BATCH_VERSIONS } from '../protocol.js';
import type { GatewaySession } from '../session.js';

/**
 * JSON-RPC batches exist in protocol revisions 2024-11-05 and 2025-03-26 only;
 * 2025-06-18 removed them, and later revisions have none. A request's version
 * is its MCP-Protocol-Version header (or, stateless, its first message's
 * `_meta`), else its session's negotiated version; with neither, the
 * transport's rule applies: assume 2025-03-26, which has batches.
 */
export function refuseUnsupportedBatch(ctx: RequestContext, session?: GatewaySession): void {
  if (!ctx.isBatch) return;
  const version = ctx.protocolVersion ?? session?.protocolVersion;
  if (version !== undefined && !BATCH_VERSIONS.has(version)) {
    throw new BehalfError(
      'batch_not_supported',
      `Invalid JSON-RPC request: batches are not supported in protocol version ${version}`,
    );
  }
}

export const checkBatchVersion: Step = {
  name: 'check_batch_version',
  why: "a batch on a revision without batches is refused by the request's own version before any session work; the session's negotiated version is checked by the handler once the session is bound to this caller (an unbound session must not answer differently from an unknown one)",
  run(ctx) {
    refuseUnsupportedBatch(ctx);
  },
};
