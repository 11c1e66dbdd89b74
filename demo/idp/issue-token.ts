import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC, ResourceServer } from 'oidc-provider';

/**
 * Issues an access token the way oidc-provider's own flows do: a Grant
 * record (so the token references a real grant), then the AccessToken for
 * one resource server. `extraClaims`, when given, are the token's extra JWT
 * claims (e.g. `act`), looked up by the provider config's extraTokenClaims.
 */
export async function issueAccessToken(
  provider: Provider,
  ctx: KoaContextWithOIDC,
  o: {
    accountId: string;
    client: NonNullable<KoaContextWithOIDC['oidc']['client']>;
    resource: string;
    info: ResourceServer;
    scope: string | undefined;
    gty: string;
    expiresIn?: number;
    extraClaims?: { map: WeakMap<object, Record<string, unknown>>; claims: Record<string, unknown> };
  },
): Promise<{ accessToken: string; token: InstanceType<Provider['AccessToken']> }> {
  const grant = new provider.Grant({ accountId: o.accountId, clientId: o.client.clientId });
  if (o.scope) grant.addResourceScope(o.resource, o.scope);
  const grantId = await grant.save();
  const token = new provider.AccessToken({
    accountId: o.accountId,
    client: o.client,
    grantId,
    gty: o.gty,
    scope: o.scope,
    resourceServer: new provider.ResourceServer(o.resource, o.info),
    ...(o.expiresIn !== undefined ? { expiresIn: o.expiresIn } : {}),
  });
  if (o.extraClaims) o.extraClaims.map.set(token, o.extraClaims.claims);
  ctx.oidc.entity('AccessToken', token);
  return { accessToken: await token.save(), token };
}
