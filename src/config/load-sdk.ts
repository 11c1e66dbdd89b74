import { dirname, resolve } from 'node:path';
import { checkedConfig, readConfigFile, validated, type LoadedConfig } from './load.js';
import type { GatewayConfig } from './schema.js';
import { SdkConfigSchema, type SdkConfig } from './schema-sdk.js';
import { HttpUpstreamSchema } from './schema-upstreams.js';

/** An SDK config and the gateway-shaped view of it that the shared modules (authenticator, policy, audit) read. */
export interface LoadedSdkConfig extends LoadedConfig {
  sdk: SdkConfig['sdk'];
}

/**
 * The server the SDK protects plays the part of the gateway's one upstream,
 * named `sdk.name` at `sdk.resource`: policy rules, argument-keep rules and
 * audit records name it exactly as they would name a gateway route, so the
 * same policy file serves either deployment and the cross-field checks are
 * the gateway's own.
 */
export function gatewayView(sdk: SdkConfig): GatewayConfig {
  const { sdk: section, ...rest } = sdk;
  const upstream = HttpUpstreamSchema.parse({ transport: 'streamable-http', url: section.resource });
  return { ...rest, upstreams: { [section.name]: upstream } };
}

export function parseSdkConfig(raw: unknown, baseDir: string): LoadedSdkConfig {
  const sdk = validated(SdkConfigSchema, raw);
  return { ...checkedConfig(gatewayView(sdk), raw, baseDir), sdk: sdk.sdk };
}

export function loadSdkConfigFile(path: string): LoadedSdkConfig {
  const full = resolve(path);
  return parseSdkConfig(readConfigFile(full), dirname(full));
}
