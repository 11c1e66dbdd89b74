/**
 * Runs the example: `node dist/examples/sdk-v1/main.js --config examples/sdk-v1/behalf.yaml`.
 * Prints the endpoint URL; Ctrl-C stops it (the audit log is closed first).
 */
import { parseArgs } from 'node:util';
import { startSdkV1Crm } from './server.js';

const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } }, strict: true });
if (!values.config) {
  process.stderr.write('usage: node dist/examples/sdk-v1/main.js --config examples/sdk-v1/behalf.yaml\n');
  process.exit(2);
}
const server = await startSdkV1Crm({ config: values.config });
process.stdout.write(`demo CRM on MCP SDK v1 with behalf in-process: ${server.url}\n`);
const stop = (): void => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
