import { z } from 'zod';
import { Identifier } from './schema-common.js';
import { GatewayConfigSchema } from './schema.js';
import { HttpDownstreamSchema } from './schema-upstreams.js';

/**
 * The configuration of `behalf/sdk` (the boundary inside an MCP server): the
 * gateway's format minus what only a gateway has — upstreams and their
 * transports — plus `sdk`, which says what the server itself is. Everything
 * else (clients, userAuth, policy, audit, keys, state) means what it means
 * for the gateway; `server.allowUnauthenticated` too, while the listener
 * limits of `server` belong to the host's own HTTP server and are ignored.
 */
export const SdkSectionSchema = z
  .object({
    name: Identifier.default('server').describe(
      "This server's name in the policy (rules' `upstreams`), audit records and argument-keep rules",
    ),
    resource: z
      .url()
      .describe(
        'The MCP endpoint URL clients use: the audience user tokens must name (RFC 8707) and the RFC 9728 resource',
      ),
    downstreams: z
      .record(z.string().min(1), HttpDownstreamSchema)
      .default({})
      .describe(
        "Per downstream API (the key is what handlers pass to behalf.downstream(ctx, key), and the default audience): how a handler gets this user's own credential for it",
      ),
  })
  .strict();

export const SdkConfigSchema = GatewayConfigSchema.omit({ upstreams: true }).extend({ sdk: SdkSectionSchema }).strict();

export type SdkConfig = z.infer<typeof SdkConfigSchema>;

export function sdkJsonSchema(): unknown {
  return z.toJSONSchema(SdkConfigSchema, { io: 'input' });
}
