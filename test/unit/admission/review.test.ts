import assert from 'node:assert/strict';
import type { ImagePolicy } from '../../../src/api/v1alpha1/index.ts';
import {
  AdmissionFormatError,
  admissionResponse,
  imagesOf,
  introducedImages,
  judgeImages,
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
        { container: 'containers[c0]', image: 'app:1' },
        { container: 'ephemeralContainers[dbg]', image: 'busybox' },
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

  it('holds images to the union of approved registries, and pods to digests', () => {
    const policies = [
      policy({ registries: ['registry.acme.io'] }),
      policy({ registries: ['ghcr.io/acme'], requireDigest: false }),
    ];
    const images = [
      { container: 'containers[a]', image: `registry.acme.io/shop/web@${digest}` },
      { container: 'containers[b]', image: 'ghcr.io/acme/tool:1' },
      { container: 'containers[c]', image: 'ghcr.io/acme-evil/tool:1' },
      { container: 'containers[d]', image: 'not a reference' },
    ];
    const pod = judgeImages('Pod', images, policies);
    assert.deepEqual(
      pod.findings.map((f) => `${f.container} ${f.rule}`),
      ['containers[b] digest', 'containers[c] registry', 'containers[c] digest', 'containers[d] registry'],
    );
    const deployment = judgeImages('Deployment', images, policies);
    assert.deepEqual(
      deployment.findings.map((f) => `${f.container} ${f.rule}`),
      ['containers[c] registry', 'containers[d] registry'],
    );
    assert.deepEqual(judgeImages('Pod', images, []).findings, []);
  });

  it('asks for signature checks of the repositories that policies with verify.signature follow', () => {
    const signing = policy({ signature: { keys: [{ secretRef: { name: 'cosign' } }] }, requireDigest: false });
    const r = judgeImages(
      'Pod',
      [
        { container: 'containers[web]', image: `registry.acme.io/shop/web@${digest}` },
        { container: 'containers[side]', image: 'registry.acme.io/shop/sidecar:1' },
      ],
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
