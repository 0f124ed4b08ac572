import assert from 'node:assert/strict';
import { parseChallenges } from '../../../src/registry/auth/challenge.ts';
import {
  ChainedCredentials,
  CredentialError,
  StaticCredentials,
  anonymousSource,
  lookupCredential,
  normalizeAuthKey,
  parseDockerConfig,
} from '../../../src/registry/auth/credentials.ts';
import { KubeCredentials } from '../../../src/registry/auth/kube-credentials.ts';
import { CredentialResolver } from '../../../src/controllers/credentials.ts';
import type { KubeClient } from '../../../src/runtime/kube-client.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('WWW-Authenticate challenges', () => {
  it('parses a bearer challenge with quoted, comma-holding values', () => {
    assert.deepEqual(
      parseChallenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
      ),
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.docker.io/token',
            service: 'registry.docker.io',
            scope: 'repository:samalba/my-app:pull,push',
          },
        },
      ],
    );
  });

  it('parses basic, unquoted values, escapes, and several challenges', () => {
    assert.deepEqual(parseChallenges('Basic realm="Registry \\"Realm\\""'), [
      { scheme: 'basic', params: { realm: 'Registry "Realm"' } },
    ]);
    assert.deepEqual(parseChallenges('Basic realm=x, Bearer realm="https://a/token"'), [
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'https://a/token' } },
    ]);
  });

  it('survives garbage', () => {
    assert.deepEqual(parseChallenges(''), []);
    assert.doesNotThrow(() => parseChallenges('=== "" ,,, Bearer realm="unterminated'));
  });
});

describe('docker config credentials', () => {
  const config = JSON.stringify({
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') },
      'ghcr.io': { username: 'octo', password: 'ghp_token' },
      'registry.example.com/team-a': { auth: b64('a:pa') },
      'registry.example.com': { auth: b64('any:pany') },
      '*.azurecr.io': { identitytoken: 'refresh-xyz' },
      'broken.example.com': { auth: b64('no-colon') },
    },
  });

  it('normalises Docker Hub spellings, schemes and API versions', () => {
    assert.equal(normalizeAuthKey('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(normalizeAuthKey('registry-1.docker.io'), 'docker.io');
    assert.equal(normalizeAuthKey('https://GHCR.io/'), 'ghcr.io');
    assert.equal(normalizeAuthKey('registry.example.com/team/'), 'registry.example.com/team');
  });

  it('rejects an entry whose auth is not user:password, naming the registry only', () => {
    assert.throws(
      () => parseDockerConfig(config),
      (err: unknown) => {
        assert.ok(err instanceof CredentialError);
        assert.match(err.message, /broken\.example\.com/);
        assert.doesNotMatch(err.message, /no-colon|bm8tY29sb24/);
        return true;
      },
    );
  });

  const entries = parseDockerConfig(config.replace(/,\s*"broken[^}]*}/, ''));

  it('finds credentials by host, longest path prefix, and wildcard', () => {
    assert.deepEqual(lookupCredential(entries, 'docker.io'), {
      kind: 'basic',
      username: 'hubuser',
      password: 'hubpass',
    });
    assert.deepEqual(lookupCredential(entries, 'ghcr.io'), { kind: 'basic', username: 'octo', password: 'ghp_token' });
    assert.deepEqual(lookupCredential(entries, 'registry.example.com', 'team-a/app'), {
      kind: 'basic',
      username: 'a',
      password: 'pa',
    });
    assert.deepEqual(lookupCredential(entries, 'registry.example.com', 'team-b/app'), {
      kind: 'basic',
      username: 'any',
      password: 'pany',
    });
    assert.deepEqual(lookupCredential(entries, 'shop.azurecr.io'), { kind: 'identityToken', token: 'refresh-xyz' });
    assert.equal(lookupCredential(entries, 'a.b.azurecr.io'), undefined, 'a wildcard matches one label');
    assert.equal(lookupCredential(entries, 'quay.io'), undefined);
  });

  it('parses the legacy .dockercfg form', () => {
    const legacy = parseDockerConfig(JSON.stringify({ 'quay.io': { auth: b64('q:w') } }));
    assert.deepEqual(lookupCredential(legacy, 'quay.io'), { kind: 'basic', username: 'q', password: 'w' });
  });

  it('rejects what is not a docker config', () => {
    assert.throws(() => parseDockerConfig('not json'), CredentialError);
    assert.throws(() => parseDockerConfig('"a string"'), CredentialError);
  });

  it('chains sources: the first with a credential wins', async () => {
    const a = new StaticCredentials('a', new Map([['ghcr.io', { kind: 'basic', username: 'a', password: '1' }]]));
    const b = new StaticCredentials('b', new Map([['quay.io', { kind: 'basic', username: 'b', password: '2' }]]));
    const chain = new ChainedCredentials([anonymousSource, a, b]);
    assert.equal(chain.id, 'anonymous+a+b');
    assert.deepEqual(await chain.credentialFor('quay.io'), { kind: 'basic', username: 'b', password: '2' });
    assert.deepEqual(await chain.credentialFor('docker.io'), { kind: 'anonymous' });
  });
});

describe('credentials named by a resource', () => {
  it('reads a Secret or ServiceAccount only by a valid name in the namespace: nothing reaches past it', async () => {
    const paths: string[] = [];
    const client: KubeClient = {
      server: 'https://k8s.example',
      requestJson: <T>(_m: string, path: string) => {
        paths.push(path);
        return Promise.resolve({ data: {} } as T);
      },
      stream: () => Promise.reject(new Error('no')),
      close: () => Promise.resolve(),
    };
    const resolver = new CredentialResolver(client);
    for (const name of ['../../kube-system/secrets/admin', 'a/b', '..', 'UPPER', '']) {
      await assert.rejects(resolver.secretData('shop', name, 'build credentials'), /is not a valid name/, name);
      const source = new KubeCredentials(client, { namespace: 'shop', serviceAccountName: name || 'x/y' });
      await assert.rejects(source.credentialFor('r.example'), /is not a valid name/, name);
    }
    assert.deepEqual(paths, [], 'no request was made');
    await resolver.secretData('shop', 'build-creds.v2', 'build credentials');
    assert.deepEqual(paths, ['/api/v1/namespaces/shop/secrets/build-creds.v2']);
  });
});
