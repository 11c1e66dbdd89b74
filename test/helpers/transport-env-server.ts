/**
 * A tiny stdio MCP server that reports what its process inherited: the names
 * of its environment variables, the values of the few a test asks about, its
 * working directory and its pid. The gateway spawns it as an upstream.
 *
 * It serves only when started with `serve`, so the test runner (which loads
 * every file under test/) does not leave it waiting on stdin.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

export interface ProcessReport {
  envNames: string[];
  values: Record<string, string | null>;
  cwd: string;
  pid: number;
}

if (process.argv[2] === 'serve') {
  const server = new McpServer({ name: 'behalf-env-probe', version: '0.0.0' });
  server.registerTool(
    'describe_process',
    {
      description:
        'Reports the environment variable names, selected values, working directory and pid of this server process.',
      inputSchema: { names: z.array(z.string()).default([]) },
    },
    ({ names }) => {
      const report: ProcessReport = {
        envNames: Object.keys(process.env).sort(),
        values: Object.fromEntries(names.map((n) => [n, process.env[n] ?? null])),
        cwd: process.cwd(),
        pid: process.pid,
      };
      return { content: [{ type: 'text', text: JSON.stringify(report) }] };
    },
  );
  await server.connect(new StdioServerTransport());
}
