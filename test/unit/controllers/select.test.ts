import assert from 'node:assert/strict';
import type { ImagePolicy } from '../../../src/api/v1alpha1/index.ts';
import {
  containerUser,
  matchesSelector,
  selectContainers,
  violationsOf,
  type WorkloadObject,
} from '../../../src/controllers/imagepolicy/select.ts';

const REPO = 'registry.example/shop/web';
const D = `sha256:${'d'.repeat(64)}`;

function policy(workloads: ImagePolicy['spec']['workloads'], verify?: ImagePolicy['spec']['verify']): ImagePolicy {
  return {
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { image: REPO, follow: { tag: '1.4' }, workloads, ...(verify ? { verify } : {}) },
  };
}

function workload(
  kind: WorkloadObject['kind'],
  name: string,
  labels: Record<string, string>,
  containers: [string, string][],
): WorkloadObject {
  return {
    kind,
    metadata: { name, labels },
    spec: { template: { spec: { containers: containers.map(([n, image]) => ({ name: n, image })) } } },
  };
}

const all = [
  workload('Deployment', 'web', { app: 'web', tier: 'front' }, [
    ['web', `${REPO}:1.4`],
    ['proxy', 'docker.io/envoyproxy/envoy:v1.31'],
  ]),
  workload('StatefulSet', 'web-cache', { app: 'web', tier: 'cache' }, [['web', `${REPO}@${D}`]]),
  workload('DaemonSet', 'agent', { app: 'agent' }, [['agent', 'registry.example/ops/agent:2']]),
];

describe('ImagePolicy: selecting workloads and reporting violations', () => {
  it('matches label selectors as the API server does', () => {
    const labels = { app: 'web', tier: 'front' };
    assert.ok(matchesSelector({ matchLabels: { app: 'web' } }, labels));
    assert.ok(!matchesSelector({ matchLabels: { app: 'web', tier: 'cache' } }, labels));
    assert.ok(
      matchesSelector({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] }, labels),
    );
    assert.ok(!matchesSelector({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] }, labels));
    assert.ok(
      matchesSelector({ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, labels),
      'NotIn holds for a missing label',
    );
    assert.ok(matchesSelector({ matchExpressions: [{ key: 'app', operator: 'Exists' }] }, labels));
    assert.ok(!matchesSelector({ matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, labels));
    assert.ok(!matchesSelector({ matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] }, labels));
  });

  it('selects the containers of the followed repository in the selected workloads', () => {
    assert.deepEqual(
      selectContainers(policy({ selector: { matchLabels: { app: 'web' } } }), all).map(
        (c) => `${c.kind}/${c.name}/${c.container}`,
      ),
      ['Deployment/web/web', 'StatefulSet/web-cache/web'],
      'the envoy sidecar is not of the followed repository',
    );
    assert.deepEqual(
      selectContainers(policy({ selector: { matchLabels: { app: 'web' } }, kinds: ['StatefulSet'] }), all).map(
        (c) => c.name,
      ),
      ['web-cache'],
    );
    assert.deepEqual(
      selectContainers(policy({ names: ['web'] }), all).map((c) => c.container),
      ['web'],
    );
    assert.deepEqual(
      selectContainers(policy({ names: ['web'], containers: ['proxy'] }), all).map((c) => c.container),
      ['proxy'],
      'named containers are taken as named',
    );
    assert.deepEqual(selectContainers(policy({}), all), [], 'no selector and no names selects nothing');
  });

  it('reports containers from unapproved registries, not pinned, or too old', () => {
    const selected = selectContainers(policy({ names: ['web', 'web-cache'], containers: ['web', 'proxy'] }), all);
    const v = violationsOf(
      policy({ names: ['web'] }, { registries: ['registry.example/shop'], requireDigest: true, maxAge: '720h' }),
      selected,
      (image) => (image.includes('@') ? new Date('2026-01-01T00:00:00Z') : new Date('2026-11-20T00:00:00Z')),
      new Date('2026-11-22T00:00:00Z'),
    );
    assert.deepEqual(
      v.map((x) => [x.workload, x.container, x.rule]),
      [
        ['Deployment/web', 'proxy', 'registry'],
        ['Deployment/web', 'proxy', 'digest'],
        ['Deployment/web', 'web', 'digest'],
        ['StatefulSet/web-cache', 'web', 'age'],
      ],
    );
  });

  it('runAsNonRoot: reports containers running as root or as a user not allowed, with where the user comes from', () => {
    const front: WorkloadObject = {
      kind: 'Deployment',
      metadata: { name: 'front' },
      spec: {
        template: {
          spec: {
            securityContext: { runAsUser: 1000 },
            containers: [
              { name: 'web', image: `${REPO}@${D}` },
              { name: 'sidecar', image: `${REPO}@${D}`, securityContext: { runAsUser: 0 } },
            ],
          },
        },
      },
    };
    const back: WorkloadObject = {
      kind: 'StatefulSet',
      metadata: { name: 'back' },
      spec: { template: { spec: { containers: [{ name: 'web', image: `${REPO}:1.4` }] } } },
    };
    const p = policy({ names: ['front', 'back'], containers: ['web', 'sidecar'] }, { runAsNonRoot: true });
    const selected = selectContainers(p, [front, back]);
    assert.deepEqual(
      selected.map((c) => [c.name, c.container, c.runAs]),
      [
        ['front', 'sidecar', { pod: { runAsUser: 1000 }, own: { runAsUser: 0 } }],
        ['front', 'web', { pod: { runAsUser: 1000 } }],
        ['back', 'web', undefined],
      ],
    );
    // The image config says root (""), for every image here.
    const v = violationsOf(p, selected, undefined, new Date(), () => '');
    assert.deepEqual(
      v.map((x) => [x.workload, x.container, x.rule, x.message]),
      [
        ['Deployment/front', 'sidecar', 'user', 'runs as root (container securityContext)'],
        ['StatefulSet/back', 'web', 'user', 'runs as root (image)'],
      ],
    );
    // Not read: nothing said, unless the securityContext settles it.
    assert.equal(containerUser(selected[2]!, undefined), undefined);
    assert.equal(containerUser(selected[1]!, undefined)?.uid, 1000);
    const allowed = policy({ names: ['front'], containers: ['web'] }, { runAsNonRoot: true, allowedUserIds: [65532] });
    assert.deepEqual(
      violationsOf(allowed, selectContainers(allowed, [front]), undefined, new Date(), () => '65532').map(
        (x) => x.message,
      ),
      ['runs as uid 1000 (pod securityContext), not one of 65532'],
    );
    assert.deepEqual(
      violationsOf(policy({ names: ['back'] }), selectContainers(p, [back]), undefined, new Date(), () => ''),
      [],
    );
  });
});
