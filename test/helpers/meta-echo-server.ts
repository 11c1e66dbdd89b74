/**
 * A stdio MCP server (official SDK) with one tool, `echo_meta`, that answers
 * with the `params._meta` its request carried: what a stdio upstream
 * received, for tests of trace context propagation. Runs only when started
 * with BEHALF_META_ECHO_SERVER=1 (see raw-mcp-server.ts for why).
 */
import { fileURLToPath } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

const SERVE_ENV = 'BEHALF_META_ECHO_SERVER';

/** How a gateway config starts this server (from the compiled tree). */
export const META_ECHO_STDIO = {
  transport: 'stdio' as const,
  command: process.execPath,
  args: [fileURLToPath(import.meta.url)],
  env: { [SERVE_ENV]: { value: '1' } },
};

async function main(): Promise<void> {
  const server = new McpServer({ name: 'behalf-meta-echo', version: '0.0.0' });
  server.registerTool('echo_meta', { description: 'Returns the _meta of its request' }, (extra) => ({
    content: [{ type: 'text', text: JSON.stringify(extra._meta ?? {}) }],
  }));
  process.stdin.on('end', () => process.exit(0));
  await server.connect(new StdioServerTransport());
}

if (process.env[SERVE_ENV] === '1' && process.argv[1] === fileURLToPath(import.meta.url)) await main();
