/** Protocol revisions the gateway serves downstream (docs/architecture.md §4). */
export const LEGACY_SSE_VERSION = '2024-11-05';
export const STATELESS_VERSION = '2026-07-28';
export const SUPPORTED_VERSIONS = new Set(['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25', STATELESS_VERSION]);
/** Revisions with JSON-RPC batches: 2025-06-18 removed them (docs/architecture.md §4). */
export const BATCH_VERSIONS: ReadonlySet<string> = new Set(['2024-11-05', '2025-03-26']);
/** What the gateway asks of an upstream when it initializes one itself (stateless requests). */
export const UPSTREAM_INIT_VERSION = '2025-11-25';
export const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion';
/** What the gateway answers when it initializes a session itself (a signed-context route without a user of its own). */
export const LATEST_INIT_RESULT_VERSION = '2025-11-25';
