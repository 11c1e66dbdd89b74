import type { IncomingMessage, ServerResponse } from 'node:http';
import { loadSdkConfigFile, parseSdkConfig, type LoadedSdkConfig } from '../config/load-sdk.js';
import type { DownstreamCredential } from '../delegation/types.js';
import { BehalfError, describeError } from '../errors.js';
import { sendError } from '../gateway/challenge.js';
import { userOf, type BehalfAuthInfo, type VerifiedUser } from './caller.js';
import { downstreamCredential } from './downstream.js';
import { enforceOn } from './enforce.js';
import { gate, type ProtectedRequest } from './middleware.js';
import { buildSdkRuntime, type SdkOptions, type SdkRuntime } from './runtime.js';
import { sendWebResponse, toWebRequest, type FetchHandler } from './web-bridge.js';

export interface BoundaryOptions extends SdkOptions {
  /** A config file path (YAML, the gateway's format minus upstreams, plus `sdk`), or a config already loaded. */
  config: string | LoadedSdkConfig | { raw: unknown; baseDir: string };
}

type Next = (err?: unknown) => void;

/**
 * The boundary inside one MCP server (`behalf/sdk`): the gateway's token
 * verification, policy, session binding, downstream credentials and audit,
 * in-process. `protect` puts a server's handlers behind the policy; the
 * HTTP side (`middleware`, `nodeHandler`, `authenticate`) verifies every
 * request before the SDK's transport sees it.
 */
export class Boundary {
  constructor(readonly runtime: SdkRuntime) {}

  /** Puts every request handler of an McpServer or Server (SDK v1 or v2) behind the policy; returns the server. */
  protect<S extends object>(server: S): S {
    enforceOn(this.runtime, server);
    return server;
  }

  /**
   * Verifies the request (metadata, client and user, scopes, session owner);
   * returns its auth info, or undefined when it has answered the request itself.
   */
  authenticate(req: IncomingMessage, res: ServerResponse): Promise<BehalfAuthInfo | undefined> {
    return gate(this.runtime, req as ProtectedRequest, res);
  }

  /** Express-style middleware (`app.use('/mcp', boundary.middleware)`): sets `req.auth`, which SDK v1's transport passes to handlers. */
  readonly middleware = (req: IncomingMessage, res: ServerResponse, next: Next): void => {
    this.authenticate(req, res).then((auth) => auth && next(), next);
  };

  /** A plain `node:http` handler: the boundary, then `inner` (e.g. SDK v1's `transport.handleRequest(req, res)`). */
  nodeHandler(
    inner: (req: ProtectedRequest, res: ServerResponse) => unknown,
  ): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      void this.authenticate(req, res)
        .then(async (auth) => {
          if (auth) await inner(req as ProtectedRequest, res);
        })
        .catch((err: unknown) => this.failed(res, err));
    };
  }

  /** A plain `node:http` handler in front of SDK v2's `createMcpHandler(...)`: the boundary, then `handler.fetch(request, { authInfo })`. */
  fetchHandler(handler: FetchHandler): (req: IncomingMessage, res: ServerResponse) => void {
    const origin = new URL(this.runtime.resource).origin;
    return this.nodeHandler(async (req, res) => {
      const response = await handler.fetch(toWebRequest(req, origin), { authInfo: req.auth });
      await sendWebResponse(res, response);
    });
  }

  /** This user's own credential for a configured downstream API (`sdk.downstreams`). */
  downstream(ctx: unknown, audience: string): Promise<DownstreamCredential> {
    return downstreamCredential(ctx, audience);
  }

  close(): Promise<void> {
    return this.runtime.close();
  }

  private failed(res: ServerResponse, err: unknown): void {
    this.runtime.log(`behalf sdk: request failed: ${describeError(err)}`);
    if (!res.headersSent) sendError(res, new BehalfError('internal'));
    else res.end();
  }
}

function loaded(config: BoundaryOptions['config']): LoadedSdkConfig {
  if (typeof config === 'string') return loadSdkConfigFile(config);
  if ('raw' in config) return parseSdkConfig(config.raw, config.baseDir);
  return config;
}

/** Builds a boundary from a config: stores opened, policy compiled, keys read — or throws, before anything is served. */
export async function createBoundary(options: BoundaryOptions): Promise<Boundary> {
  return new Boundary(await buildSdkRuntime(loaded(options.config), options));
}

/** One call: a boundary from `options.config`, with `server`'s handlers already behind it. */
export async function protect(server: object, options: BoundaryOptions): Promise<Boundary> {
  const boundary = await createBoundary(options);
  boundary.protect(server);
  return boundary;
}

/** This user's own credential for a downstream API, from a handler's context (v1 `extra`, v2 `ctx`). */
export function downstream(ctx: unknown, audience: string): Promise<DownstreamCredential> {
  return downstreamCredential(ctx, audience);
}

/** The verified user of a handler's context (v1 `extra`, v2 `ctx`); undefined when behalf did not verify the request. */
export function user(ctx: unknown): VerifiedUser | undefined {
  return userOf(ctx);
}
