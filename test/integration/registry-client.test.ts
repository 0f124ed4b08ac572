// The registry client against a real registry (CNCF distribution, Debian's docker-registry):
// digests, manifests and indexes, platforms, annotations, configs, tags and pagination,
// referrers (through the tag schema: this registry has no referrers API), moved and deleted
// tags, and the three ways of authenticating.
import assert from 'node:assert/strict';
import { anonymousSource, StaticCredentials, parseDockerConfig } from '../../src/registry/auth/credentials.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { isRegistryError } from '../../src/registry/errors.ts';
import { Annotations, MediaTypes, platformString } from '../../src/registry/manifest.ts';
import { parseReference } from '../../src/registry/reference.ts';
import { createRegistry } from '../../src/runtime/metrics.ts';
import { Agent } from 'undici';
import { OciPusher } from '../support/oci-push.ts';
import { makeTls, startRegistry, type RegistryServer } from '../support/registry-server.ts';
import { TcpCounter } from '../support/tcp-counter.ts';
import { TokenIssuer } from '../support/token-issuer.ts';

function dockerConfig(host: string, username: string, password: string): StaticCredentials {
  const json = JSON.stringify({
    auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } },
  });
  return new StaticCredentials(`test:${username}`, parseDockerConfig(json));
}

describe('registry client against a real registry', () => {
  describe('anonymous registry', () => {
    let registry: RegistryServer;
    let push: OciPusher;
    let client: RegistryClient;
    const metrics = createRegistry(false);

    before(async () => {
      registry = await startRegistry();
      push = new OciPusher(registry.url);
    });
    beforeEach(() => {
      client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }], registry: metrics });
    });
    afterEach(() => client.close());
    after(() => registry.stop());

    const ref = (r: string) => parseReference(`${registry.host}/${r}`);

    it('resolves a tag to its digest with one HEAD and no GET', async () => {
      const pushed = await push.pushImage('team/app', '1.0');
      const before = await metrics.getSingleMetricAsString('patchline_registry_requests_total');
      const head = await client.head(ref('team/app:1.0'), anonymousSource);
      assert.equal(head.digest, pushed.digest);
      assert.equal(head.mediaType, MediaTypes.ociManifest);
      const after = await metrics.getSingleMetricAsString('patchline_registry_requests_total');
      const count = (text: string, method: string) =>
        text
          .split('\n')
          .filter((l) => l.includes(`registry="${registry.host}"`) && l.includes(`method="${method}"`))
          .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
      assert.equal(count(after, 'HEAD') - count(before, 'HEAD'), 1);
      assert.equal(count(after, 'GET') - count(before, 'GET'), 0);
    });

    it('resolves a multi-platform tag to the index digest, and lists each platform digest', async () => {
      const pushed = await push.pushImage('team/multi', 'stable', {
        platforms: ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'],
      });
      const head = await client.head(ref('team/multi:stable'), anonymousSource);
      assert.equal(head.digest, pushed.digest);
      assert.equal(head.mediaType, MediaTypes.ociIndex);
      const fetched = await client.manifest(ref('team/multi:stable'), anonymousSource);
      assert.equal(fetched.manifest.kind, 'index');
      assert.equal(fetched.digest, pushed.digest);
      if (fetched.manifest.kind !== 'index') return;
      assert.deepEqual(
        fetched.manifest.manifests.map((m) => [platformString(m.platform!), m.digest]),
        pushed.children.map((c) => [c.platform, c.digest]),
      );
    });

    it('reads annotations, such as the declared base image digest', async () => {
      const base = `sha256:${'ab'.repeat(32)}`;
      await push.pushImage('team/annotated', 'v1', {
        annotations: { [Annotations.baseName]: 'docker.io/library/node:22', [Annotations.baseDigest]: base },
      });
      const fetched = await client.manifest(ref('team/annotated:v1'), anonymousSource);
      assert.equal(fetched.manifest.annotations?.[Annotations.baseDigest], base);
      assert.equal(fetched.manifest.annotations?.[Annotations.baseName], 'docker.io/library/node:22');
    });

    it('reads the image config: created time and labels', async () => {
      await push.pushImage('team/config', 'v1', {
        created: '2026-10-01T12:00:00Z',
        labels: { 'org.opencontainers.image.source': 'https://example.com/app' },
      });
      const fetched = await client.manifest(ref('team/config:v1'), anonymousSource);
      assert.equal(fetched.manifest.kind, 'manifest');
      if (fetched.manifest.kind !== 'manifest') return;
      const config = await client.config(registry.host, 'team/config', fetched.manifest, anonymousSource);
      assert.equal(config.created, '2026-10-01T12:00:00Z');
      assert.equal(config.os, 'linux');
      assert.deepEqual(config.labels, { 'org.opencontainers.image.source': 'https://example.com/app' });
    });

    it('sees a moved tag get a new digest, and a deleted manifest disappear', async () => {
      const first = await push.pushImage('team/moving', 'latest', { seed: 'one' });
      assert.equal((await client.head(ref('team/moving:latest'), anonymousSource)).digest, first.digest);
      const second = await push.pushImage('team/moving', 'latest', { seed: 'two' });
      assert.notEqual(second.digest, first.digest);
      assert.equal((await client.head(ref('team/moving:latest'), anonymousSource)).digest, second.digest);
      await push.deleteManifest('team/moving', second.digest);
      await assert.rejects(client.head(ref('team/moving:latest'), anonymousSource), (err: unknown) =>
        isRegistryError(err, 'NOT_FOUND'),
      );
    });

    it('lists every tag', async () => {
      // distribution 2.8 ignores the page size on tag lists (pagination came in v3); the
      // unit suite checks Link pagination against a registry that paginates.
      const tags = Array.from({ length: 23 }, (_, i) => `v1.${i}`);
      for (const t of tags) await push.pushImage('team/many', t, { seed: 'same' });
      const listed = await client.tags(registry.host, 'team/many', anonymousSource, { pageSize: 5 });
      assert.deepEqual([...listed].sort(), [...tags].sort());
    });

    it('finds referrers through the referrers tag schema, filtered by artifact type', async () => {
      const image = await push.pushImage('team/signed', 'v1');
      const subject = { digest: image.digest, mediaType: image.mediaType, size: 0 };
      const sig = await push.pushReferrer('team/signed', subject, 'application/vnd.dev.cosign.artifact.sig.v1+json');
      const sbom = await push.pushReferrer('team/signed', subject, 'application/spdx+json', [sig]);
      const all = await client.referrers(registry.host, 'team/signed', image.digest, anonymousSource);
      assert.ok(all.fromTagSchema, 'distribution 2.8 has no referrers API');
      assert.deepEqual(
        all.descriptors.map((d) => d.digest),
        [sig.digest, sbom.digest],
      );
      const sboms = await client.referrers(registry.host, 'team/signed', image.digest, anonymousSource, {
        artifactType: 'application/spdx+json',
      });
      assert.deepEqual(
        sboms.descriptors.map((d) => d.digest),
        [sbom.digest],
      );
      const none = await client.referrers(registry.host, 'team/app', `sha256:${'0'.repeat(64)}`, anonymousSource);
      assert.deepEqual(none.descriptors, []);
    });

    it('checks share one kept-alive connection (undici would close it after every HEAD)', async () => {
      await push.pushImage('team/conn', 'a');
      await push.pushImage('team/conn', 'b');
      const relay = await TcpCounter.start(Number(registry.host.split(':')[1]));
      const counted = createRegistry(false);
      const viaRelay = new RegistryClient({ hosts: [{ host: relay.host, insecure: true }], registry: counted });
      try {
        for (let i = 0; i < 10; i++) {
          for (const tag of ['a', 'b'])
            await viaRelay.head(parseReference(`${relay.host}/team/conn:${tag}`), anonymousSource);
        }
        await viaRelay.tags(relay.host, 'team/conn', anonymousSource);
        // 21 requests: one connection, or two when the pool asks for a request before it has
        // seen the end of the previous response; before, every HEAD opened one (20).
        assert.ok(relay.connections <= 2, `${relay.connections} connections`);
        const metric = await counted.getSingleMetricAsString('patchline_registry_connections_total');
        assert.match(metric, new RegExp(`registry="${relay.host}"\\} ${relay.connections}$`, 'm'));
      } finally {
        await viaRelay.close();
        await relay.stop();
      }
    });

    it('reports a missing repository or tag as NOT_FOUND, naming it', async () => {
      await assert.rejects(client.head(ref('team/nothing:1'), anonymousSource), (err: unknown) => {
        assert.ok(isRegistryError(err, 'NOT_FOUND'));
        assert.match(err.message, /team\/nothing/);
        return true;
      });
    });
  });

  describe('htpasswd (basic auth) registry', () => {
    let registry: RegistryServer;
    before(async () => {
      registry = await startRegistry({ auth: { htpasswd: { alice: 's3cret-pass' } } });
      await new OciPusher(registry.url, { username: 'alice', password: 's3cret-pass' }).pushImage('private/app', '1.0');
    });
    after(() => registry.stop());

    it('reads with credentials from a dockerconfigjson', async () => {
      const client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }] });
      const head = await client.head(
        parseReference(`${registry.host}/private/app:1.0`),
        dockerConfig(registry.host, 'alice', 's3cret-pass'),
      );
      assert.match(head.digest, /^sha256:/);
      await client.close();
    });

    it('refuses anonymous and wrong credentials as UNAUTHORIZED, without the password in the message', async () => {
      const client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }] });
      const r = parseReference(`${registry.host}/private/app:1.0`);
      await assert.rejects(
        client.head(r, anonymousSource),
        (err: unknown) => isRegistryError(err, 'UNAUTHORIZED') && /anonymously/.test(err.message),
      );
      await assert.rejects(client.head(r, dockerConfig(registry.host, 'alice', 'wrong-password')), (err: unknown) => {
        assert.ok(isRegistryError(err, 'UNAUTHORIZED'));
        assert.doesNotMatch(err.message, /wrong-password|s3cret/);
        return true;
      });
      await client.close();
    });
  });

  describe('token auth registry', () => {
    let registry: RegistryServer;
    let issuer: TokenIssuer;

    before(async () => {
      issuer = new TokenIssuer({
        users: { bob: 'hunter2-pass' },
        refreshTokens: { 'refresh-abc': 'bob' },
        publicRepositories: ['public/app'],
      });
      await issuer.start();
      registry = await startRegistry({
        auth: {
          token: {
            realm: issuer.realm,
            service: issuer.service,
            issuer: issuer.issuer,
            rootCertBundle: issuer.certFile,
          },
        },
      });
      const push = new OciPusher(registry.url, { username: 'bob', password: 'hunter2-pass' });
      for (const repo of ['private/a', 'private/b', 'private/c', 'public/app']) await push.pushImage(repo, '1.0');
      issuer.requests.length = 0;
    });
    after(async () => {
      await registry.stop();
      await issuer.stop();
    });

    it('gets a token with basic credentials, and reuses it while it lives', async () => {
      const client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }] });
      const creds = dockerConfig(registry.host, 'bob', 'hunter2-pass');
      const r = parseReference(`${registry.host}/private/a:1.0`);
      const first = await client.head(r, creds);
      const second = await client.head(r, creds);
      assert.equal(first.digest, second.digest);
      assert.equal(issuer.requests.length, 1, 'one token request');
      assert.deepEqual(issuer.requests[0], { method: 'GET', user: 'bob', scopes: [`repository:private/a:pull`] });
      await client.close();
      issuer.requests.length = 0;
    });

    it('fetches one token for several repositories when asked to prefetch', async () => {
      const client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }] });
      const creds = dockerConfig(registry.host, 'bob', 'hunter2-pass');
      await client.head(parseReference(`${registry.host}/private/a:1.0`), creds); // learns the challenge
      issuer.requests.length = 0;
      await client.prefetchTokens(registry.host, ['private/b', 'private/c'], creds);
      await client.head(parseReference(`${registry.host}/private/b:1.0`), creds);
      await client.head(parseReference(`${registry.host}/private/c:1.0`), creds);
      assert.equal(issuer.requests.length, 1);
      assert.deepEqual(issuer.requests[0]?.scopes, ['repository:private/b:pull', 'repository:private/c:pull']);
      await client.close();
      issuer.requests.length = 0;
    });

    it('exchanges an identity (refresh) token with an OAuth2 POST', async () => {
      const client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }] });
      const json = JSON.stringify({ auths: { [registry.host]: { identitytoken: 'refresh-abc' } } });
      const creds = new StaticCredentials('test:identity', parseDockerConfig(json));
      await client.head(parseReference(`${registry.host}/private/b:1.0`), creds);
      assert.deepEqual(issuer.requests.at(-1), { method: 'POST', user: 'bob', scopes: ['repository:private/b:pull'] });
      await client.close();
    });

    it('reads public repositories anonymously and refuses private ones', async () => {
      const client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }] });
      await client.head(parseReference(`${registry.host}/public/app:1.0`), anonymousSource);
      await assert.rejects(
        client.head(parseReference(`${registry.host}/private/a:1.0`), anonymousSource),
        (err: unknown) => isRegistryError(err, 'UNAUTHORIZED'),
      );
      await client.close();
    });

    it('refuses wrong credentials at the token service, without the password in the message', async () => {
      const client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }] });
      await assert.rejects(
        client.head(parseReference(`${registry.host}/private/a:1.0`), dockerConfig(registry.host, 'bob', 'guess')),
        (err: unknown) => {
          assert.ok(isRegistryError(err, 'UNAUTHORIZED'));
          assert.match(err.message, /token service refused the credentials of user "bob"/);
          assert.doesNotMatch(err.message, /guess|hunter2/);
          return true;
        },
      );
      await client.close();
    });
  });

  describe('registry with a certificate from a private CA', () => {
    let registry: RegistryServer;
    let tls: ReturnType<typeof makeTls>;

    before(async () => {
      tls = makeTls();
      registry = await startRegistry({ tls });
    });
    after(() => registry.stop());

    it('is trusted with the CA configured for that registry only', async () => {
      const trustingAgent = new Agent({ connect: { ca: tls.ca } });
      await new OciPusher(registry.url, undefined, trustingAgent).pushImage('team/tls', '1');
      await trustingAgent.close();

      const trusting = new RegistryClient({ hosts: [{ host: registry.host, ca: tls.ca }] });
      assert.match(
        (await trusting.head(parseReference(`${registry.host}/team/tls:1`), anonymousSource)).digest,
        /^sha256:/,
      );
      await trusting.close();

      const plain = new RegistryClient({ sleep: () => Promise.resolve() });
      await assert.rejects(
        plain.head(parseReference(`${registry.host}/team/tls:1`), anonymousSource),
        (err: unknown) => isRegistryError(err, 'UNAVAILABLE') && /certificate/i.test(err.message),
      );
      await plain.close();
    });

    it('concurrent checks share one HTTP/2 connection where TLS offers it', async () => {
      const trustingAgent = new Agent({ connect: { ca: tls.ca } });
      await new OciPusher(registry.url, undefined, trustingAgent).pushImage('team/h2', '1');
      await trustingAgent.close();
      const relay = await TcpCounter.start(Number(registry.host.split(':')[1]));
      const client = new RegistryClient({ hosts: [{ host: relay.host, ca: tls.ca }] });
      try {
        const ref = parseReference(`${relay.host}/team/h2:1`);
        const digests = await Promise.all(Array.from({ length: 8 }, () => client.head(ref, anonymousSource)));
        assert.equal(new Set(digests.map((d) => d.digest)).size, 1);
        assert.equal(relay.connections, 1);
      } finally {
        await client.close();
        await relay.stop();
      }
    });
  });
});
