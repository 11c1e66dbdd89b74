/**
 * `behalf/sdk`: the boundary inside an MCP server built on the official
 * TypeScript SDK (v1 `@modelcontextprotocol/sdk`, v2 `@modelcontextprotocol/server`).
 * docs/sdk.md describes it; examples/sdk-v1 and examples/sdk-v2 use it.
 */
export { Boundary, createBoundary, downstream, protect, user, type BoundaryOptions } from './boundary.js';
export type { BehalfAuthInfo, VerifiedUser } from './caller.js';
export type { DownstreamCredential } from '../delegation/types.js';
export type { SdkOptions } from './runtime.js';
export { loadSdkConfigFile, parseSdkConfig, type LoadedSdkConfig } from '../config/load-sdk.js';
