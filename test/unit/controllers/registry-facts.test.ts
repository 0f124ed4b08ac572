// What the registry serves for a candidate digest (the digest check's fact), against a
// scripted registry that can serve altered content, which a real one cannot be made to do.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { RegistryFacts } from '../../../src/controllers/registry-facts.ts';
import { anonymousSource } from '../../../src/registry/auth/credentials.ts';
import { RegistryClient } from '../../../src/registry/client.ts';
import { MediaTypes } from '../../../src/registry/manifest.ts';
import { parseReference } from '../../../src/registry/reference.ts';
import { FakeHttp, json } from '../../support/fake-http.ts';

const configText = JSON.stringify({ created: '2026-11-20T10:00:00Z', config: {} });
const configDigest = `sha256:${createHash('sha256').update(configText).digest('hex')}`;
const manifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociManifest,
  config: { mediaType: MediaTypes.ociConfig, digest: configDigest, size: configText.length },
  layers: [],
};
const manifestText = JSON.stringify(manifest);
const digest = `sha256:${createHash('sha256').update(manifestText).digest('hex')}`;
const other = `sha256:${'9'.repeat(64)}`;

describe('RegistryFacts: what the registry serves for a digest', () => {
  let server: FakeHttp;
  let client: RegistryClient;
  let facts: RegistryFacts;

  beforeEach(async () => {
    server = new FakeHttp();
    await server.start();
    client = new RegistryClient({ hosts: [{ host: server.host, insecure: true }], timeoutMs: 500, retries: 0 });
    facts = new RegistryFacts(client);
    server.on('GET', `/v2/team/app/manifests/${digest}`, (_req, res) => {
      res.writeHead(200, { 'content-type': MediaTypes.ociManifest, 'docker-content-digest': digest });
      res.end(manifestText);
    });
    server.on('GET', `/v2/team/app/blobs/${configDigest}`, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(configText);
    });
  });
  afterEach(async () => {
    await client.close();
    await server.stop();
  });

  const ref = parseReference('placeholder.example/team/app:1');
  const at = (): typeof ref => ({ ...ref, registry: server.host });
  const manifestGets = (): number => server.seen.filter((s) => s.url.includes('/manifests/')).length;

  it('matches a digest whose manifest hashes to it, with one GET shared by the other facts', async () => {
    const served = await facts.servedManifest(at(), digest, anonymousSource);
    assert.equal(served.matches, true);
    assert.match(served.message, /serves sha256:[0-9a-f]{12}, its manifest hashes to it/);
    const created = await facts.created(at(), digest, anonymousSource);
    assert.equal(created?.toISOString(), '2026-11-20T10:00:00.000Z');
    await facts.servedManifest(at(), digest, anonymousSource);
    assert.equal(manifestGets(), 1, 'the manifest is read once for the digest check and the age check');
  });

  it('refuses content that does not hash to the digest, naming what it hashes to', async () => {
    const altered = JSON.stringify({ ...manifest, annotations: { injected: 'yes' } });
    server.on('GET', `/v2/team/app/manifests/${other}`, (_req, res) => {
      res.writeHead(200, { 'content-type': MediaTypes.ociManifest, 'docker-content-digest': other });
      res.end(altered);
    });
    const served = await facts.servedManifest(at(), other, anonymousSource);
    assert.equal(served.matches, false);
    const computed = `sha256:${createHash('sha256').update(altered).digest('hex')}`;
    assert.match(served.message, new RegExp(`serves for ${other} hashes to ${computed}`));
  });

  it('refuses a digest the repository does not have (a digest taken from elsewhere)', async () => {
    server.on('GET', `/v2/team/app/manifests/${other}`, (_req, res) =>
      json(res, 404, { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }),
    );
    const served = await facts.servedManifest(at(), other, anonymousSource);
    assert.deepEqual(served, { matches: false, message: `${server.host}/team/app has no manifest ${other}` });
  });

  it('throws when the registry cannot answer, so that the check is judged later, not refused', async () => {
    server.on('GET', `/v2/team/app/manifests/${other}`, (_req, res) => json(res, 503, { errors: [] }));
    await assert.rejects(facts.servedManifest(at(), other, anonymousSource), /503|unavailable/i);
  });

  it('asks again about a refusal at once on a requested reconcile (fresh)', async () => {
    let answers = 0;
    server.on('GET', `/v2/team/app/manifests/${other}`, (_req, res) => {
      answers++;
      json(res, 404, { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] });
    });
    await facts.servedManifest(at(), other, anonymousSource);
    await facts.servedManifest(at(), other, anonymousSource);
    assert.equal(answers, 1, 'cached for a while');
    await facts.servedManifest(at(), other, anonymousSource, undefined, true);
    assert.equal(answers, 2, 'a requested reconcile asks again');
  });
});
