// Signature keys in cloud KMSs, through the real AWS SDK and Patchline's own requests, with
// nock standing in for the cloud endpoints (request and response shapes from their
// documentation: AWS KMS GetPublicKey, Azure Key Vault "Get Key" 7.4, Cloud KMS
// cryptoKeyVersions.getPublicKey). Each answer carries a key made here; what comes back must be
// that key, and a policy naming it gets an authority with it.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import nock from 'nock';
import { ImageTrust } from '../../../src/controllers/image-trust.ts';
import type { RegistryClient } from '../../../src/registry/client.ts';
import { KmsError, KmsKeys, parseKmsUri } from '../../../src/verify/kms-keys.ts';
import type { TrustedRootSource } from '../../../src/verify/trusted-root.ts';
import { withAwsTestEnv } from '../../support/env-vars.ts';

const spki = (k: KeyObject): string => k.export({ type: 'spki', format: 'der' }).toString('base64');

describe('KMS key URIs', () => {
  it('reads the forms cosign uses', () => {
    assert.deepEqual(parseKmsUri('awskms:///arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab'), {
      provider: 'aws',
      keyId: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab',
      region: 'eu-west-1',
    });
    assert.deepEqual(parseKmsUri('awskms://localhost:4566/alias/cosign'), {
      provider: 'aws',
      endpoint: 'localhost:4566',
      keyId: 'alias/cosign',
    });
    assert.deepEqual(parseKmsUri('azurekms://shop-signing.vault.azure.net/cosign'), {
      provider: 'azure',
      vault: 'shop-signing.vault.azure.net',
      key: 'cosign',
    });
    assert.deepEqual(parseKmsUri('azurekms://shop-signing/cosign/0f1e2d3c'), {
      provider: 'azure',
      vault: 'shop-signing.vault.azure.net',
      key: 'cosign',
      version: '0f1e2d3c',
    });
    const name = 'projects/p/locations/global/keyRings/r/cryptoKeys/cosign/cryptoKeyVersions/1';
    assert.deepEqual(parseKmsUri(`gcpkms://${name}`), { provider: 'gcp', name });
  });

  it('refuses what it cannot read, saying why', () => {
    for (const [uri, why] of [
      ['hashivault://transit/keys/cosign', /not a KMS key URI/],
      ['awskms://', /names no key/],
      ['azurekms://vault-only', /azurekms:\/\/<vault>\/<key>/],
      ['azurekms://v/k/not-hex!', /invalid vault, key or version/],
      ['gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/cosign', /a key version is needed/],
    ] as const)
      assert.throws(
        () => parseKmsUri(uri),
        (err: unknown) => err instanceof KmsError && why.test(err.message),
        uri,
      );
  });
});

describe('KMS public keys (nock for the cloud endpoints)', () => {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  before(() => nock.disableNetConnect());
  afterEach(() => nock.cleanAll());
  after(() => nock.enableNetConnect());

  describe('AWS KMS', () => {
    let restore: () => void;
    beforeEach(() => {
      restore = withAwsTestEnv();
    });
    afterEach(() => restore());

    const arn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

    it('calls GetPublicKey in the key region, signed with SigV4, and caches the key for an hour', async () => {
      let now = 1_000_000;
      const kms = nock('https://kms.eu-west-1.amazonaws.com')
        .post('/', (body: { KeyId?: string }) => body.KeyId === arn)
        .matchHeader('x-amz-target', 'TrentService.GetPublicKey')
        .matchHeader(
          'authorization',
          /^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/\d+\/eu-west-1\/kms\/aws4_request/,
        )
        .twice()
        .reply(
          200,
          {
            KeyId: arn,
            KeySpec: 'ECC_NIST_P256',
            KeyUsage: 'SIGN_VERIFY',
            PublicKey: spki(publicKey),
            SigningAlgorithms: ['ECDSA_SHA_256'],
          },
          { 'content-type': 'application/x-amz-json-1.1' },
        );
      const keys = new KmsKeys({ now: () => now });
      const uri = `awskms:///${arn}`;
      assert.equal(spki(await keys.publicKey(uri)), spki(publicKey));
      await keys.publicKey(uri);
      assert.equal(kms.pendingMocks().length, 1, 'one call, then cached');
      now += 61 * 60_000;
      await keys.publicKey(uri);
      assert.ok(kms.isDone(), 'read again after an hour');
    });

    it('refuses a key that is not for signing, and reports an access denial by its AWS error', async () => {
      nock('https://kms.eu-west-1.amazonaws.com')
        .post('/')
        .reply(
          200,
          { KeyId: arn, KeyUsage: 'ENCRYPT_DECRYPT', PublicKey: spki(publicKey) },
          {
            'content-type': 'application/x-amz-json-1.1',
          },
        )
        .post('/')
        .reply(
          400,
          { __type: 'AccessDeniedException', message: 'User is not authorized to perform: kms:GetPublicKey' },
          { 'content-type': 'application/x-amz-json-1.1' },
        );
      await assert.rejects(new KmsKeys().publicKey(`awskms:///${arn}`), /not a signing key \(ENCRYPT_DECRYPT\)/);
      await assert.rejects(
        new KmsKeys().publicKey(`awskms:///${arn}`),
        /cannot read the public key of awskms:.*not authorized to perform: kms:GetPublicKey/,
      );
    });
  });

  describe('Azure Key Vault', () => {
    it('gets the key (JWK) with an Entra ID token, and turns it into a public key', async () => {
      const jwk = publicKey.export({ format: 'jwk' });
      const vault = nock('https://shop-signing.vault.azure.net')
        .get('/keys/cosign/0f1e2d3c')
        .query({ 'api-version': '7.4' })
        .matchHeader('authorization', 'Bearer entra-token')
        .reply(200, {
          key: {
            kid: 'https://shop-signing.vault.azure.net/keys/cosign/0f1e2d3c',
            kty: 'EC-HSM',
            key_ops: ['sign', 'verify'],
            crv: jwk.crv,
            x: jwk.x,
            y: jwk.y,
          },
          attributes: { enabled: true, created: 1733400000, updated: 1733400000 },
        });
      const keys = new KmsKeys({ azureToken: () => Promise.resolve('entra-token') });
      assert.equal(spki(await keys.publicKey('azurekms://shop-signing/cosign/0f1e2d3c')), spki(publicKey));
      assert.ok(vault.isDone());
    });

    it('says what Key Vault answered when it refuses', async () => {
      nock('https://shop-signing.vault.azure.net')
        .get('/keys/cosign')
        .query(true)
        .reply(403, { error: { code: 'Forbidden', message: 'The user does not have keys get permission' } });
      const keys = new KmsKeys({ azureToken: () => Promise.resolve('entra-token') });
      await assert.rejects(
        keys.publicKey('azurekms://shop-signing.vault.azure.net/cosign'),
        /Azure Key Vault answered HTTP 403: The user does not have keys get permission/,
      );
    });
  });

  describe('Google Cloud KMS', () => {
    it('gets the key version public key (PEM) with a Google token', async () => {
      const name = 'projects/shop/locations/europe-west1/keyRings/signing/cryptoKeys/cosign/cryptoKeyVersions/3';
      const kms = nock('https://cloudkms.googleapis.com')
        .get(`/v1/${name}/publicKey`)
        .matchHeader('authorization', 'Bearer google-token')
        .reply(200, {
          pem: publicKey.export({ type: 'spki', format: 'pem' }),
          algorithm: 'EC_SIGN_P256_SHA256',
          pemCrc32c: '123456',
          name,
          protectionLevel: 'HSM',
        });
      const keys = new KmsKeys({ googleToken: () => Promise.resolve('google-token') });
      assert.equal(spki(await keys.publicKey(`gcpkms://${name}`)), spki(publicKey));
      assert.ok(kms.isDone());
    });
  });

  it("gives a policy's kms key to the signature check as a key authority; a failure says which key", async () => {
    const kms = {
      publicKey: (uri: string) =>
        uri.startsWith('gcpkms://') ? Promise.resolve(publicKey) : Promise.reject(new KmsError('no such key')),
    };
    const trust = new ImageTrust({
      client: {} as RegistryClient,
      secrets: () => Promise.resolve({}),
      trustedRoot: {} as TrustedRootSource,
      kms,
    });
    const uri = 'gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1';
    const [authority] = await trust.authorities('shop', { keys: [{ kms: uri, ignoreTlog: true }] });
    assert.equal(authority?.kind, 'key');
    if (authority?.kind === 'key') {
      assert.equal(authority.name, uri);
      assert.equal(spki(authority.publicKey), spki(publicKey));
      assert.equal(authority.ignoreTlog, true);
    }
    await assert.rejects(trust.authorities('shop', { keys: [{ kms: 'awskms:///alias/x' }] }), /keys\[0\]: no such key/);
  });
});
