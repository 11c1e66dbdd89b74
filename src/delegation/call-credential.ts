import { AsyncLocalStorage } from 'node:async_hooks';
import type { DownstreamCredential } from './types.js';

/**
 * The credential obtained for the call being forwarded. The upstream
 * transport's fetch reads it, so the HTTP request that carries this call
 * carries exactly this user's credential (narrowed for this tool), while
 * two calls in flight on one connection cannot see each other's.
 */
export const callCredential = new AsyncLocalStorage<DownstreamCredential | undefined>();
