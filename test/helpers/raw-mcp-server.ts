/**
 * A tiny stdio MCP server (official SDK) whose tools misbehave on demand:
 * `echo` answers, `crash` kills the process mid-call, `sleep` answers only
 * after `ms` milliseconds. Run as `node dist/test/helpers/raw-mcp-server.js`.
 */
import { fileURLToPath } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

/**
 * Only a process started with this variable serves: `node --test dist/test/`
 * (Node 20) runs every .js file under the folder, helpers included, and a
 * server waiting on stdin there would hang the whole run.
 */
const SERVE_ENV = 'BEHALF_RAW_TEST_SERVER';

/** How a gateway config starts this server (from the compiled tree). */
export const RAW_SERVER_STDIO = {
  transport: 'stdio' as const,
  command: process.execPath,
  args: [fileURLToPath(new URL('./raw-mcp-server.js', import.meta.url))],
  env: { [SERVE_ENV]: { value: '1' } },
};

export const RAW_TOOLS = ['echo', 'crash', 'sleep'] as const;

async function main(): Promise<void> {
  const server = new McpServer({ name: 'behalf-raw-test-server', version: '0.0.0' });
  server.registerTool('echo', { description: 'Returns its text', inputSchema: { text: z.string() } }, ({ text }) => ({
    content: [{ type: 'text', text }],
  }));
  server.registerTool('crash', { description: 'Exits the process without answering', inputSchema: {} }, () =>
    process.exit(1),
  );
  server.registerTool(
    'sleep',
    { description: 'Answers after ms milliseconds', inputSchema: { ms: z.number().int().min(0) } },
    async ({ ms }) => {
      await new Promise((r) => setTimeout(r, ms));
      return { content: [{ type: 'text', text: `slept ${ms}` }] };
    },
  );
  // The gateway ends a session by closing stdin: leave then, even with a sleep pending.
  process.stdin.on('end', () => process.exit(0));
  await server.connect(new StdioServerTransport());
}

if (process.env[SERVE_ENV] === '1' && process.argv[1] === fileURLToPath(import.meta.url)) await main();
