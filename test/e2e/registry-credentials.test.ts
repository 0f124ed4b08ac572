// Registry credentials from Kubernetes: a dockerconfigjson Secret, and a ServiceAccount's
// imagePullSecrets, read from the real API server, used against a real registry with
// htpasswd auth.
import assert from 'node:assert/strict';
import { CredentialError } from '../../src/registry/auth/credentials.ts';
import { KubeCredentials } from '../../src/registry/auth/kube-credentials.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { isRegistryError } from '../../src/registry/errors.ts';
import { parseReference } from '../../src/registry/reference.ts';
import { OciPusher } from '../support/oci-push.ts';
import { startRegistry, type RegistryServer } from '../support/registry-server.ts';
import { env, newNamespace } from './support/env.ts';

describe('registry credentials from Secrets and ServiceAccounts', () => {
  let registry: RegistryServer;
  let client: RegistryClient;
  let ns: string;
  let digest: string;

  before(async () => {
    registry = await startRegistry({ auth: { htpasswd: { deployer: 'pull-secret-pass' } } });
    digest = (
      await new OciPusher(registry.url, { username: 'deployer', password: 'pull-secret-pass' }).pushImage(
        'team/private',
        '2.0',
      )
    ).digest;
    client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }] });
    ns = newNamespace('creds');
    const dockerconfig = (password: string) =>
      Buffer.from(
        JSON.stringify({
          auths: { [registry.host]: { auth: Buffer.from(`deployer:${password}`).toString('base64') } },
        }),
      ).toString('base64');
    const create = (path: string, body: object) =>
      env().admin.requestJson('POST', `/api/v1/namespaces/${ns}/${path}`, { body });
    await create('secrets', {
      metadata: { name: 'pull' },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': dockerconfig('pull-secret-pass') },
    });
    await create('secrets', {
      metadata: { name: 'stale' },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': dockerconfig('old-pass') },
    });
    await create('secrets', {
      metadata: { name: 'opaque' },
      type: 'Opaque',
      data: { token: Buffer.from('x').toString('base64') },
    });
    await create('serviceaccounts', { metadata: { name: 'builder' }, imagePullSecrets: [{ name: 'pull' }] });
  });

  after(async () => {
    await client.close();
    await registry.stop();
  });

  const ref = () => parseReference(`${registry.host}/team/private:2.0`);

  it('reads with a dockerconfigjson Secret', async () => {
    const source = new KubeCredentials(env().admin, { namespace: ns, secretName: 'pull' });
    assert.equal(source.id, `secret:${ns}/pull`);
    assert.equal((await client.head(ref(), source)).digest, digest);
  });

  it("reads with a ServiceAccount's imagePullSecrets", async () => {
    const source = new KubeCredentials(env().admin, { namespace: ns, serviceAccountName: 'builder' });
    assert.equal((await client.head(ref(), source)).digest, digest);
  });

  it('reports stale credentials as UNAUTHORIZED, without the password', async () => {
    const source = new KubeCredentials(env().admin, { namespace: ns, secretName: 'stale' });
    await assert.rejects(
      client.head(ref(), source),
      (err: unknown) => isRegistryError(err, 'UNAUTHORIZED') && !/old-pass/.test(err.message),
    );
  });

  it('explains a missing Secret, a Secret of the wrong type, and a missing ServiceAccount', async () => {
    const cases: [ConstructorParameters<typeof KubeCredentials>[1], RegExp][] = [
      [{ namespace: ns, secretName: 'absent' }, new RegExp(`Secret ${ns}/absent does not exist`)],
      [
        { namespace: ns, secretName: 'opaque' },
        /has type Opaque; registry credentials need kubernetes.io\/dockerconfigjson/,
      ],
      [{ namespace: ns, serviceAccountName: 'nobody' }, new RegExp(`ServiceAccount ${ns}/nobody does not exist`)],
    ];
    for (const [options, message] of cases) {
      await assert.rejects(
        new KubeCredentials(env().admin, options).credentialFor(registry.host),
        (err: unknown) => err instanceof CredentialError && message.test(err.message),
      );
    }
  });
});
