// The registry client's handling of what real registries do only sometimes: pagination,
// the referrers API, throttling, failures, timeouts, oversized and malformed answers,
// redirects, and hostile token realms. Against an in-process HTTP server.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { anonymousSource, StaticCredentials } from '../../../src/registry/auth/credentials.ts';
import { nextLink, parseRateLimitHeader, RegistryClient } from '../../../src/registry/client.ts';
import { parseRetryAfter } from '../../../src/runtime/json-call.ts';
import { isRegistryError, RegistryError } from '../../../src/registry/errors.ts';
import { MediaTypes } from '../../../src/registry/manifest.ts';
import { parseReference } from '../../../src/registry/reference.ts';
import { createRegistry } from '../../../src/runtime/metrics.ts';
import { FakeHttp, json } from '../../support/fake-http.ts';

const manifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociManifest,
  config: { mediaType: MediaTypes.ociConfig, digest: `sha256:${'1'.repeat(64)}`, size: 2 },
  layers: [],
};
const manifestText = JSON.stringify(manifest);
const manifestDigest = `sha256:${createHash('sha256').update(manifestText).digest('hex')}`;

describe('RegistryClient (against a scripted HTTP server)', () => {
  let server: FakeHttp;
  let client: RegistryClient;
  let now = Date.parse('2026-12-06T10:00:00Z');
  const waits: number[] = [];
  const metrics = createRegistry(false);

  beforeEach(async () => {
    server = new FakeHttp();
    await server.start();
    waits.length = 0;
    client = new RegistryClient({
      hosts: [{ host: server.host, insecure: true }],
      registry: metrics,
      timeoutMs: 500,
      now: () => now,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
  });
  afterEach(async () => {
    await client.close();
    await server.stop();
  });

  const ref = (r: string) => parseReference(`${server.host}/${r}`);

  it('follows Link pagination of tag lists', async () => {
    server.on('GET', '/v2/team/app/tags/list', (req, res) => {
      const last = new URL(req.url!, 'http://x').searchParams.get('last');
      if (!last)
        json(
          res,
          200,
          { name: 'team/app', tags: ['a', 'b'] },
          { link: '</v2/team/app/tags/list?n=2&last=b>; rel="next"' },
        );
      else if (last === 'b')
        json(
          res,
          200,
          { name: 'team/app', tags: ['c', 'd'] },
          { link: `<http://${server.host}/v2/team/app/tags/list?n=2&last=d>; rel="next"` },
        );
      else json(res, 200, { name: 'team/app', tags: ['e'] });
    });
    assert.deepEqual(await client.tags(server.host, 'team/app', anonymousSource, { pageSize: 2 }), [
      'a',
      'b',
      'c',
      'd',
      'e',
    ]);
    assert.equal(server.seen.length, 3);
  });

  it('refuses a pagination link to another host', async () => {
    server.on('GET', '/v2/team/app/tags/list', (_req, res) =>
      json(
        res,
        200,
        { tags: ['a'] },
        { link: '<https://elsewhere.example.com/v2/team/app/tags/list?last=a>; rel="next"' },
      ),
    );
    await assert.rejects(client.tags(server.host, 'team/app', anonymousSource), (err: unknown) =>
      isRegistryError(err, 'INVALID_RESPONSE'),
    );
  });

  it('uses the referrers API when there is one, with its filter and pagination', async () => {
    const d = (n: number, type: string) => ({
      mediaType: MediaTypes.ociManifest,
      digest: `sha256:${String(n).repeat(64)}`,
      size: 1,
      artifactType: type,
    });
    server.on('GET', `/v2/team/app/referrers/${manifestDigest}`, (req, res) => {
      const page = new URL(req.url!, 'http://x').searchParams.get('page');
      if (!page)
        json(
          res,
          200,
          { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [d(1, 'sig')] },
          {
            link: `</v2/team/app/referrers/${manifestDigest}?artifactType=sig&page=2>; rel="next"`,
            'oci-filters-applied': 'artifactType',
          },
        );
      else json(res, 200, { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [d(2, 'sig')] });
    });
    const r = await client.referrers(server.host, 'team/app', manifestDigest, anonymousSource, { artifactType: 'sig' });
    assert.equal(r.fromTagSchema, false);
    assert.equal(r.filtered, true);
    assert.equal(r.descriptors.length, 2);
    assert.match(server.seen[0]!.url, /artifactType=sig/);
  });

  it('remembers a registry without the referrers API: later lookups go to the tag schema at once, for an hour', async () => {
    let apiCalls = 0;
    server.on('GET', `/v2/team/app/referrers/${manifestDigest}`, (_req, res) => {
      apiCalls++;
      json(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'no such route' }] });
    });
    const tag = manifestDigest.replace(':', '-');
    server.on('GET', `/v2/team/app/manifests/${tag}`, (_req, res) =>
      json(res, 404, { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'unknown' }] }),
    );
    for (let i = 0; i < 3; i++) {
      const r = await client.referrers(server.host, 'team/app', manifestDigest, anonymousSource);
      assert.equal(r.fromTagSchema, true);
      assert.deepEqual(r.descriptors, []);
    }
    assert.equal(apiCalls, 1, 'one 404 from the referrers API, then the tag schema only');
    now += 61 * 60_000;
    await client.referrers(server.host, 'team/app', manifestDigest, anonymousSource);
    assert.equal(apiCalls, 2, 'looked at again after an hour');
  });

  it('filters referrers itself when the registry did not', async () => {
    server.on('GET', `/v2/team/app/referrers/${manifestDigest}`, (_req, res) =>
      json(res, 200, {
        schemaVersion: 2,
        manifests: [
          { mediaType: MediaTypes.ociManifest, digest: `sha256:${'1'.repeat(64)}`, size: 1, artifactType: 'sig' },
          { mediaType: MediaTypes.ociManifest, digest: `sha256:${'2'.repeat(64)}`, size: 1, artifactType: 'sbom' },
        ],
      }),
    );
    const r = await client.referrers(server.host, 'team/app', manifestDigest, anonymousSource, {
      artifactType: 'sbom',
    });
    assert.deepEqual(
      r.descriptors.map((x) => x.artifactType),
      ['sbom'],
    );
  });

  it('waits out a short Retry-After on 429 and succeeds', async () => {
    let calls = 0;
    server.on('HEAD', '/v2/team/app/manifests/1', (_req, res) => {
      if (calls++ === 0) {
        res.writeHead(429, { 'retry-after': '2' });
        res.end();
      } else {
        res.writeHead(200, {
          'docker-content-digest': manifestDigest,
          'content-type': MediaTypes.ociManifest,
          'content-length': '10',
        });
        res.end();
      }
    });
    assert.equal((await client.head(ref('team/app:1'), anonymousSource)).digest, manifestDigest);
    assert.deepEqual(waits, [2000]);
  });

  it('fails a long Retry-After as RATE_LIMITED, carrying the delay', async () => {
    server.on('HEAD', '/v2/team/app/manifests/1', (_req, res) => {
      res.writeHead(429, {
        'retry-after': '3600',
        'ratelimit-limit': '100;w=21600',
        'ratelimit-remaining': '0;w=21600',
      });
      res.end();
    });
    await assert.rejects(client.head(ref('team/app:1'), anonymousSource), (err: unknown) => {
      assert.ok(isRegistryError(err, 'RATE_LIMITED'));
      assert.equal(err.retryAfterMs, 3_600_000);
      return true;
    });
    assert.deepEqual(client.rateLimit(server.host), {
      limit: 100,
      windowSeconds: 21600,
      remaining: 0,
      at: client.rateLimit(server.host)!.at,
    });
    assert.match(
      await metrics.getSingleMetricAsString('patchline_registry_ratelimit_remaining'),
      new RegExp(`registry="${server.host}"} 0`),
    );
  });

  it('retries 5xx with backoff, then succeeds', async () => {
    let calls = 0;
    server.on('HEAD', '/v2/team/app/manifests/1', (_req, res) => {
      res.writeHead(calls++ < 2 ? 503 : 200, { 'docker-content-digest': manifestDigest });
      res.end();
    });
    await client.head(ref('team/app:1'), anonymousSource);
    assert.equal(calls, 3);
    assert.equal(waits.length, 2);
    assert.ok(waits[1]! > waits[0]!);
  });

  it('gives up after its retries with UNAVAILABLE', async () => {
    server.on('HEAD', '/v2/team/app/manifests/1', (_req, res) => {
      res.writeHead(500);
      res.end();
    });
    await assert.rejects(
      client.head(ref('team/app:1'), anonymousSource),
      (err: unknown) => isRegistryError(err, 'UNAVAILABLE') && /HTTP 500/.test(err.message),
    );
    assert.equal(server.seen.length, 4, 'one try and three retries');
  });

  it('reports 403 as DENIED with the registry error text', async () => {
    server.on('HEAD', '/v2/team/app/manifests/1', (_req, res) =>
      json(res, 403, { errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }),
    );
    server.on('GET', '/v2/team/app/manifests/1', (_req, res) =>
      json(res, 403, { errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }),
    );
    await assert.rejects(
      client.manifest(ref('team/app:1'), anonymousSource),
      (err: unknown) => isRegistryError(err, 'DENIED') && /requested access/.test(err.message),
    );
  });

  it('times out a registry that does not answer', async () => {
    server.on('HEAD', '/v2/team/app/manifests/1', () => {
      /* never answers */
    });
    const started = Date.now();
    await assert.rejects(client.head(ref('team/app:1'), anonymousSource), (err: unknown) =>
      isRegistryError(err, 'TIMEOUT'),
    );
    assert.ok(Date.now() - started < 5_000);
  });

  it('reports an unreachable registry as UNAVAILABLE', async () => {
    const closed = new RegistryClient({
      hosts: [{ host: '127.0.0.1:1', insecure: true }],
      sleep: () => Promise.resolve(),
    });
    await assert.rejects(closed.head(parseReference('127.0.0.1:1/team/app:1'), anonymousSource), (err: unknown) =>
      isRegistryError(err, 'UNAVAILABLE'),
    );
    await closed.close();
  });

  it('refuses an oversized manifest, declared or streamed', async () => {
    const small = new RegistryClient({
      hosts: [{ host: server.host, insecure: true }],
      limits: { manifestBytes: 1024 },
    });
    server.on('GET', '/v2/team/big/manifests/1', (_req, res) =>
      json(res, 200, { schemaVersion: 2, layers: [], pad: 'x'.repeat(5000) }),
    );
    server.on('GET', '/v2/team/stream/manifests/1', (_req, res) => {
      res.writeHead(200, { 'content-type': MediaTypes.ociManifest });
      for (let i = 0; i < 10; i++) res.write('x'.repeat(500));
      res.end();
    });
    await assert.rejects(small.manifest(ref('team/big:1'), anonymousSource), (err: unknown) =>
      isRegistryError(err, 'TOO_LARGE'),
    );
    await assert.rejects(small.manifest(ref('team/stream:1'), anonymousSource), (err: unknown) =>
      isRegistryError(err, 'TOO_LARGE'),
    );
    await small.close();
  });

  it('refuses malformed manifests and manifests that do not match their digest', async () => {
    server.on('GET', '/v2/team/garbage/manifests/1', (_req, res) => {
      res.writeHead(200, { 'content-type': MediaTypes.ociManifest });
      res.end('{not json');
    });
    server.on('GET', '/v2/team/shape/manifests/1', (_req, res) =>
      json(res, 200, { schemaVersion: 2, config: 'nope', layers: [] }),
    );
    server.on('GET', `/v2/team/tampered/manifests/${manifestDigest}`, (_req, res) =>
      json(res, 200, { ...manifest, annotations: { x: 'y' } }),
    );
    await assert.rejects(
      client.manifest(ref('team/garbage:1'), anonymousSource),
      (err: unknown) => isRegistryError(err, 'INVALID_RESPONSE') && /malformed JSON/.test(err.message),
    );
    await assert.rejects(
      client.manifest(ref('team/shape:1'), anonymousSource),
      (err: unknown) => isRegistryError(err, 'INVALID_RESPONSE') && /config/.test(err.message),
    );
    await assert.rejects(
      client.manifest(ref(`team/tampered@${manifestDigest}`), anonymousSource),
      (err: unknown) => isRegistryError(err, 'INVALID_RESPONSE') && /does not match/.test(err.message),
    );
  });

  it('falls back to reading the manifest when HEAD gives no digest', async () => {
    server.on('HEAD', '/v2/team/old/manifests/1', (_req, res) => {
      res.writeHead(200, { 'content-type': MediaTypes.ociManifest });
      res.end();
    });
    server.on('GET', '/v2/team/old/manifests/1', (_req, res) => {
      res.writeHead(200, { 'content-type': MediaTypes.ociManifest });
      res.end(manifestText);
    });
    assert.equal((await client.head(ref('team/old:1'), anonymousSource)).digest, manifestDigest);
    assert.match(await metrics.getSingleMetricAsString('patchline_registry_digest_fallbacks_total'), / 1$/m);
  });

  it('follows a blob redirect to storage without sending the credentials there', async () => {
    const storage = new FakeHttp();
    const blob = Buffer.from('{"created":"2026-01-01T00:00:00Z","config":{"Labels":{"a":"b"}}}');
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    storage.on('GET', '/bucket/blob', (_req, res) => {
      res.writeHead(200);
      res.end(blob);
    });
    await storage.start();
    server.on('GET', '/v2/team/app/manifests/1', (req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' });
        res.end();
        return;
      }
      json(res, 200, { ...manifest, config: { mediaType: MediaTypes.ociConfig, digest, size: blob.length } });
    });
    server.on('GET', `/v2/team/app/blobs/${digest}`, (_req, res) => {
      res.writeHead(307, { location: `http://${storage.host}/bucket/blob` });
      res.end();
    });
    const creds = new StaticCredentials('t', new Map([[server.host, { kind: 'basic', username: 'u', password: 'p' }]]));
    const fetched = await client.manifest(ref('team/app:1'), creds);
    assert.equal(fetched.manifest.kind, 'manifest');
    if (fetched.manifest.kind !== 'manifest') return;
    const config = await client.config(server.host, 'team/app', fetched.manifest, creds);
    assert.deepEqual(config.labels, { a: 'b' });
    assert.equal(storage.seen[0]?.headers.authorization, undefined, 'no credentials to storage');
    assert.ok(
      server.seen.some((s) => s.url.includes('/blobs/') && s.headers.authorization),
      'credentials to the registry',
    );
    await storage.stop();
  });

  it('refuses to send credentials to a token realm over plain http on another host', async () => {
    server.on('HEAD', '/v2/team/app/manifests/1', (_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://evil.example.com/token",service="x"' });
      res.end();
    });
    const creds = new StaticCredentials('t', new Map([[server.host, { kind: 'basic', username: 'u', password: 'p' }]]));
    await assert.rejects(
      client.head(ref('team/app:1'), creds),
      (err: unknown) => isRegistryError(err, 'UNSUPPORTED') && /refusing to send credentials/.test(err.message),
    );
  });

  it('marks transient errors', () => {
    assert.ok(new RegistryError('RATE_LIMITED', 'r', 'x').transient);
    assert.ok(!new RegistryError('UNAUTHORIZED', 'r', 'x').transient);
  });
});

describe('registry header parsing', () => {
  it('reads Retry-After in seconds or as a date', () => {
    assert.equal(parseRetryAfter('120', 0), 120_000);
    assert.equal(parseRetryAfter('Thu, 01 Jan 1970 00:01:00 GMT', 0), 60_000);
    assert.equal(parseRetryAfter('soon', 0), undefined);
  });

  it('reads RateLimit headers with windows', () => {
    assert.deepEqual(parseRateLimitHeader('100;w=21600'), { value: 100, window: 21600 });
    assert.deepEqual(parseRateLimitHeader('76'), { value: 76 });
    assert.equal(parseRateLimitHeader(undefined), undefined);
  });

  it('finds the next link', () => {
    assert.equal(nextLink('</v2/x/tags/list?n=2&last=b>; rel="next"', 'r.io'), '/v2/x/tags/list?n=2&last=b');
    assert.equal(
      nextLink('<https://registry-1.docker.io/v2/x/tags/list?last=b>; rel="next"', 'docker.io'),
      '/v2/x/tags/list?last=b',
    );
    assert.equal(nextLink('</a>; rel="prev"', 'r.io'), undefined);
  });
});
