import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compactVerify,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
  type JWK,
} from 'jose';
import {
  algNone,
  badSignature,
  claimAttacks,
  hs256With,
  issuerKey,
  parseJwt,
  publicKeyTexts,
  reviewerKey,
  signJwt,
  unknownKid,
} from '../src/review/forge.js';

const ISS = 'http://127.0.0.1:1/issuer';
const AUD = 'http://127.0.0.1:2/mcp/crm';

async function issuer(alg: 'ES256' | 'RS256' = 'ES256') {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const priv = { ...(await exportJWK(privateKey)), kid: `kid-${alg}`, alg };
  const pub = { ...(await exportJWK(publicKey)), kid: `kid-${alg}`, alg };
  const token = await new SignJWT({ client_id: 'agent', scope: 'mcp:tools' })
    .setProtectedHeader({ alg, kid: priv.kid, typ: 'at+jwt' })
    .setIssuer(ISS)
    .setAudience(AUD)
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime('1h')
    .setJti('jti-1')
    .sign(privateKey);
  return { priv, pub, publicKey, token };
}

const verifies = async (token: string, key: Parameters<typeof compactVerify>[1]) =>
  compactVerify(token, key).then(
    () => true,
    () => false,
  );

describe('review forge', () => {
  it('parses a JWT and nothing else', async () => {
    const { token } = await issuer();
    const p = parseJwt(token);
    assert.equal(p?.header.kid, 'kid-ES256');
    assert.equal(p?.claims.sub, 'alice');
    assert.equal(parseJwt('opaque-token-value'), undefined);
    assert.equal(parseJwt('a.b.c'), undefined);
  });

  it('alg none keeps header fields and claims, with an empty signature', async () => {
    const { token } = await issuer();
    const forged = algNone(token);
    assert.ok(forged.endsWith('.'));
    assert.deepEqual(decodeProtectedHeader(forged), { ...decodeProtectedHeader(token), alg: 'none' });
    assert.deepEqual(decodeJwt(forged), decodeJwt(token));
  });

  it('HS256 keyed with the public key verifies with exactly that text as the HMAC secret', async () => {
    const { token, pub } = await issuer('RS256');
    const { pem, jwkJson } = publicKeyTexts(pub);
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n/);
    assert.deepEqual(JSON.parse(jwkJson), pub);
    for (const secret of [pem, jwkJson]) {
      const forged = hs256With(token, secret);
      const h = decodeProtectedHeader(forged);
      assert.equal(h.alg, 'HS256');
      assert.equal(h.kid, 'kid-RS256');
      assert.deepEqual(decodeJwt(forged), decodeJwt(token));
      const { payload } = await jwtVerify(forged, new TextEncoder().encode(secret), { algorithms: ['HS256'] });
      assert.equal(payload.sub, 'alice');
      assert.equal(await verifies(forged, new TextEncoder().encode('another secret')), false);
    }
  });

  it('bad signature changes one signature character so the token no longer verifies', async () => {
    const { token, publicKey } = await issuer();
    assert.equal(await verifies(token, publicKey), true, 'control: the original verifies');
    const forged = badSignature(token);
    const [h, p, s] = token.split('.');
    const [fh, fp, fs] = forged.split('.');
    assert.equal(fh, h);
    assert.equal(fp, p);
    assert.equal(fs!.length, s!.length);
    assert.equal([...fs!].filter((c, i) => c !== s![i]).length, 1);
    assert.equal(await verifies(forged, publicKey), false);
  });

  it("unknown kid: same claims and alg, a kid nobody published, not the issuer's signature", async () => {
    const { token, publicKey } = await issuer();
    const forged = await unknownKid(token);
    const h = decodeProtectedHeader(forged);
    assert.equal(h.alg, 'ES256');
    assert.notEqual(h.kid, 'kid-ES256');
    assert.match(String(h.kid), /^review-[0-9a-f]{16}$/);
    assert.equal(h.typ, 'at+jwt');
    assert.deepEqual(decodeJwt(forged), decodeJwt(token));
    assert.equal(await verifies(forged, publicKey), false);
  });

  it("signs with the issuer key from a JWK or a key set, under the key's kid", async () => {
    const { token, priv, publicKey } = await issuer();
    const other = await issuer();
    const otherPriv = { ...other.priv, kid: 'other' };
    for (const doc of [priv, { keys: [otherPriv, priv] }]) {
      const key = await issuerKey(doc, 'kid-ES256', 'ES256');
      assert.equal(key.source, 'issuer');
      assert.equal(key.kid, 'kid-ES256');
      const { header, claims } = parseJwt(token)!;
      const resigned = await signJwt({ ...header, kid: 'ignored' }, claims, key);
      assert.equal(decodeProtectedHeader(resigned).kid, 'kid-ES256');
      const { payload } = await jwtVerify(resigned, publicKey, { issuer: ISS, audience: AUD });
      assert.equal(payload.sub, 'alice');
    }
    await assert.rejects(issuerKey({ keys: [other.pub] }, undefined, 'ES256'), /no private JWK/);
  });

  it("a reviewer key keeps the original kid and alg but is not the issuer's", async () => {
    const { token, publicKey } = await issuer();
    const { header, claims } = parseJwt(token)!;
    const key = await reviewerKey('ES256', 'kid-ES256');
    assert.equal(key.source, 'reviewer');
    const forged = await signJwt(header, claims, key);
    assert.equal(decodeProtectedHeader(forged).kid, 'kid-ES256');
    assert.equal(decodeProtectedHeader(forged).alg, 'ES256');
    assert.equal(await verifies(forged, publicKey), false);
    // …and it does verify with the reviewer's own public half: the signature is real, only untrusted.
    const pubJwk = await exportJWK(key.key as Parameters<typeof exportJWK>[0]);
    delete pubJwk.d;
    assert.equal(await verifies(forged, await importJWK(pubJwk as JWK, 'ES256')), true);
    const hs = await reviewerKey('HS256', 'k');
    assert.equal(decodeProtectedHeader(await signJwt(header, claims, hs)).alg, 'HS256');
  });

  it('claim attacks change exactly the claim they name', async () => {
    const { token } = await issuer();
    const c = decodeJwt(token);
    const now = Math.floor(Date.now() / 1000);
    const expired = claimAttacks.expired(c, now);
    assert.ok(expired.exp! < now && expired.iat! < expired.exp!);
    assert.equal(expired.sub, 'alice');
    const early = claimAttacks.notYetValid(c, now);
    assert.ok(early.nbf! > now && early.exp! > early.nbf!);
    assert.equal(claimAttacks.wrongIssuer(c).aud, AUD);
    assert.notEqual(claimAttacks.wrongIssuer(c).iss, ISS);
    assert.equal(claimAttacks.wrongAudience(c).iss, ISS);
    assert.notEqual(claimAttacks.wrongAudience(c).aud, AUD);
    const act = claimAttacks.actorMismatch({ ...c, act: { sub: 'agent', extra: 1 } });
    assert.deepEqual(act.act, { sub: 'behalf-review-impostor', extra: 1 });
    assert.equal(act.sub, 'alice');
  });
});
