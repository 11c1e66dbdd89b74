/**
 * What one protected call collects while its handler runs, for its outcome
 * record: the ids (never the values) of the downstream credentials the
 * handler obtained. Keyed by the handler's context object, which both SDKs
 * pass unchanged from the dispatch to the handler.
 */
export interface CallRecord {
  /** The tool called, when the call is a tools/call: token exchange narrows scopes per tool. */
  tool?: string;
  credentialIds: string[];
  done(): void;
}

const records = new WeakMap<object, CallRecord>();

export function startCallRecord(ctx: unknown, tool: string | undefined): CallRecord {
  const key = ctx as object;
  const record: CallRecord = { tool, credentialIds: [], done: () => records.delete(key) };
  records.set(key, record);
  return record;
}

export function callRecordOf(ctx: unknown): CallRecord | undefined {
  return typeof ctx === 'object' && ctx !== null ? records.get(ctx) : undefined;
}
