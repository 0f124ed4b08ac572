// Signature verification cost, against a real registry (Debian's docker-registry) on
// 127.0.0.1, with signatures minted here: how long one image takes to verify with a cold
// cache (registry reads + Sigstore verification) and a warm one, how many registry requests a
// verification costs, and what an admission review costs on top.
//
//   node bench/trust.ts [--images=200]
//
// Three kinds of signed image, a third each: a key signature with a Rekor SET (.sig tag), a
// keyless signature (.sig tag, Fulcio certificate, SCT, SET), a keyless cosign 3 bundle in the
// referrers (tag fallback on this registry, which has no referrers API). Then Notary Project
// signatures (notation-go's, from test/notation: build it with bash test/notation/build.sh).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdmissionReviewer } from '../src/admission/server.ts';
import type { ImagePolicy } from '../src/api/v1alpha1/index.ts';
import { ImageTrust } from '../src/controllers/image-trust.ts';
import { anonymousSource } from '../src/registry/auth/credentials.ts';
import { RegistryClient } from '../src/registry/client.ts';
import { parseReference } from '../src/registry/reference.ts';
import { silentLogger } from '../src/runtime/logger.ts';
import { createRegistry } from '../src/runtime/metrics.ts';
import { BUNDLE_PREDICATE_ANNOTATION } from '../src/verify/cosign-artifacts.ts';
import { SIGN_PREDICATE, type Authority } from '../src/verify/signatures.ts';
import { TrustedRootSource } from '../src/verify/trusted-root.ts';
import { OciPusher } from '../test/support/oci-push.ts';
import { startRegistry } from '../test/support/registry-server.ts';
import { ecKeyPair, SigstoreFixtures } from '../test/support/sigstore.ts';
import { NotaryFixtures } from '../test/support/notation.ts';

const IMAGES = Number(process.argv.find((a) => a.startsWith('--images='))?.slice(9) ?? 200);
const GITHUB = 'https://token.actions.githubusercontent.com';
const WORKFLOW = 'https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main';
const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
type Kind = 'key .sig' | 'keyless .sig' | 'keyless bundle';
const KINDS: Kind[] = ['key .sig', 'keyless .sig', 'keyless bundle'];

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const ms = (v: number): string => `${v.toFixed(2)} ms`;
const summary = (values: number[]): string =>
  `p50 ${ms(percentile(values, 50))}, p95 ${ms(percentile(values, 95))}, p99 ${ms(percentile(values, 99))}`;

async function requestsByKind(metrics: ReturnType<typeof createRegistry>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await metrics.getSingleMetricAsString('patchline_registry_requests_total')).split('\n')) {
    const m = /kind="(\w+)",method="(\w+)",code="([^"]*)"\} (\d+)/.exec(line);
    if (m) out.set(`${m[2]} ${m[1]} ${m[3]}`, (out.get(`${m[2]} ${m[1]} ${m[3]}`) ?? 0) + Number(m[4]));
  }
  return out;
}
function perImage(after: Map<string, number>, before: Map<string, number>, n: number): string {
  const keys = [...new Set([...after.keys()])].sort();
  const parts = keys
    .map((k) => [k, ((after.get(k) ?? 0) - (before.get(k) ?? 0)) / n] as const)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k}: ${v.toFixed(2)}`);
  const total = keys.reduce((s, k) => s + (after.get(k) ?? 0) - (before.get(k) ?? 0), 0) / n;
  return `${total.toFixed(2)} (${parts.join(', ') || 'none'})`;
}

async function main(): Promise<void> {
  const registry = await startRegistry();
  const pusher = new OciPusher(registry.url);
  const fx = await SigstoreFixtures.create();
  const dir = mkdtempSync(join(tmpdir(), 'patchline-bench-trust-'));
  writeFileSync(join(dir, 'trusted_root.json'), JSON.stringify(fx.trustedRoot()));
  const key = ecKeyPair();
  const images: { kind: Kind; repo: string; digest: string }[] = [];
  const started = Date.now();
  for (let i = 0; i < IMAGES; i++) {
    const kind = KINDS[i % KINDS.length]!;
    const repo = `bench/app${i % 10}`;
    const image = await pusher.pushImage(repo, `v${i}`, { seed: `trust-${i}` });
    const name = `${registry.host}/${repo}`;
    if (kind === 'key .sig') {
      await pusher.pushCosignTag(repo, image.digest, 'sig', [await fx.legacySignature(name, image.digest, { key })]);
    } else if (kind === 'keyless .sig') {
      await pusher.pushCosignTag(repo, image.digest, 'sig', [
        await fx.legacySignature(name, image.digest, { identity: { subject: WORKFLOW, issuer: GITHUB } }),
      ]);
    } else {
      const bundle = await fx.signatureBundle(name, image.digest, { identity: { subject: WORKFLOW, issuer: GITHUB } });
      await pusher.pushReferrer(
        repo,
        { digest: image.digest, mediaType: image.mediaType, size: await pusher.manifestSize(repo, image.digest) },
        BUNDLE_TYPE,
        [],
        {
          mediaType: BUNDLE_TYPE,
          body: Buffer.from(JSON.stringify(bundle)),
          annotations: { [BUNDLE_PREDICATE_ANNOTATION]: SIGN_PREDICATE },
        },
      );
    }
    images.push({ kind, repo, digest: image.digest });
  }
  console.log(`${IMAGES} signed images pushed in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const metrics = createRegistry(false);
  // The per-registry request budget (600/min by default) would pace a burst of cold checks at
  // about 10 requests a second; the verification itself is measured without it, the budget's
  // effect last.
  const client = new RegistryClient({
    hosts: [{ host: registry.host, insecure: true, requestsPerMinute: 1_000_000 }],
    registry: metrics,
  });
  const secrets = (): Promise<Record<string, string>> => Promise.resolve({ 'cosign.pub': key.publicPem });
  const newTrust = (c = client) =>
    new ImageTrust({
      client: c,
      secrets,
      trustedRoot: new TrustedRootSource({ file: join(dir, 'trusted_root.json') }),
    });
  const spec = {
    keys: [{ secretRef: { name: 'cosign' } }],
    keyless: [{ issuer: GITHUB, subjectRegExp: 'https://github\\.com/acme/.*' }],
  };

  let trust = newTrust();
  const authorities: Authority[] = await trust.authorities('bench', spec);
  /** The figures of the closing JSON line, by pass. */
  const figures: Record<string, number> = {};
  const pass = async (label: string, key?: string): Promise<void> => {
    const times = new Map<Kind, number[]>(KINDS.map((k) => [k, []]));
    const before = await requestsByKind(metrics);
    const t0 = performance.now();
    for (const img of images) {
      const t = performance.now();
      const v = await trust.signature({
        image: parseReference(`${registry.host}/${img.repo}`),
        digest: img.digest,
        source: anonymousSource,
        authorities: authorities,
      });
      times.get(img.kind)!.push(performance.now() - t);
      if (!v.verified) throw new Error(`${img.repo}@${img.digest}: ${v.message}`);
    }
    const total = performance.now() - t0;
    const after = await requestsByKind(metrics);
    console.log(`${label}: ${IMAGES} verifications in ${(total / 1000).toFixed(2)} s, all verified`);
    for (const k of KINDS) console.log(`  ${k.padEnd(15)} ${summary(times.get(k)!)}`);
    console.log(`  registry requests per verification: ${perImage(after, before, IMAGES)}`);
    if (key) {
      const all = [...times.values()].flat();
      const requests = [...after.keys()].reduce((sum, k) => sum + (after.get(k) ?? 0) - (before.get(k) ?? 0), 0);
      figures[`${key}_requests_per_verification`] = Number((requests / IMAGES).toFixed(2));
      figures[`${key}_p50_ms`] = Number(percentile(all, 50).toFixed(2));
      figures[`${key}_p99_ms`] = Number(percentile(all, 99).toFixed(2));
      figures[`${key}_total_s`] = Number((total / 1000).toFixed(2));
    }
  };
  await pass('cold cache (first look at each digest)', 'cold');
  await pass('warm cache (verdicts cached)', 'warm');
  trust = newTrust();
  await pass('cold again (a restarted operator; trust root file and TLS connections warm)', 'cold_again');

  // An admission review of a Pod running a signed digest, answered from a warm cache and a cold one.
  const policy: ImagePolicy = {
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name: 'app', namespace: 'bench' },
    spec: {
      image: `${registry.host}/bench/app0`,
      follow: { tag: 'v0' },
      workloads: { names: ['app'] },
      verify: { registries: [registry.host], signature: spec },
    },
  };
  const reviewFor = (uid: number, img: { repo: string; digest: string }) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `u${uid}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      namespace: 'bench',
      operation: 'CREATE',
      object: {
        metadata: { name: `p${uid}` },
        spec: { containers: [{ name: 'app', image: `${registry.host}/${img.repo}@${img.digest}` }] },
      },
    },
  });
  const app0 = images.filter((i) => i.repo === 'bench/app0');
  for (const [label, fresh] of [
    ['admission review, cold cache', true],
    ['admission review, warm cache', false],
  ] as const) {
    const reviewer = new AdmissionReviewer({
      policies: () => [policy],
      trust: fresh ? newTrust() : trust,
      registrySource: () => anonymousSource,
      events: { record: () => undefined },
      log: silentLogger(),
      deadlineMs: 8_000,
    });
    const times: number[] = [];
    for (const [i, img] of app0.entries()) {
      const t = performance.now();
      const r = await reviewer.review(reviewFor(i, img), 'enforce');
      times.push(performance.now() - t);
      if (!r.response.allowed) throw new Error(JSON.stringify(r.response.status));
    }
    console.log(`${label} (${app0.length} pods): ${summary(times)}`);
    const key = fresh ? 'admission_cold' : 'admission_warm';
    figures[`${key}_p50_ms`] = Number(percentile(times, 50).toFixed(2));
    figures[`${key}_p99_ms`] = Number(percentile(times, 99).toFixed(2));
  }
  await notaryPasses(registry, pusher, client, metrics, figures);
  const budgeted = new RegistryClient({ hosts: [{ host: registry.host, insecure: true }], registry: metrics });
  trust = newTrust(budgeted);
  await pass('cold, with the default request budget (600 requests/min per registry)', 'cold_budgeted');
  await budgeted.close();
  const mem = process.memoryUsage();
  console.log(
    `memory of this bench process after the run: rss ${(mem.rss / 2 ** 20).toFixed(0)} MiB, heap ${(mem.heapUsed / 2 ** 20).toFixed(0)} MiB`,
  );
  await client.close();
  await registry.stop();
  console.log(JSON.stringify({ bench: 'trust', images: IMAGES, ...figures, rss_mib: Math.round(mem.rss / 2 ** 20) }));
}

/**
 * Notary Project signatures (notation-go's, JWS and COSE alternately, made by test/notation's
 * notation-sign) under a trust policy alone: what a cold and a warm verification cost.
 */
async function notaryPasses(
  registry: Awaited<ReturnType<typeof startRegistry>>,
  pusher: OciPusher,
  client: RegistryClient,
  metrics: ReturnType<typeof createRegistry>,
  figures: Record<string, number>,
): Promise<void> {
  const count = Math.max(10, Math.round(IMAGES / 4));
  const notary = await NotaryFixtures.create();
  const images: { repo: string; digest: string }[] = [];
  const started = Date.now();
  for (let i = 0; i < count; i++) {
    const repo = `bench/notary${i % 5}`;
    const image = await pusher.pushImage(repo, undefined, { seed: `notary-${i}` });
    await notary.sign(`${registry.host}/${repo}@${image.digest}`, 'leaf', { envelope: i % 2 === 0 ? 'jws' : 'cose' });
    images.push({ repo, digest: image.digest });
  }
  console.log(`${count} Notary-signed images pushed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const trust = new ImageTrust({
    client,
    secrets: () => Promise.resolve({ 'ca.pem': notary.rootPem }),
    trustedRoot: new TrustedRootSource({ file: '/nonexistent' }),
  });
  const authorities = await trust.authorities('bench', {
    notation: [
      { trustStores: [{ secretRef: { name: 'notary' } }], trustedIdentities: ['x509.subject: C=US, ST=WA, O=Acme'] },
    ],
  });
  for (const [label, key] of [
    ['Notary, cold cache', 'notary_cold'],
    ['Notary, warm cache', 'notary_warm'],
  ] as const) {
    const times: number[] = [];
    const before = await requestsByKind(metrics);
    for (const img of images) {
      const t = performance.now();
      const v = await trust.signature({
        image: parseReference(`${registry.host}/${img.repo}`),
        digest: img.digest,
        source: anonymousSource,
        authorities,
      });
      times.push(performance.now() - t);
      if (!v.verified) throw new Error(`${img.repo}@${img.digest}: ${v.message}`);
    }
    const after = await requestsByKind(metrics);
    const requests = [...after.keys()].reduce((sum, k) => sum + (after.get(k) ?? 0) - (before.get(k) ?? 0), 0);
    console.log(`${label}: ${count} verifications, all verified; ${summary(times)}`);
    console.log(`  registry requests per verification: ${perImage(after, before, count)}`);
    figures[`${key}_requests_per_verification`] = Number((requests / count).toFixed(2));
    figures[`${key}_p50_ms`] = Number(percentile(times, 50).toFixed(2));
    figures[`${key}_p99_ms`] = Number(percentile(times, 99).toFixed(2));
  }
}

await main();
