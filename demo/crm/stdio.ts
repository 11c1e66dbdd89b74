/**
 * Serves the demo CRM over stdio: `node dist/demo/crm/stdio.js`.
 * stdout carries JSON-RPC only; every diagnostic goes to stderr.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createCrmServer } from './server.js';

const server = createCrmServer();
const transport = new StdioServerTransport();

async function shutdown(code: number): Promise<void> {
  await server.close().catch(() => undefined);
  process.exit(code);
}

// When stdin ends the process exits by itself once pending replies are written.
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  await server.connect(transport);
  process.stderr.write('demo-crm: serving MCP over stdio\n');
} catch (err) {
  process.stderr.write(`demo-crm: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
