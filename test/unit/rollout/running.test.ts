import assert from 'node:assert/strict';
import {
  digestOfImageID,
  isOfRepository,
  repositoryOf,
  runningDigests,
  type PodLike,
} from '../../../src/rollout/running.ts';
import { parseReference } from '../../../src/registry/reference.ts';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

function pod(
  name: string,
  statuses: { name: string; imageID?: string; ready?: boolean }[],
  phase = 'Running',
): PodLike {
  return { metadata: { name }, status: { phase, containerStatuses: statuses } };
}

describe('what containers run', () => {
  it('reads the digest of an imageID in the forms runtimes report', () => {
    assert.equal(digestOfImageID(`registry.example/shop/web@${A}`), A);
    assert.equal(digestOfImageID(`docker-pullable://registry.example/shop/web@${A}`), A);
    assert.equal(digestOfImageID(A), undefined, 'a bare id is the config id, not the manifest digest');
    assert.equal(digestOfImageID('registry.example/shop/web@sha256:short'), undefined);
    assert.equal(digestOfImageID(''), undefined);
    assert.equal(digestOfImageID(undefined), undefined);
  });

  it('matches a container image to the followed repository, normalising Docker Hub names', () => {
    assert.equal(repositoryOf('nginx:1.27'), 'docker.io/library/nginx');
    assert.ok(isOfRepository('docker.io/library/nginx@' + A, parseReference('nginx')));
    assert.ok(isOfRepository('registry.example/shop/web:1.4', parseReference('registry.example/shop/web')));
    assert.ok(!isOfRepository('registry.example/shop/web-worker:1.4', parseReference('registry.example/shop/web')));
    assert.ok(!isOfRepository('Not An Image', parseReference('registry.example/shop/web')));
  });

  it('counts the digests the running pods report per container, most common first', () => {
    const running = runningDigests([
      pod('p1', [
        { name: 'web', imageID: `r/web@${A}`, ready: true },
        { name: 'sidecar', imageID: `r/side@${B}`, ready: true },
      ]),
      pod('p2', [{ name: 'web', imageID: `r/web@${B}`, ready: false }]),
      pod('p3', [{ name: 'web', imageID: `r/web@${B}`, ready: true }]),
      pod('p4', [{ name: 'web', imageID: '' }]),
      pod('p5', [{ name: 'web', imageID: `r/web@${A}` }], 'Pending'),
      {
        metadata: { name: 'p6', deletionTimestamp: '2026-11-22T10:00:00Z' },
        status: { phase: 'Running', containerStatuses: [{ name: 'web', imageID: `r/web@${A}` }] },
      },
    ]);
    assert.deepEqual(running.get('web'), {
      digests: [
        { digest: B, pods: 2, ready: 1 },
        { digest: A, pods: 1, ready: 1 },
      ],
      unknown: 1,
    });
    assert.deepEqual(running.get('sidecar'), { digests: [{ digest: B, pods: 1, ready: 1 }], unknown: 0 });
  });
});
