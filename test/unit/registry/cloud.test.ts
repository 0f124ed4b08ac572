// Cloud registry identities through the real SDKs, with nock standing in for the cloud
// endpoints (request and response shapes from their documentation): Entra ID and the ACR
// exchange and token endpoints, ECR GetAuthorizationToken, and Google's OAuth token endpoint.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nock from 'nock';
import {
  ACR_TOKEN_USER,
  AzureRegistryCredentials,
  EcrCredentials,
  GOOGLE_TOKEN_USER,
  GoogleCredentials,
  jwtExpiry,
} from '../../../src/registry/auth/cloud.ts';
import { CredentialError } from '../../../src/registry/auth/credentials.ts';
import { RegistryClient } from '../../../src/registry/client.ts';
import { isRegistryError } from '../../../src/registry/errors.ts';
import { parseReference } from '../../../src/registry/reference.ts';
import { withAwsTestEnv, withEnv } from '../../support/env-vars.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const DIGEST = `sha256:${'c'.repeat(64)}`;

function jwt(claims: object): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc(claims)}.c2lnbmF0dXJl`;
}

describe('cloud registry identities (nock for the cloud endpoints)', () => {
  before(() => {
    nock.disableNetConnect();
  });
  afterEach(() => {
    nock.cleanAll();
  });
  after(() => {
    nock.enableNetConnect();
  });

  describe('Azure Container Registry with an Entra ID identity', () => {
    let restore: () => void;
    beforeEach(() => {
      restore = withEnv({
        AZURE_TENANT_ID: TENANT,
        AZURE_CLIENT_ID: '00000000-1111-2222-3333-444444444444',
        AZURE_CLIENT_SECRET: 'client-secret-value',
        AZURE_TOKEN_CREDENTIALS: 'EnvironmentCredential',
        AZURE_AUTHORITY_HOST: undefined,
      });
    });
    afterEach(() => restore());

    function entraId(): nock.Scope {
      // Authority metadata (msal may fetch it), then the client-credentials token request.
      nock('https://login.microsoftonline.com')
        .persist()
        .get(/\/common\/discovery\/instance/)
        .optionally()
        .reply(200, {
          tenant_discovery_endpoint: `https://login.microsoftonline.com/${TENANT}/v2.0/.well-known/openid-configuration`,
          'api-version': '1.1',
          metadata: [
            {
              preferred_network: 'login.microsoftonline.com',
              preferred_cache: 'login.windows.net',
              aliases: ['login.microsoftonline.com'],
            },
          ],
        })
        .get(`/${TENANT}/v2.0/.well-known/openid-configuration`)
        .optionally()
        .reply(200, {
          token_endpoint: `https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`,
          issuer: `https://login.microsoftonline.com/${TENANT}/v2.0`,
          authorization_endpoint: `https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/authorize`,
          end_session_endpoint: `https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/logout`,
          jwks_uri: `https://login.microsoftonline.com/${TENANT}/discovery/v2.0/keys`,
          response_modes_supported: ['query', 'fragment', 'form_post'],
        });
      return nock('https://login.microsoftonline.com')
        .post(`/${TENANT}/oauth2/v2.0/token`, (body: Record<string, string>) => {
          return (
            body.grant_type === 'client_credentials' &&
            (body.scope ?? '').includes('https://management.azure.com/.default')
          );
        })
        .query(true) // msal adds client-request-id
        .reply(200, {
          token_type: 'Bearer',
          expires_in: 3599,
          ext_expires_in: 3599,
          access_token: jwt({ tid: TENANT, exp: 9_999_999_999 }),
        });
    }

    it('exchanges the Entra ID token at the registry and reads with the refresh token', async () => {
      const aad = entraId();
      const refresh = jwt({ exp: Math.floor(Date.now() / 1000) + 3 * 3600 });
      const acr = nock('https://shop.azurecr.io')
        .post(
          '/oauth2/exchange',
          (body: Record<string, string>) =>
            body.grant_type === 'access_token' &&
            body.service === 'shop.azurecr.io' &&
            body.tenant === TENANT &&
            typeof body.access_token === 'string',
        )
        .reply(200, { refresh_token: refresh })
        .head('/v2/shop/web/manifests/1.4')
        .reply(401, '', {
          'www-authenticate': 'Bearer realm="https://shop.azurecr.io/oauth2/token",service="shop.azurecr.io"',
        })
        .post(
          '/oauth2/token',
          (body: Record<string, string>) =>
            body.grant_type === 'refresh_token' &&
            body.refresh_token === refresh &&
            body.scope === 'repository:shop/web:pull',
        )
        .reply(200, { access_token: 'acr-access-token' })
        .head('/v2/shop/web/manifests/1.4')
        .matchHeader('authorization', 'Bearer acr-access-token')
        .reply(200, '', { 'docker-content-digest': DIGEST, 'content-type': 'application/vnd.oci.image.index.v1+json' });

      const source = new AzureRegistryCredentials();
      const client = new RegistryClient();
      const head = await client.head(parseReference('shop.azurecr.io/shop/web:1.4'), source);
      assert.equal(head.digest, DIGEST);
      assert.ok(aad.isDone() && acr.isDone());
      const cred = await source.credentialFor('shop.azurecr.io');
      assert.deepEqual(
        cred,
        { kind: 'identityToken', token: refresh, username: ACR_TOKEN_USER },
        'cached: no second exchange',
      );
      await client.close();
    });

    it('answers registries outside Azure with no credential, asking nothing', async () => {
      const source = new AzureRegistryCredentials();
      assert.deepEqual(await source.credentialFor('ghcr.io'), { kind: 'anonymous' });
    });

    it('reports a refused exchange without any token in the message', async () => {
      entraId();
      nock('https://shop.azurecr.io')
        .post('/oauth2/exchange')
        .reply(401, { errors: [{ code: 'UNAUTHORIZED' }] });
      await assert.rejects(new AzureRegistryCredentials().credentialFor('shop.azurecr.io'), (err: unknown) => {
        assert.ok(err instanceof CredentialError);
        assert.match(err.message, /shop\.azurecr\.io refused the Entra ID token exchange \(HTTP 401\)/);
        assert.doesNotMatch(err.message, /eyJ|client-secret/);
        return true;
      });
    });

    it('reports an identity that gets no Entra ID token', async () => {
      nock('https://login.microsoftonline.com')
        .persist()
        .get(/.*/)
        .optionally()
        .reply(200, {})
        .post(`/${TENANT}/oauth2/v2.0/token`)
        .query(true)
        .reply(400, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' });
      await assert.rejects(new AzureRegistryCredentials().credentialFor('shop.azurecr.io'), (err: unknown) => {
        assert.ok(err instanceof CredentialError);
        assert.match(err.message, /no Entra ID token for shop\.azurecr\.io/);
        assert.doesNotMatch(err.message, /client-secret-value/);
        return true;
      });
    });
  });

  describe('Amazon ECR', () => {
    let restore: () => void;
    beforeEach(() => {
      restore = withAwsTestEnv();
    });
    afterEach(() => restore());

    it('calls GetAuthorizationToken in the registry region and uses the basic credentials', async () => {
      const expiresAt = Math.floor(Date.now() / 1000) + 12 * 3600;
      const ecr = nock('https://api.ecr.eu-west-1.amazonaws.com')
        .post('/', (body: { registryIds?: string[] }) => body.registryIds?.[0] === '123456789012')
        .matchHeader('x-amz-target', 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken')
        .matchHeader(
          'authorization',
          /^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/\d+\/eu-west-1\/ecr\/aws4_request/,
        )
        .reply(
          200,
          {
            authorizationData: [
              {
                authorizationToken: Buffer.from('AWS:ecr-password').toString('base64'),
                expiresAt,
                proxyEndpoint: 'https://123456789012.dkr.ecr.eu-west-1.amazonaws.com',
              },
            ],
          },
          { 'content-type': 'application/x-amz-json-1.1' },
        );
      const source = new EcrCredentials();
      const cred = await source.credentialFor('123456789012.dkr.ecr.eu-west-1.amazonaws.com');
      assert.deepEqual(cred, { kind: 'basic', username: 'AWS', password: 'ecr-password' });
      await source.credentialFor('123456789012.dkr.ecr.eu-west-1.amazonaws.com');
      assert.ok(ecr.isDone(), 'one call, then cached until it expires');
      assert.deepEqual(await source.credentialFor('ghcr.io'), { kind: 'anonymous' });
    });

    it('reports an access denial by its AWS error name', async () => {
      nock('https://api.ecr.us-east-1.amazonaws.com')
        .post('/')
        .reply(
          400,
          { __type: 'AccessDeniedException', message: 'User is not authorized to perform: ecr:GetAuthorizationToken' },
          { 'content-type': 'application/x-amz-json-1.1' },
        );
      await assert.rejects(
        new EcrCredentials().credentialFor('210987654321.dkr.ecr.us-east-1.amazonaws.com'),
        (err: unknown) => {
          assert.ok(err instanceof CredentialError);
          assert.match(err.message, /AccessDeniedException/);
          assert.doesNotMatch(err.message, /wJalrXUtnFEMI/);
          return true;
        },
      );
    });
  });

  describe('Google Artifact Registry', () => {
    let restore: () => void;
    before(() => {
      const dir = mkdtempSync(join(tmpdir(), 'patchline-gcp-'));
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const keyFile = join(dir, 'sa.json');
      writeFileSync(
        keyFile,
        JSON.stringify({
          type: 'service_account',
          project_id: 'acme-builds',
          private_key_id: 'k1',
          private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
          client_email: 'patchline@acme-builds.iam.gserviceaccount.com',
          client_id: '1234567890',
          token_uri: 'https://oauth2.googleapis.com/token',
        }),
      );
      restore = withEnv({ GOOGLE_APPLICATION_CREDENTIALS: keyFile });
    });
    after(() => restore());

    it('uses an OAuth access token as the oauth2accesstoken password, through the registry token flow', async () => {
      const google = nock('https://oauth2.googleapis.com')
        .post(
          '/token',
          (body: Record<string, string>) =>
            body.grant_type === 'urn:ietf:params:oauth:grant-type:jwt-bearer' && typeof body.assertion === 'string',
        )
        .reply(200, { access_token: 'ya29.test-access-token', expires_in: 3599, token_type: 'Bearer' });
      const basic = `Basic ${Buffer.from(`${GOOGLE_TOKEN_USER}:ya29.test-access-token`).toString('base64')}`;
      const registry = nock('https://europe-docker.pkg.dev')
        .head('/v2/acme-builds/images/web/manifests/stable')
        .reply(401, '', {
          'www-authenticate':
            'Bearer realm="https://europe-docker.pkg.dev/v2/token",service="europe-docker.pkg.dev",scope="repository:acme-builds/images/web:pull"',
        })
        .get('/v2/token')
        .query({ service: 'europe-docker.pkg.dev', scope: 'repository:acme-builds/images/web:pull' })
        .matchHeader('authorization', basic)
        .reply(200, { token: 'gar-registry-token', expires_in: 3600 })
        .head('/v2/acme-builds/images/web/manifests/stable')
        .matchHeader('authorization', 'Bearer gar-registry-token')
        .reply(200, '', { 'docker-content-digest': DIGEST });
      const client = new RegistryClient();
      const head = await client.head(
        parseReference('europe-docker.pkg.dev/acme-builds/images/web:stable'),
        new GoogleCredentials(),
      );
      assert.equal(head.digest, DIGEST);
      assert.ok(google.isDone() && registry.isDone());
      await client.close();
    });

    it('does not serve other registries', async () => {
      assert.deepEqual(await new GoogleCredentials().credentialFor('ghcr.io'), { kind: 'anonymous' });
    });
  });

  it('registry errors from cloud registries keep their meaning (403 on ECR)', async () => {
    nock('https://123456789012.dkr.ecr.eu-west-1.amazonaws.com')
      .head('/v2/app/manifests/1')
      .reply(401, '', {
        'www-authenticate':
          'Basic realm="https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/",service="ecr.amazonaws.com"',
      })
      .head('/v2/app/manifests/1')
      .reply(403, '');
    const source = new EcrCredentials({
      fetchToken: () =>
        Promise.resolve({
          token: Buffer.from('AWS:pw').toString('base64'),
          expiresAt: new Date(Date.now() + 3_600_000),
        }),
    });
    const client = new RegistryClient();
    await assert.rejects(
      client.head(parseReference('123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1'), source),
      (err: unknown) => isRegistryError(err, 'DENIED'),
    );
    await client.close();
  });

  it('reads JWT expiry claims', () => {
    assert.equal(jwtExpiry(jwt({ exp: 1_800_000_000 })), 1_800_000_000_000);
    assert.equal(jwtExpiry('opaque-token'), undefined);
  });
});
