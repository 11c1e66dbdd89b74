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
/** The stateless revisions: what `server/discover` and an UnsupportedProtocolVersionError list as supported. */
export const STATELESS_VERSIONS: readonly string[] = [STATELESS_VERSION];
export const CLIENT_CAPABILITIES_META_KEY = 'io.modelcontextprotocol/clientCapabilities';
/** Methods 2026-07-28 removed: a stateless request for one is answered 404, Method not found (SEP-2575). */
export const REMOVED_STATELESS_METHODS: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'logging/setLevel',
  'resources/subscribe',
  'resources/unsubscribe',
  'notifications/initialized',
]);
/** The body field the `Mcp-Name` header mirrors, per method (SEP-2243). */
export const MCP_NAME_FIELD: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};
/** Requests whose result may be an InputRequiredResult (MRTR, SEP-2322); the gateway binds their continuations. */
export const INPUT_REQUIRED_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);
