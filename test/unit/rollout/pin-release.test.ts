// Deleting an ImagePolicy releases its pins: the apply that does it keeps every field the
// shared field manager `patchline` owns except that policy's annotations.
import assert from 'node:assert/strict';
import { pinAnnotation, pinPolicy, releaseBody, type PinnedWorkload } from '../../../src/rollout/pin.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const pin = (policy: string, image: string): string => JSON.stringify({ policy, image });

const workload: PinnedWorkload = {
  kind: 'Deployment',
  namespace: 'shop',
  name: 'web',
  annotations: {
    [pinAnnotation('app')]: pin('shop/web', `registry.example/shop/web@${D1}`),
    [pinAnnotation('proxy')]: pin('shop/proxy', `registry.example/mesh/proxy@${D2}`),
  },
  containers: [
    { name: 'app', image: `registry.example/shop/web@${D1}` },
    { name: 'proxy', image: `registry.example/mesh/proxy@${D2}` },
    { name: 'unmanaged', image: 'busybox:1.36' },
  ],
};

describe("releasing a deleted policy's pins", () => {
  it("drops its annotation, keeps every pinned image and the other policy's pin", () => {
    assert.deepEqual(releaseBody(workload, 'shop/web'), {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: 'web',
        namespace: 'shop',
        annotations: { [pinAnnotation('proxy')]: pin('shop/proxy', `registry.example/mesh/proxy@${D2}`) },
      },
      spec: {
        template: {
          spec: {
            containers: [
              { name: 'app', image: `registry.example/shop/web@${D1}` },
              { name: 'proxy', image: `registry.example/mesh/proxy@${D2}` },
            ],
          },
        },
      },
    });
  });

  it('does nothing on a workload the policy never pinned', () => {
    assert.equal(releaseBody(workload, 'shop/other'), undefined);
    assert.equal(releaseBody({ ...workload, annotations: {} }, 'shop/web'), undefined);
  });

  it('reads the policy of a pin annotation, and nothing from a broken one', () => {
    assert.equal(pinPolicy(pin('shop/web', 'x')), 'shop/web');
    assert.equal(pinPolicy('{not json'), undefined);
    assert.equal(pinPolicy(undefined), undefined);
  });
});
