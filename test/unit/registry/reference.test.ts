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
    // From distribution/reference's tables (Parse and ParseNormalizedNamed), normalised as Docker does.
    ['test_com', 'docker.io/library/test_com:latest'],
    ['test.com:tag', 'docker.io/library/test.com:tag'],
    ['test:5000/repo', 'test:5000/repo:latest'],
    [`test:5000/repo:tag@${D}`, `test:5000/repo:tag@${D}`],
    ['lowercase:Uppercase', 'docker.io/library/lowercase:Uppercase'],
    ['sub-dom1.foo.com/bar/baz/quux:some-long-tag', 'sub-dom1.foo.com/bar/baz/quux:some-long-tag'],
    ['b.gcr.io/test.example.com/my-app:test.example.com', 'b.gcr.io/test.example.com/my-app:test.example.com'],
    ['xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com/myimage:xn--n3h.com'],
    ['foo_bar.com:8080', 'docker.io/library/foo_bar.com:8080'],
    ['192.168.1.1:5000/repo:5050', '192.168.1.1:5000/repo:5050'],
    ['[2001:db8::1]/repo', '[2001:db8::1]/repo:latest'],
    ['[2001:db8:1:2:3:4:5:6]/repo:tag', '[2001:db8:1:2:3:4:5:6]/repo:tag'],
    [`[2001:db8::1]:5000/repo:tag@${D}`, `[2001:db8::1]:5000/repo:tag@${D}`],
    ['[2001:db8::]:5000/repo', '[2001:db8::]:5000/repo:latest'],
    [`${'a/'.repeat(127)}a:tag-puts-this-over-max`, `docker.io/${'a/'.repeat(127)}a:tag-puts-this-over-max`],
    [`registry.io/${'a'.repeat(250)}`, `registry.io/${'a'.repeat(250)}:latest`],
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
    [`registry.io/${'a'.repeat(256)}`, /longer than 255/],
    [`${'a/'.repeat(128)}a:tag`, /longer than 255/],
    ['a'.repeat(250), /longer than 255/], // docker.io/library/ + 250: the path is 258
    [':justtag', /no repository name/],
    [`@${D}`, /no repository name/],
    ['aa/asdf$$^/aa', /not a valid path component/],
    ['Uppercase:tag', /must be lower case/],
    ['test:5000/Uppercase/lowercase:tag', /must be lower case/],
    ['[2001:db8::1]', /is not a tag/],
    ['[fe80::1%eth0]:5000/repo', /not a registry host/],
    ['[::ffff:192.168.1.1]:5000/repo', /not a registry host/],
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
