import type { Step } from './context.js';
import { authenticate, checkScopes } from './steps/authenticate.js';
import { checkBatchVersion } from './steps/batches.js';
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
import { checkSharedState } from './steps/shared-state.js';
import { checkRevocation } from '../revocation/check-step.js';
import { checkStatelessRequestStep } from './stateless/request-checks.js';

/**
 * Each endpoint's stack, in order (docs/architecture.md §2). Adding a concern — rate
 * limits, downstream credentials — means adding a step here, not editing
 * the handlers. The order follows cost: what can be judged from the request
 * line and headers comes first — transport checks, then the POST's headers,
 * then authentication (credentials are headers) — and only a caller who
 * proved who they are gets their body read, bounded and parsed. Reading and
 * parsing before authenticating let anyone without credentials spend the
 * gateway's memory and CPU (a megabyte of JSON keys costs tens of
 * milliseconds to parse); a refusal before the body closes the connection
 * instead of reading it. The handler comes last.
 */
const transportChecks: Step[] = [checkHost, checkOrigin, checkProtocolVersionHeader];
const identify: Step[] = [checkSharedState, authenticate, checkRevocation, checkScopes];
const readAndParse: Step[] = [readLimitedBody, parseJsonRpc, checkBatchVersion];

export const STACKS: Readonly<Record<string, readonly Step[]>> = {
  'mcp POST': [
    ...transportChecks,
    checkPostHeaders,
    ...identify,
    ...readAndParse,
    checkStatelessRequestStep,
    handlePost,
  ],
  'mcp GET': [...transportChecks, ...identify, handleGetStream],
  'mcp DELETE': [...transportChecks, ...identify, handleDelete],
  'sse GET': [...transportChecks, ...identify, openLegacyStream],
  'messages POST': [...transportChecks, checkPostHeaders, ...identify, ...readAndParse, handleLegacyPost],
};

export const ALLOWED_METHODS: Readonly<Record<string, string>> = {
  mcp: 'GET, POST, DELETE',
  sse: 'GET',
  messages: 'POST',
  metadata: 'GET',
};
