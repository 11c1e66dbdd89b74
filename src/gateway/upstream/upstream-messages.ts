import { createParser } from 'eventsource-parser';
import type { Readable } from 'node:stream';
import { invalidMessageReason, type JsonRpcMessage } from '../../jsonrpc.js';

/** The largest message an upstream may send, as on stdio: past it the stream is dropped, not buffered further. */
export const MAX_UPSTREAM_MESSAGE_BYTES = 16 * 1024 * 1024;

/** What a read of an SSE stream learned, for resuming it: the last event id and the server's `retry:`. */
export interface StreamPosition {
  lastEventId?: string;
  retryMs?: number;
}

/** JSON-RPC messages in an upstream's body text (one message or a batch); anything else is reported, not delivered. */
export function parseMessages(text: string, onInvalid: (why: string) => void): JsonRpcMessage[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Reported through onInvalid, which logs it: the body is dropped, the call fails at its answer or timeout.
    onInvalid('upstream sent a body that is not JSON');
    return [];
  }
  const all = Array.isArray(parsed) ? parsed : [parsed];
  return all.filter((m): m is JsonRpcMessage => {
    const bad = invalidMessageReason(m);
    if (bad) onInvalid(`upstream sent an invalid JSON-RPC message: ${bad}`);
    return !bad;
  });
}

/**
 * Reads an SSE body to its end, handing each event's messages over as it
 * arrives (eventsource-parser, the parser the official SDK uses). An event
 * without data (a priming event, a keep-alive) only moves the position.
 */
export async function readEventStream(
  body: Readable,
  position: StreamPosition,
  onMessage: (msg: JsonRpcMessage) => void,
  onInvalid: (why: string) => void,
): Promise<void> {
  let pendingBytes = 0;
  const parser = createParser({
    onEvent(e) {
      pendingBytes = 0;
      if (e.id) position.lastEventId = e.id;
      if (!e.data.trim()) return;
      for (const m of parseMessages(e.data, onInvalid)) onMessage(m);
    },
    onRetry(ms) {
      position.retryMs = ms;
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of body as AsyncIterable<Buffer>) {
    pendingBytes += chunk.length;
    if (pendingBytes > MAX_UPSTREAM_MESSAGE_BYTES) {
      body.destroy();
      throw new Error('upstream event exceeds the size limit');
    }
    parser.feed(decoder.decode(chunk, { stream: true }));
  }
}
