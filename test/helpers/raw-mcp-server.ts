/**
 * A tiny MCP server (official SDK) whose tools misbehave on demand: `echo`
 * answers, `crash` kills the process mid-call, `sleep` answers only after
 * `ms` milliseconds, `burst` sends `count` progress and logging
 * notifications back to back, then answers; the tools of raw-input-tools.ts
 * ask the client for input mid-call. Run over stdio as
 * `node dist/test/helpers/raw-mcp-server.js`; raw-mcp-http.ts serves the
 * same tools over HTTP.
 */
import { fileURLToPath } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
import { RAW_INPUT_TOOLS, registerInputTools } from './raw-input-tools.js';

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

export const RAW_TOOLS = ['echo', 'crash', 'sleep', 'poll', 'burst', ...RAW_INPUT_TOOLS] as const;

/** The server with its tools; `crash` only where exiting ends nothing but this server (its own process). */
export function buildRawServer(o: { crash: boolean }): McpServer {
  const server = new McpServer({ name: 'behalf-raw-test-server', version: '0.0.0' }, { capabilities: { logging: {} } });
  server.registerTool('echo', { description: 'Returns its text', inputSchema: { text: z.string() } }, ({ text }) => ({
    content: [{ type: 'text', text }],
  }));
  if (o.crash)
    server.registerTool('crash', { description: 'Exits the process without answering', inputSchema: {} }, () =>
      process.exit(1),
    );
  server.registerTool(
    'sleep',
    {
      description: 'Reports progress once (when asked for progress), then answers after ms milliseconds',
      inputSchema: { ms: z.number().int().min(0) },
    },
    async ({ ms }, extra) => {
      const token = extra._meta?.progressToken;
      if (token !== undefined)
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken: token, progress: 0 },
        });
      await new Promise((r) => setTimeout(r, ms));
      return { content: [{ type: 'text', text: `slept ${ms}` }] };
    },
  );
  server.registerTool(
    'poll',
    {
      description: 'Over HTTP: ends its SSE stream at once (SSE polling), answers after ms milliseconds',
      inputSchema: { ms: z.number().int().min(0) },
    },
    async ({ ms }, extra) => {
      extra.closeSSEStream?.();
      await new Promise((r) => setTimeout(r, ms));
      return { content: [{ type: 'text', text: `polled after ${ms}` }] };
    },
  );
  server.registerTool(
    'burst',
    {
      description: 'Sends count progress notifications and count log messages, interleaved, then answers',
      inputSchema: { count: z.number().int().min(1).max(1000) },
    },
    async ({ count }, extra) => {
      const token = extra._meta?.progressToken;
      for (let i = 1; i <= count; i++) {
        if (token !== undefined)
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken: token, progress: i, total: count },
          });
        await extra.sendNotification({
          method: 'notifications/message',
          params: { level: 'info', data: `burst ${i}` },
        });
      }
      return { content: [{ type: 'text', text: `burst ${count}` }] };
    },
  );
  registerInputTools(server);
  return server;
}

async function main(): Promise<void> {
  const server = buildRawServer({ crash: true });
  // The gateway ends a session by closing stdin: leave then, even with a sleep pending.
  process.stdin.on('end', () => process.exit(0));
  await server.connect(new StdioServerTransport());
}

if (process.env[SERVE_ENV] === '1' && process.argv[1] === fileURLToPath(import.meta.url)) await main();
