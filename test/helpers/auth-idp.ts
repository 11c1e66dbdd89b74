import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { startDevIdp, type DevClient, type DevIdp, type DevIdpOptions } from '../../demo/idp/index.js';
import { DEMO_USERS, userClaims } from '../../demo/quickstart/users.js';
import { AGENT, OTHER_AGENT, PASSWORD } from './fixture.js';

/** A client the IdP knows but no gateway in these tests is configured with. */
export const STRANGER = { clientId: 'stranger', clientSecret: 'stranger-secret-for-tests' };

const SCOPE = 'mcp:tools crm:read crm:write';

/** The users and clients `startFixture` gives its IdP, plus `extra` clients. */
export function fixtureIdpOptions(
  o: { extraClients?: DevClient[]; agentScope?: string } = {},
): Pick<DevIdpOptions, 'users' | 'clients'> {
  return {
    users: DEMO_USERS.map((u) => ({ sub: u.name, password: PASSWORD, claims: userClaims(u) })),
    clients: [
      { ...AGENT, grantTypes: ['password', 'client_credentials'], scope: o.agentScope ?? SCOPE },
      { ...OTHER_AGENT, grantTypes: ['password', 'client_credentials'], scope: SCOPE },
      ...(o.extraClients ?? []),
    ],
  };
}

export const strangerClient: DevClient = { ...STRANGER, grantTypes: ['password', 'client_credentials'], scope: SCOPE };

/** A second, independent dev IdP with the same users and clients but its own keys (an issuer the gateway does not trust). */
export function startOtherIdp(o: Partial<DevIdpOptions> = {}): Promise<DevIdp> {
  return startDevIdp({ ...fixtureIdpOptions(), ...o });
}

/** A private RS256 signing JWK (kid = RFC 7638 thumbprint). */
export async function rsaSigningJwk(): Promise<Record<string, unknown>> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'RS256', use: 'sig' };
}

export function kidOf(jwk: object): string {
  return (jwk as { kid: string }).kid;
}

/** The public half of a private JWK (drops the private parameters). */
export function publicOf(jwk: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(jwk as Record<string, unknown>) };
  for (const k of ['d', 'p', 'q', 'dp', 'dq', 'qi']) delete out[k];
  return out;
}
