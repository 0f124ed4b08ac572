// Cosign signatures and attestations read from a real registry (Debian's docker-registry,
// which has no referrers API: the referrers tag fallback is what cosign and oras write
// there), minted at test time, and verified end to end through ImageTrust: the legacy .sig
// tag, cosign 3 referrer bundles, keyless and key signatures, signed vulnerability
// attestations; and what one verification costs in registry requests.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageTrust } from '../../src/controllers/image-trust.ts';
import { anonymousSource } from '../../src/registry/auth/credentials.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { parseReference, type ImageReference } from '../../src/registry/reference.ts';
import { createRegistry } from '../../src/runtime/metrics.ts';
import { BUNDLE_PREDICATE_ANNOTATION } from '../../src/verify/cosign-artifacts.ts';
import { SIGN_PREDICATE, type Authority } from '../../src/verify/signatures.ts';
import { TrustedRootSource } from '../../src/verify/trusted-root.ts';
import { OciPusher } from '../support/oci-push.ts';
import { startRegistry, type RegistryServer } from '../support/registry-server.ts';
import { ecKeyPair, SigstoreFixtures, statementFor } from '../support/sigstore.ts';

const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const GITHUB = 'https://token.actions.githubusercontent.com';
const WORKFLOW = 'https://github.com/acme/web/.github/workflows/build.yml@refs/heads/main';
const VULN = 'https://cosign.sigstore.dev/attestation/vuln/v1';

function trivyPredicate(vulns: { id: string; severity: string; fixed?: string }[]) {
  return {
    scanner: {
      uri: 'pkg:github/aquasecurity/trivy@0.57.0',
      result: {
        SchemaVersion: 2,
        Results: [
          {
            Target: 'debian 12',
            Vulnerabilities: vulns.map((v) => ({
              VulnerabilityID: v.id,
              PkgName: 'openssl',
              Severity: v.severity,
              ...(v.fixed ? { FixedVersion: v.fixed } : {}),
            })),
          },
        ],
      },
    },
    metadata: { scanStartedOn: '2026-11-22T09:00:00Z', scanFinishedOn: '2026-11-22T09:01:00Z' },
  };
}

describe('cosign signatures and attestations in a real registry', () => {
  let registry: RegistryServer;
  let pusher: OciPusher;
  let client: RegistryClient;
  let fx: SigstoreFixtures;
  let trust: ImageTrust;
  const metrics = createRegistry(false);
  const requestCount = async (): Promise<number> =>
    (await metrics.getSingleMetricAsString('patchline_registry_requests_total'))
      .split('\n')
      .filter((l) => l.startsWith('patchline_registry_requests_total{'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  const key = ecKeyPair();
  const secrets: Record<string, Record<string, string>> = {};

  const ref = (repo: string): ImageReference => parseReference(`${registry.host}/${repo}`);
  const signed = (image: ImageReference, digest: string, authorities: readonly Authority[]) =>
    trust.signature({ image, digest, source: anonymousSource, authorities });
  const scanned = (image: ImageReference, digest: string, authorities: readonly Authority[]) =>
    trust.attestedScan({ image, digest, source: anonymousSource, authorities });
  const subjectOf = async (repo: string, digest: string) => {
    const head = await client.head({ ...ref(repo), digest }, anonymousSource);
    return { digest, mediaType: head.mediaType, size: head.size };
  };

  before(async () => {
    registry = await startRegistry();
    pusher = new OciPusher(registry.url);
    client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }], registry: metrics });
    fx = await SigstoreFixtures.create();
    const dir = mkdtempSync(join(tmpdir(), 'patchline-trust-'));
    writeFileSync(join(dir, 'trusted_root.json'), JSON.stringify(fx.trustedRoot()));
    secrets['shop/cosign'] = { 'cosign.pub': key.publicPem };
    trust = new ImageTrust({
      client,
      secrets: (ns, name) => {
        const data = secrets[`${ns}/${name}`];
        return data ? Promise.resolve(data) : Promise.reject(new Error(`the Secret ${ns}/${name} does not exist`));
      },
      trustedRoot: new TrustedRootSource({ file: join(dir, 'trusted_root.json') }),
    });
  });
  after(async () => {
    await client.close();
    await registry.stop();
  });

  it('verifies a legacy .sig tag signed with a key from a Secret, and refuses the unsigned image', async () => {
    const image = await pusher.pushImage('shop/web', '1.0', { seed: 'legacy' });
    const unsigned = await pusher.pushImage('shop/web', '1.1', { seed: 'unsigned' });
    const layer = await fx.legacySignature(`${registry.host}/shop/web`, image.digest, { key });
    await pusher.pushCosignTag('shop/web', image.digest, 'sig', [layer]);
    const authorities = await trust.authorities('shop', { keys: [{ secretRef: { name: 'cosign' } }] });
    const ok = await signed(ref('shop/web'), image.digest, authorities);
    assert.deepEqual(ok, {
      verified: true,
      message: 'signed by key cosign/cosign.pub',
      signer: 'key cosign/cosign.pub',
    });
    const none = await signed(ref('shop/web'), unsigned.digest, authorities);
    assert.deepEqual(none, { verified: false, message: `no cosign signature found for ${unsigned.digest}` });
  });

  it('verifies a cosign 3 keyless bundle attached as a referrer (tag fallback), with an anchored identity', async () => {
    const image = await pusher.pushImage('shop/api', '2.0', { seed: 'bundle' });
    const bundle = await fx.signatureBundle(`${registry.host}/shop/api`, image.digest, {
      identity: { subject: WORKFLOW, issuer: GITHUB },
    });
    await pusher.pushReferrer('shop/api', await subjectOf('shop/api', image.digest), BUNDLE_TYPE, [], {
      mediaType: BUNDLE_TYPE,
      body: Buffer.from(JSON.stringify(bundle)),
      annotations: { [BUNDLE_PREDICATE_ANNOTATION]: SIGN_PREDICATE, 'dev.sigstore.bundle.content': 'dsse-envelope' },
    });
    const allowed = await trust.authorities('shop', {
      keyless: [{ issuer: GITHUB, subjectRegExp: 'https://github\\.com/acme/.*' }],
    });
    const v = await signed(ref('shop/api'), image.digest, allowed);
    assert.equal(v.verified, true, v.message);
    const other = await trust.authorities('shop', {
      keyless: [{ issuer: GITHUB, subjectRegExp: 'https://github\\.com/other/.*' }],
    });
    const refused = await signed(ref('shop/api'), image.digest, other);
    assert.equal(refused.verified, false);
    assert.match(refused.message, /referrer sha256:[a-f0-9]+: issuer .* signed by https:\/\/github\.com\/acme\/web/);
  });

  it('refuses a signature copied from another image, and a payload altered in the registry', async () => {
    const original = await pusher.pushImage('shop/copy', 'a', { seed: 'copy-a' });
    const target = await pusher.pushImage('shop/copy', 'b', { seed: 'copy-b' });
    const layer = await fx.legacySignature(`${registry.host}/shop/copy`, original.digest, { key });
    await pusher.pushCosignTag('shop/copy', target.digest, 'sig', [layer]);
    const authorities = await trust.authorities('shop', { keys: [{ secretRef: { name: 'cosign' } }] });
    const copied = await signed(ref('shop/copy'), target.digest, authorities);
    assert.match(copied.message, new RegExp(`the signature is for ${original.digest}, not ${target.digest}`));

    const altered = await pusher.pushImage('shop/copy', 'c', { seed: 'copy-c' });
    const good = await fx.legacySignature(`${registry.host}/shop/copy`, altered.digest, { key });
    const payload = Buffer.from(good.payload.toString().replace('"optional":null', '"optional":{"by":"mallory"}'));
    await pusher.pushCosignTag('shop/copy', altered.digest, 'sig', [{ ...good, payload }]);
    const v = await signed(ref('shop/copy'), altered.digest, authorities);
    assert.equal(v.verified, false);
    assert.match(v.message, /_ERROR/);
  });

  it('says which Secret is missing or holds no usable key', async () => {
    await assert.rejects(
      trust.authorities('shop', { keys: [{ secretRef: { name: 'absent' } }] }),
      /absent does not exist/,
    );
    secrets['shop/garbage'] = { 'cosign.pub': 'not a key' };
    await assert.rejects(
      trust.authorities('shop', { keys: [{ secretRef: { name: 'garbage' } }] }),
      /shop\/garbage "cosign.pub" is not a PEM public key/,
    );
  });

  it('reads the findings of a signed vulnerability attestation (.att tag), and ignores a forged one', async () => {
    const image = await pusher.pushImage('shop/scanned', '1', { seed: 'scanned' });
    const statement = statementFor(
      image.digest,
      `${registry.host}/shop/scanned`,
      VULN,
      trivyPredicate([
        { id: 'CVE-2026-0001', severity: 'CRITICAL', fixed: '3.0.9' },
        { id: 'CVE-2026-0002', severity: 'LOW' },
      ]),
    );
    const forged = statementFor(image.digest, `${registry.host}/shop/scanned`, VULN, trivyPredicate([]));
    await pusher.pushCosignTag('shop/scanned', image.digest, 'att', [
      await fx.legacyAttestation(statement, { key }),
      await fx.legacyAttestation(forged, { key: ecKeyPair() }),
    ]);
    const authorities = await trust.authorities('shop', { keys: [{ secretRef: { name: 'cosign' } }] });
    const scan = await scanned(ref('shop/scanned'), image.digest, authorities);
    assert.deepEqual(
      scan?.findings.map((f) => `${f.id} ${f.severity}`),
      ['CVE-2026-0001 CRITICAL', 'CVE-2026-0002 LOW'],
    );
    assert.equal(scan?.scanner, 'pkg:github/aquasecurity/trivy@0.57.0');
    assert.equal(
      await scanned(
        ref('shop/scanned'),
        image.digest,
        await trust.authorities('shop', { keyless: [{ issuer: GITHUB, subject: WORKFLOW }] }),
      ),
      undefined,
    );
  });

  it('costs a handful of registry requests per verification, and none when cached', async () => {
    const image = await pusher.pushImage('shop/cost', '1', { seed: 'cost' });
    const layer = await fx.legacySignature(`${registry.host}/shop/cost`, image.digest, { key });
    await pusher.pushCosignTag('shop/cost', image.digest, 'sig', [layer]);
    const authorities = await trust.authorities('shop', { keys: [{ secretRef: { name: 'cosign' } }] });
    // A first verification on this registry learns that it has no referrers API (one 404)...
    const first = await pusher.pushImage('shop/cost', '0', { seed: 'cost-first' });
    await signed(ref('shop/cost'), first.digest, authorities);
    const before = await requestCount();
    assert.equal((await signed(ref('shop/cost'), image.digest, authorities)).verified, true);
    // ...so the next costs the .sig manifest and its layer, and the referrers tag (404): the
    // referrers API is not asked again.
    assert.equal((await requestCount()) - before, 3);
    const warm = await requestCount();
    assert.equal((await signed(ref('shop/cost'), image.digest, authorities)).verified, true);
    assert.equal((await requestCount()) - warm, 0, 'a cached verdict costs no request');
  });
});
