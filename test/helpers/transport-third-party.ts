/**
 * Published MCP servers installed in node_modules, as stdio upstreams of the
 * gateway: their bin entry is found from their own package.json and run with
 * this very Node binary, without a shell.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

const require = createRequire(import.meta.url);

/** The absolute path of a package's (first) bin entry. */
export function packageBin(pkg: string): string {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin?: string | Record<string, string> };
  const bin = typeof manifest.bin === 'string' ? manifest.bin : Object.values(manifest.bin ?? {})[0];
  if (!bin) throw new Error(`${pkg} declares no bin entry`);
  return resolve(dirname(manifestPath), bin);
}

/** A stdio upstream (raw config) that runs `entry` with Node. */
export function nodeStdio(
  entry: string,
  args: string[] = [],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { transport: 'stdio', command: process.execPath, args: [entry, ...args], ...extra };
}

/** The concatenated text content of a tool result. */
export function resultText(result: unknown): string {
  const r = result as CallToolResult;
  return r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}
