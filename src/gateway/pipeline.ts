import type { Step } from './context.js';
import { authenticate, checkScopes } from './steps/authenticate.js';
import {
  checkHost,
  checkOrigin,
  checkPostHeaders,
  checkProtocolVersionHeader,
  parseJsonRpc,
  readLimitedBody,
} from './steps/checks.js';
import { handleDelete, handleGetStream, handlePost } from './handlers/streamable.js';
import { handleLegacyPost, openLegacyStream } from './handlers/legacy-sse.js';

/**
 * Each endpoint's stack, in order (docs/architecture.md §2). Adding a concern — rate
 * limits, downstream credentials — means adding a step here, not editing
 * the handlers. Transport checks come first, then limits and parsing (so
 * garbage is refused cheaply), then authentication, then the handler.
 */
const transportChecks: Step[] = [checkHost, checkOrigin, checkProtocolVersionHeader];
const parse: Step[] = [checkPostHeaders, readLimitedBody, parseJsonRpc];
const identify: Step[] = [authenticate, checkScopes];

export const STACKS: Readonly<Record<string, readonly Step[]>> = {
  'mcp POST': [...transportChecks, ...parse, ...identify, handlePost],
  'mcp GET': [...transportChecks, ...identify, handleGetStream],
  'mcp DELETE': [...transportChecks, ...identify, handleDelete],
  'sse GET': [...transportChecks, ...identify, openLegacyStream],
  'messages POST': [...transportChecks, ...parse, ...identify, handleLegacyPost],
};

export const ALLOWED_METHODS: Readonly<Record<string, string>> = {
  mcp: 'GET, POST, DELETE',
  sse: 'GET',
  messages: 'POST',
  metadata: 'GET',
};
