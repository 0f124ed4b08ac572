// What an image declares it was built on, read from a real registry: the OCI base
// annotations, and a BuildKit-style provenance attestation in the image index; and the
// per-platform digests a RebuildTrigger with `platforms` follows.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { RegistryFacts } from '../../src/controllers/registry-facts.ts';
import { anonymousSource } from '../../src/registry/auth/credentials.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { Annotations, MediaTypes } from '../../src/registry/manifest.ts';
import { parseReference } from '../../src/registry/reference.ts';
import { declaredBases, judge } from '../../src/verify/provenance.ts';
import { OciPusher } from '../support/oci-push.ts';
import { startRegistry, type RegistryServer } from '../support/registry-server.ts';

const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('provenance and platforms from a real registry', () => {
  let registry: RegistryServer;
  let pusher: OciPusher;
  let client: RegistryClient;

  before(async () => {
    registry = await startRegistry();
    pusher = new OciPusher(registry.url);
    client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }] });
  });
  after(() => registry.stop());

  it('reads the base-digest annotation of a rebuilt image', async () => {
    const base = await pusher.pushImage('base/python', '3.12', { seed: 'p1' });
    const app = await pusher.pushImage('team/app', '1.0', {
      seed: 'a1',
      annotations: { [Annotations.baseName]: 'base/python:3.12', [Annotations.baseDigest]: base.digest },
    });
    const declared = await declaredBases(
      client,
      parseReference(`${registry.host}/team/app:1.0`),
      app.digest,
      anonymousSource,
    );
    assert.deepEqual(declared, [{ digest: base.digest, name: 'base/python:3.12', source: 'annotation' }]);
    assert.equal(judge(declared, { repositories: ['base/python'], digests: [base.digest] }).verdict, 'Verified');
  });

  it('reads a SLSA provenance attestation attached to the image index, as BuildKit pushes it', async () => {
    const base = await pusher.pushImage('base/node', '22', { seed: 'n1' });
    const image = await pusher.pushImage('team/web', undefined, { seed: 'w1' });
    const statement = Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v0.1',
        predicateType: 'https://slsa.dev/provenance/v0.2',
        subject: [{ name: 'pkg:docker/team/web@1', digest: { sha256: image.digest.slice(7) } }],
        predicate: {
          builder: { id: 'https://github.com/moby/buildkit' },
          materials: [
            { uri: 'pkg:docker/golang@1.23?platform=linux%2Famd64', digest: { sha256: 'f'.repeat(64) } },
            {
              uri: `pkg:docker/${registry.host}/base/node@22?platform=linux%2Famd64`,
              digest: { sha256: base.digest.slice(7) },
            },
          ],
        },
      }),
    );
    const statementDigest = await pusher.pushBlob('team/web', statement);
    const config = Buffer.from('{}');
    const configDigest = await pusher.pushBlob('team/web', config);
    const attestation = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [
        {
          mediaType: 'application/vnd.in-toto+json',
          digest: statementDigest,
          size: statement.length,
          annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2' },
        },
      ],
    };
    const attestationDigest = await pusher.putManifest(
      'team/web',
      sha256(JSON.stringify(attestation)),
      attestation,
      MediaTypes.ociManifest,
    );
    const imageManifest = await (
      await fetch(`${registry.url}/v2/team/web/manifests/${image.digest}`, {
        headers: { accept: MediaTypes.ociManifest },
      })
    ).text();
    const index = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [
        {
          mediaType: MediaTypes.ociManifest,
          digest: image.digest,
          size: Buffer.byteLength(imageManifest),
          platform: { os: 'linux', architecture: 'amd64' },
        },
        {
          mediaType: MediaTypes.ociManifest,
          digest: attestationDigest,
          size: Buffer.byteLength(JSON.stringify(attestation)),
          platform: { os: 'unknown', architecture: 'unknown' },
          annotations: {
            'vnd.docker.reference.type': 'attestation-manifest',
            'vnd.docker.reference.digest': image.digest,
          },
        },
      ],
    };
    const indexDigest = await pusher.putManifest('team/web', '1', index, MediaTypes.ociIndex);
    const declared = await declaredBases(
      client,
      parseReference(`${registry.host}/team/web:1`),
      indexDigest,
      anonymousSource,
    );
    assert.deepEqual(
      declared.map((d) => [d.name, d.digest, d.source]),
      [
        ['golang', `sha256:${'f'.repeat(64)}`, 'attestation'],
        [`${registry.host}/base/node`, base.digest, 'attestation'],
      ],
    );
    const expected = { repositories: [`${registry.host}/base/node`], digests: [base.digest] };
    assert.equal(judge(declared, expected).verdict, 'Verified');
    assert.equal(judge(declared, { ...expected, digests: [`sha256:${'0'.repeat(64)}`] }).verdict, 'Mismatch');
  });

  it('gives the digests of the followed platforms of a multi-platform base', async () => {
    const base = await pusher.pushImage('base/multi', '1', {
      seed: 'm1',
      platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
    });
    const facts = new RegistryFacts(client);
    const digests = await facts.platformDigests(
      parseReference(`${registry.host}/base/multi:1`),
      base.digest,
      ['linux/arm64', 'linux/arm/v7'],
      anonymousSource,
    );
    assert.deepEqual(digests, {
      'linux/arm64': base.children.find((c) => c.platform === 'linux/arm64')!.digest,
      'linux/arm/v7': base.children.find((c) => c.platform === 'linux/arm/v7')!.digest,
    });
  });

  it('confirms the registry serves a candidate digest in the followed repository (the digest check)', async () => {
    const facts = new RegistryFacts(client);
    const app = await pusher.pushImage('team/served', '1.0', { seed: 's1' });
    const elsewhere = await pusher.pushImage('team/elsewhere', '1.0', { seed: 's2' });
    const ref = parseReference(`${registry.host}/team/served:1.0`);
    assert.equal((await facts.servedManifest(ref, app.digest, anonymousSource)).matches, true);
    assert.deepEqual(await facts.servedManifest(ref, elsewhere.digest, anonymousSource), {
      matches: false,
      message: `${registry.host}/team/served has no manifest ${elsewhere.digest}`,
    });
  });
});
