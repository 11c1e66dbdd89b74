import type { DownstreamCredential } from '../delegation/types.js';
import { BehalfError, describeError } from '../errors.js';
import { callRecordOf } from './call-record.js';
import { callerOf } from './caller.js';

/**
 * This user's own credential for a downstream API (docs/architecture.md §5):
 * the strategy configured for `audience` under `sdk.downstreams` — a token
 * exchanged for this user's token (cached per user, audience and scope), a
 * user assertion signed by the server's keys, or a declared service account.
 * No credential, no call: every failure rejects, never with a broader
 * credential, and the reason goes to the log, not to the caller.
 */
export async function downstreamCredential(ctx: unknown, audience: string): Promise<DownstreamCredential> {
  const caller = callerOf(ctx);
  if (!caller)
    throw new BehalfError(
      'downstream_credential_unavailable',
      'the handler context carries no caller verified by behalf',
    );
  const rt = caller.runtime;
  const strategy = rt.downstreams.get(audience);
  if (!strategy)
    throw new BehalfError(
      'downstream_credential_unavailable',
      `no downstream ${JSON.stringify(audience)} in sdk.downstreams`,
    );
  const record = callRecordOf(ctx);
  let credential: DownstreamCredential | undefined;
  try {
    credential = await strategy.credentialFor({ principal: caller.principal, upstream: audience, tool: record?.tool });
  } catch (err) {
    const why = err instanceof BehalfError ? err.message : describeError(err);
    rt.log(`downstream credential for ${audience} failed: ${why}`);
    throw new BehalfError('downstream_credential_unavailable', why, {}, { cause: err });
  }
  if (!credential) throw new BehalfError('downstream_credential_unavailable', `downstream ${audience} has no strategy`);
  record?.credentialIds.push(credential.id);
  return credential;
}
