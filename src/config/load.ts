import { dirname, resolve } from 'node:path';
import type { z } from 'zod';
import { readYamlFile } from './yaml-file.js';
import { BehalfError } from '../errors.js';
import { PolicyError, type CompiledPolicy } from '../policy/policy.js';
import { loadPolicy } from '../policy/source.js';
import { formatIssues } from './issues.js';
import { findLiteralSecrets, literalSecretMessage } from './literal-secrets.js';
import { GatewayConfigSchema, type GatewayConfig } from './schema.js';

export interface LoadedConfig {
  config: GatewayConfig;
  /** Folder that relative paths and file: secrets resolve against. */
  baseDir: string;
  /** The policy as compiled while validating, so the gateway does not compile it again at start. */
  policy?: CompiledPolicy;
}

export { formatIssues };

/** How `behalf config check` words a policy's problems (also `behalf policy replay` for a proposed policy). */
export function policyProblemsText(err: PolicyError): string {
  return `invalid configuration:\n${err.problems.map((p) => `  policy: ${p}`).join('\n')}`;
}

export function parseConfig(raw: unknown, baseDir: string): LoadedConfig {
  return checkedConfig(validated(GatewayConfigSchema, raw), raw, baseDir);
}

/** Schema validation plus the refusal of literal secrets, every problem listed at once (shared with the SDK's format). */
export function validated<T>(schema: z.ZodType<T>, raw: unknown): T {
  const result = schema.safeParse(raw);
  // A literal secret anywhere refuses the file, even where the schema would accept the string (literal-secrets.ts).
  const named = new Set(result.success ? [] : result.error.issues.map((i) => i.path.join('.')));
  const literals = findLiteralSecrets(raw)
    .filter((s) => !named.has(s.path))
    .map((s) => `  ${literalSecretMessage(s)}`);
  if (!result.success || literals.length) {
    const lines = [...(result.success ? [] : [formatIssues(result.error.issues, raw)]), ...literals];
    throw new BehalfError('config_invalid', `invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** The checks across fields and the policy's compilation, for a config the schema accepted. */
export function checkedConfig(config: GatewayConfig, raw: unknown, baseDir: string): LoadedConfig {
  const problems = [...consistencyProblems(config), ...auditStoreProblems(raw)];
  if (problems.length)
    throw new BehalfError('config_invalid', `invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  let policy: CompiledPolicy;
  try {
    policy = loadPolicy(config, baseDir);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    throw new BehalfError('config_invalid', policyProblemsText(err), {}, { cause: err });
  }
  return { config, baseDir, policy };
}

/** Reads a YAML config file; its failures are configuration errors. */
export function readConfigFile(full: string): unknown {
  try {
    return readYamlFile(full, 'config file');
  } catch (err) {
    throw new BehalfError('config_invalid', (err as Error).message, {}, { cause: err });
  }
}

export function loadConfigFile(path: string): LoadedConfig {
  const full = resolve(path);
  return parseConfig(readConfigFile(full), dirname(full));
}

/**
 * The audit store is SQLite or PostgreSQL, never both: sqlitePath has a
 * default, so whether it was given is read from the file itself.
 */
function auditStoreProblems(raw: unknown): string[] {
  const audit = (raw as { audit?: Record<string, unknown> } | undefined)?.audit;
  if (!audit || typeof audit !== 'object' || audit.postgres === undefined) return [];
  const out: string[] = [];
  if (audit.sqlitePath !== undefined)
    out.push('audit: give either sqlitePath (the embedded store) or postgres (a fleet’s store), not both');
  if (audit.durability !== undefined)
    out.push('audit.durability: applies to SQLite only; with postgres the server’s synchronous_commit decides');
  return out;
}

/** Rules that span fields, which the schema alone cannot say. */
function consistencyProblems(c: GatewayConfig): string[] {
  const out: string[] = [];
  const methods = new Set(c.clientAuth.methods);
  const clientsCanAuthenticate =
    methods.size > 0 || (c.userAuth.mode === 'oauth' && c.clients.some((x) => x.oauthClientIds.length));
  if (!clientsCanAuthenticate && !c.server.allowUnauthenticated) {
    out.push(
      'clientAuth.methods: no client authentication is configured; set server.allowUnauthenticated: true to run without it (development only)',
    );
  }
  if (methods.has('api-key') && !c.clients.some((x) => x.apiKeys.length) && c.keys.file === undefined)
    out.push('clients: api-key authentication is enabled but no client has apiKeys (and there is no keys.file)');
  if (c.revocation.admin && c.clients.some((x) => x.id === c.revocation.admin!.client))
    out.push(
      `revocation.admin.client: ${c.revocation.admin.client} is an agent client; the admin credential must be its own`,
    );
  if (c.revocation.sharedSignals && !c.revocation.admin)
    out.push('revocation.sharedSignals: the receiver listens on the admin port; set revocation.admin too');
  if (methods.has('mtls') && !c.server.tls?.clientCa)
    out.push('server.tls.clientCa: mtls authentication needs a client CA');
  if (methods.has('mtls') && !c.clients.some((x) => x.certificates.length))
    out.push('clients: mtls authentication is enabled but no client has certificates');
  if (methods.has('client-credentials') && !c.clients.some((x) => x.oauthClientIds.length))
    out.push('clients: client-credentials authentication is enabled but no client has oauthClientIds');
  if (c.userAuth.mode === 'dual' && methods.size === 0 && !c.server.allowUnauthenticated)
    out.push('userAuth.mode: dual needs at least one clientAuth method');
  if (c.userAuth.mode === 'oauth' && methods.has('client-credentials'))
    out.push(
      'clientAuth.methods: client-credentials is for dual mode; in oauth mode the bearer token already names the client',
    );
  const ids = new Set<string>();
  for (const [i, cl] of c.clients.entries()) {
    if (ids.has(cl.id)) out.push(`clients.${i}.id: duplicate client id ${cl.id}`);
    ids.add(cl.id);
  }
  const keyHashes = new Set<string>();
  for (const [i, cl] of c.clients.entries()) {
    for (const [j, k] of cl.apiKeys.entries()) {
      if (keyHashes.has(k.hash)) out.push(`clients.${i}.apiKeys.${j}: the same key is configured twice`);
      keyHashes.add(k.hash);
      if (k.notBefore && k.notAfter && Date.parse(k.notAfter) <= Date.parse(k.notBefore))
        out.push(`clients.${i}.apiKeys.${j}.notAfter: must be after notBefore`);
    }
  }
  for (const [name, u] of Object.entries(c.upstreams)) {
    // Both caps count one user's sessions; the per-upstream one ends her least recently used child, so it must bind first.
    if (u.transport === 'stdio' && u.perUser.maxPerUser > c.sessions.maxPerUser)
      out.push(
        `upstreams.${name}.perUser.maxPerUser: ${u.perUser.maxPerUser} exceeds sessions.maxPerUser (${c.sessions.maxPerUser}); a user would reach her session quota first`,
      );
    if (u.transport === 'stdio' || !u.inbound.includes('signed-context')) continue;
    if (!c.userAuth.signedContext)
      out.push(
        `upstreams.${name}.inbound: signed-context needs userAuth.signedContext (the agent platform's issuer and keys)`,
      );
    if (c.userAuth.mode !== 'dual')
      out.push(
        `upstreams.${name}.inbound: signed-context needs userAuth.mode: dual (the client proves itself apart from the user)`,
      );
  }
  if (
    c.policy.file !== undefined &&
    (c.policy.rules.length || c.policy.rateLimits.length || Object.keys(c.policy.methods).length)
  ) {
    out.push('policy: give either policy.file or inline rules, rateLimits and methods, not both');
  }
  return out;
}
