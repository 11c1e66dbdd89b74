import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { GatewaySigner } from '../../src/delegation/types.js';

/** A small jose signer implementing the gateway's GatewaySigner contract (ES256, one key). */
export class TestSigner implements GatewaySigner {
  signed = 0;
  private constructor(
    readonly issuer: string,
    private readonly key: CryptoKey,
    private readonly pub: Record<string, unknown>,
    private readonly clock: () => number,
  ) {}

  static async create(
    issuer = 'https://gateway.test',
    clock: () => number = () => Date.now() / 1000,
  ): Promise<TestSigner> {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = randomBytes(6).toString('hex');
    return new TestSigner(
      issuer,
      privateKey,
      { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' },
      clock,
    );
  }

  async sign(claims: Record<string, unknown>, opts: { audience: string; lifetimeSeconds: number }) {
    this.signed++;
    const iat = Math.floor(this.clock());
    const exp = iat + opts.lifetimeSeconds;
    const jti = randomBytes(12).toString('base64url');
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: this.pub.kid as string, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setAudience(opts.audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(this.key);
    return { token, jti, kid: this.pub.kid as string, expiresAt: exp };
  }

  jwks() {
    return { keys: [this.pub] };
  }
}
