import { instanceIdOf } from '../audit/configured-store.js';
import { BehalfError, describeError } from '../errors.js';
import { startGateway } from '../gateway/server.js';
import { parse } from './args.js';
import { checkedConfig } from './config.js';

export async function gatewayCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, { config: { type: 'string', short: 'c' }, 'instance-id': { type: 'string' } });
  if (!values.config) throw new BehalfError('usage', 'usage: behalf gateway --config FILE [--instance-id ID]');
  const given = values['instance-id'];
  // The flag names this instance over the config's state.instanceId; without either, host and pid do.
  // Every env:/file: reference is checked before anything starts, so a missing one is named with its field.
  const gw = await startGateway(
    checkedConfig(values.config),
    given === undefined ? {} : { instanceId: instanceIdOf(given) },
  );
  process.stderr.write(`behalf gateway: instance ${gw.runtime.audit.instanceId}\n`);
  const { host } = gw.runtime.config.server;
  // With a publicUrl the route lines name the public address; this one says where the process itself listens.
  process.stderr.write(`behalf gateway: listening on ${host.includes(':') ? `[${host}]` : host}:${gw.port}\n`);
  for (const name of gw.runtime.routes.keys()) process.stderr.write(`behalf gateway: ${name} at ${gw.urlFor(name)}\n`);
  const graceMs = gw.runtime.config.operations.shutdown.graceSeconds * 1000;
  let stopping = false;
  // First signal: drain within the grace period, then exit; a second one (an impatient operator) exits at once.
  const stop = (signal: string) => {
    if (stopping) {
      process.stderr.write(`behalf gateway: ${signal} again: exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    setTimeout(() => {
      process.stderr.write(`behalf gateway: not stopped within the grace period (${graceMs} ms): exiting\n`);
      process.exit(1);
    }, graceMs).unref();
    gw.shutdown(graceMs).then(
      (r) => process.exit(r.leftInFlight ? 1 : 0),
      (err: unknown) => {
        process.stderr.write(`behalf gateway: shutdown failed: ${describeError(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // SIGHUP re-reads the policy file; a broken file is reported and the old policy keeps serving.
  process.on('SIGHUP', () => {
    gw.runtime.policy.reload();
  });
}
