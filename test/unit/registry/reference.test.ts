import assert from 'node:assert/strict';
import {
  ReferenceError,
  formatReference,
  parseReference,
  pinned,
  shortDigest,
} from '../../../src/registry/reference.ts';

const D = `sha256:${'0123456789abcdef'.repeat(4)}`;

describe('image references (as Docker normalises them)', () => {
  const cases: [string, string][] = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.25', 'docker.io/library/nginx:1.25'],
    ['library/nginx', 'docker.io/library/nginx:latest'],
    ['docker.io/nginx', 'docker.io/library/nginx:latest'],
    ['index.docker.io/nginx', 'docker.io/library/nginx:latest'],
    ['index.docker.io/bitnami/redis:7', 'docker.io/bitnami/redis:7'],
    ['bitnami/redis', 'docker.io/bitnami/redis:latest'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/team/app:v1', 'localhost:5000/team/app:v1'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000/app:latest'],
    ['[::1]:5000/app:x', '[::1]:5000/app:x'],
    ['mcr.microsoft.com/dotnet/aspnet:8.0', 'mcr.microsoft.com/dotnet/aspnet:8.0'],
    ['Registry.Example.com/team/app', 'Registry.Example.com/team/app:latest'],
    ['Foo/bar', 'Foo/bar:latest'],
    [`ghcr.io/acme/app@${D}`, `ghcr.io/acme/app@${D}`],
    [`ghcr.io/acme/app:1.0@${D}`, `ghcr.io/acme/app:1.0@${D}`],
    ['a.b/c_d/e__f/g-h/i--j/k.l:TAG_1.0-rc', 'a.b/c_d/e__f/g-h/i--j/k.l:TAG_1.0-rc'],
  ];
  for (const [input, canonical] of cases) {
    it(`${input} -> ${canonical}`, () => {
      assert.equal(formatReference(parseReference(input)), canonical);
    });
  }

  it('splits registry, repository, tag and digest', () => {
    assert.deepEqual(parseReference(`registry.example.com:8443/team/app:2.1@${D}`), {
      registry: 'registry.example.com:8443',
      repository: 'team/app',
      tag: '2.1',
      digest: D,
    });
    assert.deepEqual(parseReference(`ghcr.io/acme/app@${D}`), {
      registry: 'ghcr.io',
      repository: 'acme/app',
      digest: D,
    });
  });

  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ['NGINX', /must be lower case/],
    ['docker.io/Library/nginx', /must be lower case/],
    ['nginx:', /is not a tag/],
    ['nginx:-1', /is not a tag/],
    [`nginx:${'a'.repeat(129)}`, /is not a tag/],
    ['nginx@sha256:abc', /is not a digest/],
    [`nginx@md5:${'a'.repeat(32)}`, /only sha256/],
    [`nginx@sha256:${'A'.repeat(64)}`, /only sha256/],
    ['0123456789abcdef'.repeat(4), /image id/],
    ['registry.example.com:port/app', /not a registry host/],
    ['-bad.io/app', /not a registry host/],
    ['team/-app', /not a valid path component/],
    ['team//app', /not a valid path component/],
    ['team/app_', /not a valid path component/],
    ['a b', /not a valid path component/],
    [`registry.io/${'a'.repeat(250)}`, /longer than 255/],
    ['registry.io/', /not a valid path component/],
    [' nginx', /surrounding whitespace/],
    ['nginx:1.0\n', /surrounding whitespace/],
    ['\tghcr.io/acme/app', /surrounding whitespace/],
  ];
  for (const [input, message] of invalid) {
    it(`rejects ${JSON.stringify(input.length > 40 ? input.slice(0, 40) + '…' : input)} clearly`, () => {
      assert.throws(
        () => parseReference(input),
        (err: unknown) =>
          err instanceof ReferenceError &&
          message.test(err.message) &&
          err.message.startsWith('invalid image reference'),
      );
    });
  }

  it('pins and shortens digests', () => {
    assert.equal(pinned(parseReference('nginx:1.25'), D), `docker.io/library/nginx@${D}`);
    assert.equal(shortDigest(D), 'sha256:0123456789ab');
  });
});
