import { z } from 'zod';
import { SecretRef } from './schema-common.js';

/**
 * Where the gateway listens and what one request, one connection and all of
 * them together may cost. The limits are what keeps a client that cannot
 * authenticate from stalling or bloating the gateway (docs/architecture.md §2);
 * the README (Limits and abuse) lists each one with what a client sees at it.
 */

const positiveInt = () => z.number().int().positive();

export const SERVER_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  allowedOrigins: [] as string[],
  maxBodyBytes: 1_048_576,
  bodyTimeoutMs: 30_000,
  headersTimeoutMs: 15_000,
  maxJsonDepth: 64,
  maxJsonKeys: 20_000,
  maxConnections: 4096,
  maxConnectionsPerIp: 1024,
  maxBufferedBodyBytes: 67_108_864,
  allowUnauthenticated: false,
};

export const ServerSchema = z
  .object({
    host: z.string().default(SERVER_DEFAULTS.host),
    port: z.number().int().min(0).max(65535).default(SERVER_DEFAULTS.port),
    publicUrl: z.url().optional().describe('Base URL clients use; resource identifiers derive from it'),
    tls: z
      .object({
        cert: SecretRef,
        key: SecretRef,
        clientCa: SecretRef.optional().describe('CA bundle for mTLS client certificates'),
      })
      .strict()
      .optional(),
    allowedOrigins: z
      .array(z.string())
      .default([])
      .describe('Browser origins allowed to call; requests without Origin are allowed'),
    allowedHosts: z
      .array(z.string())
      .optional()
      .describe('Host header values accepted (DNS-rebinding defence); default derives from publicUrl'),
    maxBodyBytes: positiveInt()
      .default(SERVER_DEFAULTS.maxBodyBytes)
      .describe('Largest request body of an authenticated client (413 past it); a client may have its own'),
    bodyTimeoutMs: positiveInt()
      .default(SERVER_DEFAULTS.bodyTimeoutMs)
      .describe('A request body must arrive within this time (slow-body defence; 408 after)'),
    headersTimeoutMs: positiveInt()
      .default(SERVER_DEFAULTS.headersTimeoutMs)
      .describe('Request headers must arrive within this time (slowloris defence; 408 and closed after)'),
    maxJsonDepth: positiveInt()
      .default(SERVER_DEFAULTS.maxJsonDepth)
      .describe('Deepest nesting of objects and arrays in a request body, envelope included (400 past it)'),
    maxJsonKeys: positiveInt()
      .default(SERVER_DEFAULTS.maxJsonKeys)
      .describe('Most object keys and array elements in one request body, all levels together (413 past it)'),
    maxConnections: positiveInt()
      .default(SERVER_DEFAULTS.maxConnections)
      .describe('Open connections at once; past it requests get 503 with Retry-After (GET /healthz still answers)'),
    maxConnectionsPerIp: positiveInt()
      .default(SERVER_DEFAULTS.maxConnectionsPerIp)
      .describe('Open connections from one remote address; past it new ones are closed at once'),
    maxBufferedBodyBytes: positiveInt()
      .default(SERVER_DEFAULTS.maxBufferedBodyBytes)
      .describe('Request body bytes held by all requests in progress together; past it 503 with Retry-After'),
    allowUnauthenticated: z
      .boolean()
      .default(SERVER_DEFAULTS.allowUnauthenticated)
      .describe('Development only: run with no client authentication'),
  })
  .strict()
  .default(SERVER_DEFAULTS);
