/**
 * The raw test server's tools that ask the client for input in the middle of
 * a call (elicitation, sampling, roots), as a 2025-era server does: the
 * gateway bridges them to stateless clients as input-required results. Each
 * request is sent as related to its call, so over HTTP it travels on the
 * call's own stream. A request that fails is noted in this process, and
 * `input_log` tells, so a test can see how the gateway answered one whose
 * call nobody waits for any more.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

export const RAW_INPUT_TOOLS = ['ask', 'ask_two', 'ask_about', 'sample', 'ask_and_sample', 'list_roots', 'input_log'];

const failures: string[] = [];

function text(t: string, isError = false) {
  return { content: [{ type: 'text' as const, text: t }], ...(isError ? { isError: true } : {}) };
}

/** A request's outcome as text; a failure is also noted for `input_log`. */
async function outcome(what: string, ask: () => Promise<string>): Promise<string> {
  try {
    return await ask();
  } catch (err) {
    const line = `${what} failed: ${err instanceof Error ? err.message : String(err)}`;
    failures.push(line);
    return line;
  }
}

export function registerInputTools(server: McpServer): void {
  const inner = server.server;
  type Extra = { requestId: string | number };
  const elicit = (message: string, extra: Extra) =>
    outcome('elicitation', async () => {
      const r = await inner.elicitInput(
        {
          message,
          requestedSchema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] },
        },
        { relatedRequestId: extra.requestId },
      );
      return r.action === 'accept' ? String(r.content?.answer) : r.action;
    });
  const sample = (prompt: string, extra: Extra) =>
    outcome('sampling', async () => {
      const r = await inner.createMessage(
        { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 50 },
        { relatedRequestId: extra.requestId },
      );
      return r.content.type === 'text' ? r.content.text : r.content.type;
    });

  server.registerTool(
    'ask',
    {
      description: 'Elicits `count` answers one after the other',
      inputSchema: { count: z.number().int().min(1).max(5) },
    },
    async ({ count }, extra) => {
      const answers: string[] = [];
      for (let i = 1; i <= count; i++) answers.push(await elicit(`question ${i}`, extra));
      return text(`answers: ${answers.join(', ')}`);
    },
  );
  server.registerTool('ask_two', { description: 'Elicits two answers at once', inputSchema: {} }, async (_a, extra) => {
    const [first, second] = await Promise.all([elicit('first', extra), elicit('second', extra)]);
    return text(`first=${first} second=${second}`);
  });
  server.registerTool(
    'ask_about',
    { description: 'Elicits a note about one customer', inputSchema: { customer_id: z.string() } },
    async ({ customer_id }, extra) => text(`note on ${customer_id}: ${await elicit(`note on ${customer_id}`, extra)}`),
  );
  server.registerTool(
    'sample',
    { description: 'Asks the client for a completion', inputSchema: {} },
    async (_a, extra) => text(`sampled: ${await sample('capital of France?', extra)}`),
  );
  server.registerTool(
    'ask_and_sample',
    { description: 'Elicits and samples at once', inputSchema: {} },
    async (_a, extra) => {
      const [e, s] = await Promise.all([elicit('name?', extra), sample('capital?', extra)]);
      return text(`elicited: ${e} | sampled: ${s}`);
    },
  );
  server.registerTool('list_roots', { description: "Lists the client's roots", inputSchema: {} }, async (_a, extra) => {
    const roots = await outcome('roots', async () => {
      const r = await inner.listRoots(undefined, { relatedRequestId: extra.requestId });
      return r.roots.map((root) => root.uri).join(', ');
    });
    return text(`roots: ${roots}`);
  });
  server.registerTool('input_log', { description: 'The input requests that failed so far', inputSchema: {} }, () =>
    text(JSON.stringify(failures)),
  );
}
