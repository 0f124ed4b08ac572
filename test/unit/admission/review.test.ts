import assert from 'node:assert/strict';
import type { ImagePolicy } from '../../../src/api/v1alpha1/index.ts';
import {
  AdmissionFormatError,
  admissionResponse,
  describeFinding,
  imagesOf,
  introducedImages,
  judgeImages,
  owningWorkload,
  parseAdmissionReview,
} from '../../../src/admission/review.ts';

const digest = `sha256:${'c'.repeat(64)}`;
const podSpec = (images: string[], init: string[] = []) => ({
  initContainers: init.map((image, i) => ({ name: `init${i}`, image })),
  containers: images.map((image, i) => ({ name: `c${i}`, image })),
});
const review = (kind: string, object: unknown, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'u-1',
    kind: { group: kind === 'Pod' ? '' : 'apps', version: 'v1', kind },
    namespace: 'shop',
    operation: 'CREATE',
    userInfo: { username: 'alice' },
    object,
    ...extra,
  },
});
const policy = (
  verify: NonNullable<ImagePolicy['spec']['verify']>,
  image = 'registry.acme.io/shop/web',
): ImagePolicy => ({
  apiVersion: 'patchline.dev/v1alpha1',
  kind: 'ImagePolicy',
  metadata: { name: 'web', namespace: 'shop' },
  spec: { image, follow: { tag: '1' }, workloads: { names: ['web'] }, verify },
});

describe('admission review', () => {
  it('reads an AdmissionReview v1 and refuses what is not one', () => {
    const r = parseAdmissionReview(
      review('Pod', { metadata: { generateName: 'web-' }, spec: podSpec(['a']) }, { dryRun: true }),
    );
    assert.equal(r.uid, 'u-1');
    assert.equal(r.name, 'web-*');
    assert.equal(r.dryRun, true);
    assert.equal(r.username, 'alice');
    for (const bad of [
      null,
      {},
      { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview' },
      { ...review('Pod', {}), request: { kind: {} } },
    ])
      assert.throws(() => parseAdmissionReview(bad), AdmissionFormatError);
  });

  it('finds the images of pods and of every pod-owning kind, init and ephemeral containers included', () => {
    const template = { template: { spec: podSpec(['app:1'], ['init:1']) } };
    assert.deepEqual(
      imagesOf('Pod', { spec: { ...podSpec(['app:1']), ephemeralContainers: [{ name: 'dbg', image: 'busybox' }] } }),
      [
        { container: 'containers[c0]', name: 'c0', image: 'app:1' },
        { container: 'ephemeralContainers[dbg]', name: 'dbg', image: 'busybox' },
      ],
    );
    for (const kind of ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'])
      assert.deepEqual(
        imagesOf(kind, { spec: template })?.map((i) => i.image),
        ['init:1', 'app:1'],
        kind,
      );
    assert.deepEqual(
      imagesOf('CronJob', { spec: { jobTemplate: { spec: template } } })?.map((i) => i.image),
      ['init:1', 'app:1'],
    );
    assert.equal(imagesOf('ConfigMap', {}), undefined);
    assert.deepEqual(imagesOf('Deployment', { spec: {} }), []);
  });

  it('judges on UPDATE only the images the request introduces', () => {
    const old = { spec: { template: { spec: podSpec(['bad.io/x:1', 'ok:1']) } } };
    const now = { spec: { template: { spec: podSpec(['bad.io/x:1', 'ok:2']) } } };
    const r = parseAdmissionReview(review('Deployment', now, { operation: 'UPDATE', oldObject: old }));
    assert.deepEqual(
      introducedImages(r).map((i) => i.image),
      ['ok:2'],
    );
  });

  const img = (name: string, image: string) => ({ container: `containers[${name}]`, name, image });

  it('in scope "all": holds every image to the union of approved registries, and pods to digests', () => {
    const policies = [
      policy({ registries: ['registry.acme.io'] }),
      policy({ registries: ['ghcr.io/acme'], requireDigest: false }),
    ];
    const images = [
      img('a', `registry.acme.io/shop/web@${digest}`),
      img('b', 'ghcr.io/acme/tool:1'),
      img('c', 'ghcr.io/acme-evil/tool:1'),
      img('d', 'not a reference'),
    ];
    const pod = judgeImages('Pod', images, policies, { scope: 'all' });
    assert.deepEqual(
      pod.findings.map((f) => `${f.container} ${f.rule}`),
      ['containers[b] digest', 'containers[c] registry', 'containers[c] digest', 'containers[d] registry'],
    );
    const deployment = judgeImages('Deployment', images, policies, { scope: 'all' });
    assert.deepEqual(
      deployment.findings.map((f) => `${f.container} ${f.rule}`),
      ['containers[c] registry', 'containers[d] registry'],
    );
    assert.deepEqual(judgeImages('Pod', images, [], { scope: 'all' }).findings, []);
  });

  it('by default judges each container by the policies that govern it: an injected sidecar or an ungoverned workload is left alone', () => {
    const web = policy({ registries: ['registry.acme.io'] });
    web.spec.workloads = { names: ['web'], containers: ['app'] };
    const tool = policy({ registries: ['ghcr.io/acme'], requireDigest: false }, 'ghcr.io/acme/tool');
    tool.metadata = { name: 'tool', namespace: 'shop' };
    const owner = { kind: 'Deployment' as const, metadata: { name: 'web' } };
    // A Pod of Deployment web: its app container (selected by name) and an injected sidecar.
    const pod = judgeImages(
      'Pod',
      [
        img('app', 'docker.io/evil/app:1'),
        img('istio-proxy', 'docker.io/istio/proxyv2:1.22'),
        img('t', 'ghcr.io/acme/tool:2'),
      ],
      [web, tool],
      { owner },
    );
    assert.deepEqual(
      pod.findings.map(describeFinding),
      [
        'containers[app] docker.io/evil/app:1: registry (ImagePolicy web): not from an approved registry (registry.acme.io)',
        'containers[app] docker.io/evil/app:1: digest (ImagePolicy web): not pinned by digest',
      ],
      'the sidecar is not judged; the tool image is governed by a policy that does not ask for digests',
    );
    // The same images in another Deployment, which no policy selects: nothing to say.
    const other = judgeImages('Deployment', [img('app', 'docker.io/evil/app:1')], [web, tool], {
      owner: { kind: 'Deployment', metadata: { name: 'batch' } },
    });
    assert.deepEqual(other.findings, []);
    // An image of a followed repository is governed wherever it runs (a CronJob here).
    const cron = judgeImages(
      'CronJob',
      [img('t', 'ghcr.io/acme/tool:2'), img('x', 'docker.io/library/busybox:1')],
      [{ ...tool, spec: { ...tool.spec, verify: { registries: ['registry.acme.io'] } } }],
    );
    assert.deepEqual(cron.findings.map(describeFinding), [
      'containers[t] ghcr.io/acme/tool:2: registry (ImagePolicy tool): not from an approved registry (registry.acme.io)',
    ]);
  });

  it('finds the workload a Pod or ReplicaSet belongs to, for policies that select containers by name', () => {
    const request = (kind: string, metadata: Record<string, unknown>) =>
      parseAdmissionReview(review(kind, { metadata, spec: {} }));
    const cached = { kind: 'Deployment' as const, metadata: { name: 'web', labels: { tier: 'front' } } };
    const lookup = (kind: string, name: string) => (kind === 'Deployment' && name === 'web' ? cached : undefined);
    const rsOwner = [{ kind: 'ReplicaSet', name: 'web-5d8f7c', controller: true }];
    assert.equal(
      owningWorkload(
        request('Pod', { name: 'web-5d8f7c-x', labels: { 'pod-template-hash': '5d8f7c' }, ownerReferences: rsOwner }),
        lookup,
      ),
      cached,
    );
    assert.equal(
      owningWorkload(
        request('Pod', { name: 'p', labels: { 'pod-template-hash': 'other' }, ownerReferences: rsOwner }),
        lookup,
      ),
      undefined,
    );
    assert.deepEqual(
      owningWorkload(
        request('Pod', { name: 'db-0', ownerReferences: [{ kind: 'StatefulSet', name: 'db', controller: true }] }),
        lookup,
      ),
      { kind: 'StatefulSet', metadata: { name: 'db' } },
    );
    assert.equal(
      owningWorkload(
        request('ReplicaSet', {
          name: 'web-1',
          ownerReferences: [{ kind: 'Deployment', name: 'web', controller: true }],
        }),
        lookup,
      ),
      cached,
    );
    assert.deepEqual(owningWorkload(request('DaemonSet', { name: 'agent', labels: { a: 'b' } }), lookup), {
      kind: 'DaemonSet',
      metadata: { name: 'agent', labels: { a: 'b' } },
    });
    assert.equal(owningWorkload(request('Pod', { name: 'bare' }), lookup), undefined);
    assert.equal(
      owningWorkload(request('Job', { name: 'j', ownerReferences: [{ kind: 'CronJob', name: 'c' }] }), lookup),
      undefined,
    );
  });

  it('asks for signature checks of the repositories that policies with verify.signature follow', () => {
    const signing = policy({ signature: { keys: [{ secretRef: { name: 'cosign' } }] }, requireDigest: false });
    const r = judgeImages(
      'Pod',
      [img('web', `registry.acme.io/shop/web@${digest}`), img('side', 'registry.acme.io/shop/sidecar:1')],
      [signing],
    );
    assert.deepEqual(
      r.signatures.map((s) => [s.container, s.digest, s.policies.length]),
      [['containers[web]', digest, 1]],
    );
  });

  it('answers allowed, warned, or refused with a 403 naming the findings', () => {
    assert.deepEqual(admissionResponse('u', 'enforce', []).response, { uid: 'u', allowed: true });
    const finding = {
      container: 'containers[a]',
      image: 'x:1',
      rule: 'digest' as const,
      message: 'not pinned by digest',
    };
    const warned = admissionResponse('u', 'warn', [finding]).response;
    assert.equal(warned.allowed, true);
    assert.deepEqual(warned.warnings, ['patchline: containers[a] x:1: digest: not pinned by digest']);
    const refused = admissionResponse('u', 'enforce', [finding]).response;
    assert.equal(refused.allowed, false);
    assert.deepEqual(refused.status, {
      code: 403,
      reason: 'Forbidden',
      message: 'patchline: containers[a] x:1: digest: not pinned by digest',
    });
  });
});
