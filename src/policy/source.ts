import { resolve } from 'node:path';
import { formatIssues } from '../config/issues.js';
import { findLiteralSecrets, literalSecretMessage } from '../config/literal-secrets.js';
import { readYamlFile } from '../config/yaml-file.js';
import { type GatewayConfig, type PolicyDocument } from '../config/schema.js';
import { PolicyDocumentSchema } from '../config/schema-policy.js';
import { compilePolicy, PolicyError, type CompiledPolicy } from './policy.js';

/** Reads and validates a policy file (rules, rateLimits, methods). */
export function readPolicyFile(path: string): PolicyDocument {
  let raw: unknown;
  try {
    raw = readYamlFile(path, 'policy file');
  } catch (err) {
    throw new PolicyError([(err as Error).message], { cause: err });
  }
  const secrets = findLiteralSecrets(raw);
  if (secrets.length) throw new PolicyError(secrets.map((s) => `policy file ${path}: ${literalSecretMessage(s)}`));
  const parsed = PolicyDocumentSchema.safeParse(raw ?? {});
  if (!parsed.success)
    throw new PolicyError(
      formatIssues(parsed.error.issues)
        .split('\n')
        .map((l) => l.trim()),
    );
  return parsed.data;
}

export function policyFilePath(config: GatewayConfig, baseDir: string): string | undefined {
  return config.policy.file === undefined ? undefined : resolve(baseDir, config.policy.file);
}

/** The policy a config names: its file when it has one, else the inline rules. */
export function loadPolicy(config: GatewayConfig, baseDir: string): CompiledPolicy {
  const file = policyFilePath(config, baseDir);
  const { rules, rateLimits, methods } = file ? readPolicyFile(file) : config.policy;
  const claims = [
    ...new Set([
      ...config.userAuth.issuers.flatMap((i) => i.userClaims),
      ...(config.userAuth.signedContext?.userClaims ?? []),
    ]),
  ];
  return compilePolicy({ rules, rateLimits, methods }, Object.keys(config.upstreams), { claims });
}
