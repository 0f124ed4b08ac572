// Notary Project signatures, made by the Notary Project's own Go library (test/notation's
// notation-sign, on notation-go) and pushed to a real registry (Debian's docker-registry: the
// referrers tag fallback, as notation writes there), verified through ImageTrust against trust
// policies: JWS and COSE envelopes, EC and RSA keys, trust stores in Secrets and ConfigMaps,
// trusted identities, expiry, tampering, a signature for another digest, a chain nobody trusts,
// revocation by the trust store's CRL, verification levels and registry scopes.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { ImageTrust } from '../../src/controllers/image-trust.ts';
import type { ImagePolicy } from '../../src/api/v1alpha1/index.ts';
import { anonymousSource } from '../../src/registry/auth/credentials.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { parseReference } from '../../src/registry/reference.ts';
import { TrustedRootSource } from '../../src/verify/trusted-root.ts';
import { NotaryFixtures } from '../support/notation.ts';
import { OciPusher } from '../support/oci-push.ts';
import { startRegistry, type RegistryServer } from '../support/registry-server.ts';

type SignatureSpec = NonNullable<NonNullable<ImagePolicy['spec']['verify']>['signature']>;
type NotationSpec = NonNullable<SignatureSpec['notation']>[number];

const ACME = 'x509.subject: C=US, ST=WA, O=Acme';

describe('Notary Project signatures in a real registry', function () {
  this.timeout(60_000);
  let registry: RegistryServer;
  let pusher: OciPusher;
  let client: RegistryClient;
  let fx: NotaryFixtures;
  let trust: ImageTrust;
  const objects: Record<string, Record<string, string>> = {};
  const reader = (kind: string) => (ns: string, name: string) => {
    const data = objects[`${kind}/${ns}/${name}`];
    return data ? Promise.resolve(data) : Promise.reject(new Error(`the ${kind} ${ns}/${name} does not exist`));
  };

  const policy = (over: Partial<NotationSpec> = {}): NotationSpec => ({
    name: 'acme',
    trustStores: [{ type: 'ca', secretRef: { name: 'notary-ca' } }],
    trustedIdentities: [ACME],
    ...over,
  });
  /** Pushes an image and returns it with its reference by digest. */
  const image = async (seed: string, repo = 'shop/web') => {
    const pushed = await pusher.pushImage(repo, undefined, { seed });
    return {
      digest: pushed.digest,
      at: `${registry.host}/${repo}@${pushed.digest}`,
      ref: parseReference(`${registry.host}/${repo}`),
    };
  };
  const verify = async (img: { digest: string; ref: ReturnType<typeof parseReference> }, notation: NotationSpec[]) => {
    const authorities = await trust.authorities('shop', { notation });
    return trust.signature({ image: img.ref, digest: img.digest, source: anonymousSource, authorities, fresh: true });
  };

  before(async () => {
    registry = await startRegistry();
    pusher = new OciPusher(registry.url);
    client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }] });
    fx = await NotaryFixtures.create();
    objects['Secret/shop/notary-ca'] = { 'ca.pem': fx.rootPem, 'ca.crl': fx.crlPem };
    objects['ConfigMap/shop/notary-roots'] = { 'roots.pem': fx.rootPem };
    objects['Secret/shop/no-certs'] = { 'readme.txt': 'nothing here' };
    trust = new ImageTrust({
      client,
      secrets: reader('Secret'),
      configMaps: reader('ConfigMap'),
      trustedRoot: new TrustedRootSource({ file: '/nonexistent/trusted_root.json' }),
    });
  });
  after(async () => {
    await client.close();
    await registry.stop();
  });

  it('accepts a JWS signature made by notation-go with an EC key, naming the signer and the policy', async () => {
    const img = await image('jws');
    await fx.sign(img.at, 'leaf', { envelope: 'jws', expiry: '24h' });
    const verdict = await verify(img, [policy()]);
    assert.equal(verdict.verified, true, verdict.message);
    assert.equal(
      verdict.message,
      'signed by C=US, ST=WA, L=Seattle, O=Acme, CN=release (Notary JWS, trust policy acme)',
    );
  });

  it('accepts a COSE signature made with an RSA 3072 key (PS384), trust store in a ConfigMap', async () => {
    const img = await image('cose');
    await fx.sign(img.at, 'rsa', { envelope: 'cose' });
    const verdict = await verify(img, [policy({ trustStores: [{ configMapRef: { name: 'notary-roots' } }] })]);
    assert.equal(verdict.verified, true, verdict.message);
    assert.match(verdict.message, /CN=release-rsa \(Notary COSE, trust policy acme\)/);
  });

  it('refuses a signer that is not a trusted identity, and one whose chain reaches no trusted root', async () => {
    const img = await image('identities');
    await fx.sign(img.at, 'other', { envelope: 'cose' });
    let verdict = await verify(img, [policy()]);
    assert.equal(verdict.verified, false);
    assert.match(verdict.message, /O=Evil Corp, CN=release is not a trusted identity/);
    // "*" trusts any signer the trust store vouches for.
    verdict = await verify(img, [policy({ trustedIdentities: ['*'] })]);
    assert.equal(verdict.verified, true, verdict.message);

    const stranger = await image('untrusted');
    await fx.sign(stranger.at, 'untrusted', { envelope: 'jws' });
    verdict = await verify(stranger, [policy({ trustedIdentities: ['*'] })]);
    assert.equal(verdict.verified, false);
    assert.match(verdict.message, /does not reach the ca trust store/);
  });

  for (const envelope of ['jws', 'cose'] as const) {
    it(`refuses a tampered ${envelope.toUpperCase()} envelope and a signature made for another digest`, async () => {
      const img = await image(`tampered-${envelope}`);
      await fx.sign(img.at, 'leaf', { envelope, tamper: true });
      let verdict = await verify(img, [policy()]);
      assert.equal(verdict.verified, false);
      assert.match(verdict.message, /the signature does not match the signed content/);

      const other = await image(`other-digest-${envelope}`);
      const victim = await image(`victim-${envelope}`);
      await fx.sign(victim.at, 'leaf', { envelope, signDigest: other.digest });
      verdict = await verify(victim, [policy()]);
      assert.equal(verdict.verified, false);
      assert.match(verdict.message, new RegExp(`the signature is for ${other.digest}, not ${victim.digest}`));
    });
  }

  it('refuses an expired signature under strict, and accepts it with the expiry logged under permissive', async () => {
    const img = await image('expired');
    const signingTime = new Date(Date.now() - 2 * 3600_000);
    await fx.sign(img.at, 'leaf', { envelope: 'cose', signingTime, expiry: '1h' });
    let verdict = await verify(img, [policy()]);
    assert.equal(verdict.verified, false);
    assert.match(verdict.message, /the signature expired at \d{4}-/);
    verdict = await verify(img, [policy({ level: 'permissive' })]);
    assert.equal(verdict.verified, true, verdict.message);
    assert.match(verdict.message, /\(logged: the signature expired at /);
    verdict = await verify(img, [policy({ override: { expiry: 'log' } })]);
    assert.equal(verdict.verified, true, verdict.message);
  });

  it('refuses a signer its CA revoked (the CRL in the trust store), unless revocation is skipped', async () => {
    const img = await image('revoked');
    await fx.sign(img.at, 'revoked', { envelope: 'jws' });
    let verdict = await verify(img, [policy()]);
    assert.equal(verdict.verified, false);
    assert.match(verdict.message, /CN=revoked was revoked at /);
    verdict = await verify(img, [policy({ override: { revocation: 'skip' } })]);
    assert.equal(verdict.verified, true, verdict.message);
    // Without the CRL the trust store cannot know: offline, the signer is accepted.
    verdict = await verify(img, [policy({ trustStores: [{ configMapRef: { name: 'notary-roots' } }] })]);
    assert.equal(verdict.verified, true, verdict.message);
  });

  it('applies the policy whose registry scope names the repository, else the global one', async () => {
    const img = await image('scoped', 'shop/api');
    await fx.sign(img.at, 'other', { envelope: 'jws' });
    const evil = 'x509.subject: C=US, ST=WA, O=Evil Corp';
    const scoped = policy({ name: 'api', registryScopes: [`${registry.host}/shop/api`], trustedIdentities: [evil] });
    const global = policy({ name: 'global' });
    let verdict = await verify(img, [global, scoped]);
    assert.equal(verdict.verified, true, verdict.message);
    assert.match(verdict.message, /trust policy api\)/);
    verdict = await verify(img, [policy({ registryScopes: [`${registry.host}/shop/web`] })]);
    assert.deepEqual(verdict, {
      verified: false,
      message: `no Notary trust policy applies to ${registry.host}/shop/api`,
    });
  });

  it('says what is wrong with a trust policy before looking at any signature', async () => {
    await assert.rejects(
      trust.authorities('shop', { notation: [policy({ trustStores: [{ secretRef: { name: 'no-certs' } }] })] }),
      /notation\[0\]\.trustStores\[0\]: the Secret shop\/no-certs holds no PEM certificate/,
    );
    await assert.rejects(
      trust.authorities('shop', { notation: [policy({ trustStores: [{ secretRef: { name: 'missing' } }] })] }),
      /notation\[0\]\.trustStores\[0\]: the Secret shop\/missing does not exist/,
    );
    await assert.rejects(
      trust.authorities('shop', { notation: [policy({ trustedIdentities: ['x509.subject: CN=release'] })] }),
      /notation\[0\]: trusted identity "x509.subject: CN=release" must name C/,
    );
  });

  it('accepts either kind of signature when a policy names cosign keys and a Notary trust policy', async () => {
    const img = await image('either');
    const unsigned = await image('neither');
    await fx.sign(img.at, 'leaf', { envelope: 'cose' });
    const cosignKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    objects['Secret/shop/cosign'] = {
      'cosign.pub': cosignKey.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    };
    const spec = { keys: [{ secretRef: { name: 'cosign' } }], notation: [policy()] };
    const authorities = await trust.authorities('shop', spec);
    const ok = await trust.signature({ image: img.ref, digest: img.digest, source: anonymousSource, authorities });
    assert.equal(ok.verified, true, ok.message);
    const none = await trust.signature({
      image: unsigned.ref,
      digest: unsigned.digest,
      source: anonymousSource,
      authorities,
    });
    assert.deepEqual(none, {
      verified: false,
      message: `no cosign signature found for ${unsigned.digest}; no Notary signature found for ${unsigned.digest}`,
    });
  });
});
