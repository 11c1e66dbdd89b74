/**
 * Usage of the commands that have no module of their own to keep it in, and
 * the hints a failed command adds to its one-line error.
 */
export const QUICKSTART_USAGE = `usage: behalf quickstart     (npm start)
  runs the dev identity provider, the demo CRM and the gateway on 127.0.0.1, writing .behalf/
  BEHALF_PORT          the gateway's port (default: the first free one from 8787; the IdP takes the next)
  BEHALF_STATE_DIR     the state folder (default ./.behalf); one quickstart per folder (quickstart.lock):
                       a second one in the same folder is refused while the first runs (exit 3)
Ctrl-C stops it and removes what it wrote (credentials, lock); the audit trail and files stay.`;

export const GATEWAY_USAGE = `usage: behalf gateway --config FILE [--instance-id ID]
  runs the gateway from a config file; every env:/file: reference is checked first
  --instance-id   names this instance in logs and audit records (default: the config's state.instanceId, else host-pid)
Signals: SIGINT/SIGTERM stop it; SIGHUP reloads the policy file.
The port is server.port; if it is taken, start fails with EADDRINUSE (pick another server.port).`;

export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/** A hint for errors whose fix is known but not in their message: a port in use names the setting that moves it. */
export function hintFor(err: unknown, command: string | undefined): string | undefined {
  const e = err as NodeJS.ErrnoException & { port?: number };
  if (e?.code !== 'EADDRINUSE') return undefined;
  const port = e.port ? ` ${e.port}` : '';
  return command === 'quickstart'
    ? `port${port} is in use: another process (perhaps another quickstart) listens there; choose one with BEHALF_PORT=<port> npm start`
    : `port${port} is in use: another process listens there; set server.port in the config to a free port (or stop that process)`;
}
