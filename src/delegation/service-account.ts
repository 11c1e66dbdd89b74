import type { ServiceAccountDownstreamSchema } from '../config/schema-upstreams.js';
import { resolveSecret } from '../config/secrets.js';
import type { z } from 'zod';
import { fingerprint } from '../shared/hash.js';
import type { DownstreamCredential, DownstreamStrategy } from './types.js';

/**
 * One static credential for every user. Allowed only when declared; every
 * audit record names the strategy and the credential's fingerprint, so a
 * review reports it as the boundary gap it is.
 */
export class ServiceAccountStrategy implements DownstreamStrategy {
  readonly name = 'service-account' as const;
  private readonly credential: DownstreamCredential;

  constructor(cfg: z.infer<typeof ServiceAccountDownstreamSchema>, baseDir: string, env?: NodeJS.ProcessEnv) {
    const headers: Record<string, string> = {};
    for (const [h, ref] of Object.entries(cfg.headers)) headers[h.toLowerCase()] = resolveSecret(ref, baseDir, env);
    this.credential = { headers, id: `sa:${fingerprint(Object.values(headers).join('\n'))}` };
  }

  async credentialFor(): Promise<DownstreamCredential> {
    return this.credential;
  }
}
