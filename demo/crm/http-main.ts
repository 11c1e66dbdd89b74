/**
 * Runs the demo CRM over HTTP: `node dist/demo/crm/http-main.js [--port N] [--host H]`
 * (or CRM_PORT / CRM_HOST). Prints one JSON line with the endpoint URLs on stdout.
 */
import { parseArgs } from 'node:util';
import { startCrmHttp } from './http.js';

const { values } = parseArgs({
  options: { port: { type: 'string', short: 'p' }, host: { type: 'string' } },
  strict: true,
});

const portText = values.port ?? process.env.CRM_PORT ?? '0';
const port = Number(portText);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`demo-crm: invalid port: ${portText}\n`);
  process.exit(2);
}

const crm = await startCrmHttp({ port, host: values.host ?? process.env.CRM_HOST ?? '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ url: crm.url, sseUrl: crm.sseUrl, port: crm.port })}\n`);

const stop = (): void => {
  crm.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
