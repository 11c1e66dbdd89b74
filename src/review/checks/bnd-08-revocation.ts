import { execFile } from 'node:child_process';
import { decodeJwt } from 'jose';
import { bearerOf } from '../credentials.js';
import type { ReviewContext } from '../context.js';
import { initializeBody, LATEST_PROTOCOL } from '../mcp.js';
import { openStream } from '../stream-probe.js';
import type { EvidenceItem } from '../types.js';
import { postOnce, reasonOf } from './user-probes.js';

const COMMAND_TIMEOUT_MS = 15_000;
/** A subject put into a shell command must be plain: anything else is not run. */
const PLAIN_SUBJECT = /^[A-Za-z0-9@._:|+-]{1,200}$/;

const PROBE = 'revocation ends the session and its stream, and the token is refused';

/**
 * BND-08's second half: does revoking a user end what she has open? With
 * `profile.revoke` (a command, `{sub}` replaced by the subject of the
 * token `revoke.user` gives), that token opens a session and its standing
 * stream; the command runs; the stream must end within `waitSeconds`, and a
 * request with the same token on the same session must then be refused.
 * Without the field the check says what to add. Identities resolved so far
 * are forgotten afterwards, and the next second awaited, so later checks
 * acting as the same user use a token issued after the revocation.
 */
export async function revocationProbe(ctx: ReviewContext): Promise<EvidenceItem> {
  const cfg = ctx.profile.revoke;
  if (!cfg)
    return { outcome: 'info', probe: PROBE, detail: 'not probed: add profile.revoke { command: "… {sub} …", user: CREDENTIAL } to check that a revoked user is cut off' };
  const name = 'revoke.user';
  let mark = ctx.mark();
  let headers: Record<string, string>;
  try {
    headers = await ctx.resolve(cfg.user);
  } catch (err) {
    return { outcome: 'not-assessed', probe: PROBE, detail: `profile.revoke.user could not be had: ${reasonOf(ctx, err)}` };
  }
  let sub: unknown;
  try {
    sub = decodeJwt(bearerOf(headers) ?? '').sub;
  } catch {
    // Not a JWT: there is no subject to name in the command; reported below.
    sub = undefined;
  }
  if (typeof sub !== 'string' || !PLAIN_SUBJECT.test(sub))
    return { outcome: 'not-assessed', probe: PROBE, detail: `${name} gives no bearer JWT with a plain sub to put in the revoke command` };

  ctx.step('BND-08', `initialize as ${sub}, to be revoked`);
  const init = await postOnce(ctx, { headers, body: initializeBody('bnd-08-revoke-init') });
  const sessionId = init.reply?.headers.get('mcp-session-id') ?? undefined;
  if (!init.reply || init.reply.status >= 300 || !sessionId)
    return { outcome: 'not-assessed', probe: PROBE, observed: init.observed, detail: 'positive control failed: no session was opened', exchanges: ctx.since(mark) };
  const version = (init.reply.messages.find((m) => 'result' in m)?.result as { protocolVersion?: string } | undefined)?.protocolVersion ?? LATEST_PROTOCOL;
  const session = { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': version };
  await postOnce(ctx, { headers: session, body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
  const waitMs = cfg.waitSeconds * 1000;
  // A stream that cannot be opened is judged below as none offered; the revocation is still checked on the session.
  const stream = await openStream(ctx, { headers: session, maxMs: waitMs + COMMAND_TIMEOUT_MS + 2000 }).catch(() => undefined);
  const streaming = stream?.status === 200 && stream.isStream;
  try {
    ctx.step('BND-08', `revoke ${sub}`);
    const ran = await run(cfg.command.replaceAll('{sub}', `'${sub}'`), ctx.inputs.profile?.dir ?? process.cwd());
    const revokedAt = Date.now();
    if (ran) return { outcome: 'not-assessed', probe: PROBE, detail: `the revoke command failed: ${ran}`, exchanges: ctx.since(mark) };
    const endedAt = streaming ? await stream.waitForEnd(revokedAt + waitMs) : undefined;
    mark = ctx.mark();
    ctx.step('BND-08', 'tools/list on the revoked session');
    const late = await postOnce(ctx, { headers: session, body: { jsonrpc: '2.0', id: 'bnd-08-revoked', method: 'tools/list', params: {} } });
    const refused = late.reply !== undefined && late.reply.status >= 400 && late.reply.status < 500;
    const problems = [
      ...(streaming && endedAt === undefined ? [`the stream was still open ${cfg.waitSeconds} s after the revocation`] : []),
      ...(refused ? [] : [`the revoked token was answered ${late.observed}`]),
    ];
    return {
      outcome: problems.length ? 'bad' : 'ok',
      probe: PROBE,
      expected: `the stream ends within ${cfg.waitSeconds} s of the revocation and the token is refused (4xx)`,
      observed: `${streaming ? (endedAt === undefined ? 'stream still open' : `stream ended ${((endedAt - revokedAt) / 1000).toFixed(1)} s after`) : 'no standing stream offered'}; then ${late.observed}`,
      ...(problems.length ? { detail: `${problems.join('; ')}: a revoked user keeps access` } : {}),
      exchanges: ctx.since(mark),
    };
  } finally {
    stream?.close();
    ctx.forgetIdentities();
    // Tokens count from whole seconds (iat): one issued in the revocation's second could still be refused.
    await new Promise((r) => setTimeout(r, 1100 - (Date.now() % 1000)));
  }
}

/** Runs the revoke command; resolves with why it failed, or undefined. Its output is not kept (it may name a credential). */
function run(command: string, cwd: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', command], { cwd, timeout: COMMAND_TIMEOUT_MS, env: process.env }, (err) =>
      resolve(err ? `exit ${(err as NodeJS.ErrnoException).code ?? 'error'}` : undefined),
    );
  });
}
