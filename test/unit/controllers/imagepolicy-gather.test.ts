// What the ImagePolicy reconciler gathers, without I/O: the shared tag lists, the slim caches
// of workloads and pods, and the containers observed from them.
import assert from 'node:assert/strict';
import { observeContainers, pinRecord } from '../../../src/controllers/imagepolicy/observe.ts';
import { TagLists } from '../../../src/controllers/tag-lists.ts';
import { anonymousSource } from '../../../src/registry/auth/credentials.ts';
import { parseReference } from '../../../src/registry/reference.ts';
import { pinAnnotation } from '../../../src/rollout/pin.ts';
import {
  ownerWorkload,
  podChanged,
  slimPod,
  slimWorkload,
  type Pod,
  type Workload,
} from '../../../src/rollout/workloads.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

describe('TagLists', () => {
  function lists(now: { t: number }) {
    const calls: string[] = [];
    const woken: string[][] = [];
    const source = {
      tags: (registry: string, repository: string): Promise<string[]> => {
        calls.push(`${registry}/${repository}`);
        if (repository.endsWith('broken')) return Promise.reject(new Error('registry down'));
        return Promise.resolve(['1.0', '1.1']);
      },
    };
    return {
      calls,
      woken,
      tags: new TagLists(
        source,
        (keys) => woken.push(keys),
        () => now.t,
      ),
    };
  }
  const ref = parseReference('ghcr.io/acme/web');

  it('lists a repository once per interval, however many policies follow it', async () => {
    const now = { t: 0 };
    const { calls, tags } = lists(now);
    await tags.list('ns/a', ref, anonymousSource, 60_000);
    await tags.list('ns/b', ref, anonymousSource, 60_000);
    assert.equal(calls.length, 1);
    now.t = 61_000;
    assert.deepEqual((await tags.list('ns/a', ref, anonymousSource, 60_000)).tags, ['1.0', '1.1']);
    assert.equal(calls.length, 2);
  });

  it('lists again at once after a push to the repository, waking its followers only', async () => {
    const { calls, woken, tags } = lists({ t: 0 });
    await tags.list('ns/a', ref, anonymousSource, 60_000);
    await tags.list('ns/other', parseReference('ghcr.io/acme/api'), anonymousSource, 60_000);
    assert.equal(tags.pushed({ registry: 'ghcr.io', repository: 'acme/web', tag: '1.2' }), 1);
    assert.deepEqual(woken, [['ns/a']]);
    await tags.list('ns/a', ref, anonymousSource, 60_000);
    assert.equal(calls.filter((c) => c === 'ghcr.io/acme/web').length, 2);
    tags.drop('ns/a');
    assert.equal(tags.pushed({ repository: 'acme/web' }), 0, 'a dropped follower is not woken');
  });

  it('holds a failure briefly, so that many followers do not retry at once', async () => {
    const now = { t: 0 };
    const { calls, tags } = lists(now);
    const broken = parseReference('ghcr.io/acme/broken');
    await assert.rejects(tags.list('ns/a', broken, anonymousSource, 600_000), /registry down/);
    await assert.rejects(tags.list('ns/b', broken, anonymousSource, 600_000), /registry down/);
    assert.equal(calls.length, 1);
    now.t = 31_000;
    await assert.rejects(tags.list('ns/a', broken, anonymousSource, 600_000));
    assert.equal(calls.length, 2, 'tried again after 30 s, not after the 10 min interval');
  });
});

describe('slim caches of workloads and pods', () => {
  const deployment = {
    apiVersion: 'apps/v1',
    metadata: {
      name: 'web',
      namespace: 'shop',
      resourceVersion: '7',
      generation: 3,
      labels: { app: 'web' },
      annotations: {
        'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(5000),
        'patchline.dev/pinned.app': '{}',
      },
      managedFields: [
        {
          manager: 'argocd-controller',
          operation: 'Apply',
          fieldsV1: {
            'f:spec': {
              'f:replicas': {},
              'f:template': {
                'f:spec': { 'f:containers': { 'k:{"name":"app"}': { '.': {}, 'f:image': {}, 'f:env': {} } } },
              },
            },
          },
        },
        {
          manager: 'kube-controller-manager',
          operation: 'Update',
          subresource: 'status',
          fieldsV1: { 'f:status': {} },
        },
      ],
    },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'web' } },
      strategy: { type: 'RollingUpdate' },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [{ name: 'app', image: 'ghcr.io/acme/web:1.0', env: [{ name: 'SECRET_LOOKING', value: 'v' }] }],
        },
      },
    },
    status: { observedGeneration: 3, replicas: 3, updatedReplicas: 3, availableReplicas: 3 },
  };

  it('keeps of a workload only what is read, with its kind, and who owns each image field', () => {
    const w = slimWorkload('Deployment')(deployment);
    assert.equal(w.kind, 'Deployment');
    assert.deepEqual(w.metadata.annotations, { 'patchline.dev/pinned.app': '{}' });
    assert.deepEqual(w.spec?.template?.spec?.containers, [{ name: 'app', image: 'ghcr.io/acme/web:1.0' }]);
    assert.deepEqual(w.metadata.managedFields, [
      {
        manager: 'argocd-controller',
        operation: 'Apply',
        fieldsV1: {
          'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"app"}': { 'f:image': {} } } } } },
        },
      },
    ]);
    assert.equal(w.metadata.resourceVersion, '7');
    assert.ok(JSON.stringify(w).length < JSON.stringify(deployment).length / 3);
  });

  it('keeps of a pod its labels, phase and each container image ID and readiness; changes are judged on those', () => {
    const raw = {
      metadata: { name: 'web-1', namespace: 'shop', resourceVersion: '1', labels: { app: 'web' } },
      spec: { containers: [{ name: 'app', image: 'x' }] },
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True', lastProbeTime: 'a' }],
        containerStatuses: [{ name: 'app', imageID: `ghcr.io/acme/web@${D1}`, ready: true, restartCount: 0 }],
      },
    };
    const p = slimPod(raw);
    assert.deepEqual(p.status, {
      phase: 'Running',
      containerStatuses: [{ name: 'app', imageID: `ghcr.io/acme/web@${D1}`, ready: true }],
    });
    const probedRaw = {
      ...raw,
      metadata: { ...raw.metadata, resourceVersion: '2' },
      status: { ...raw.status, conditions: [{ type: 'Ready', status: 'True', lastProbeTime: 'b' }] },
    };
    const probed = slimPod(probedRaw);
    assert.equal(podChanged(p, probed), false, 'a condition timestamp is not a change');
    const movedRaw = {
      ...raw,
      status: { ...raw.status, containerStatuses: [{ name: 'app', imageID: `ghcr.io/acme/web@${D2}`, ready: true }] },
    };
    const moved = slimPod(movedRaw);
    assert.equal(podChanged(p, moved), true);
  });
});

describe('observeContainers', () => {
  const workload = (annotations: Record<string, string> = {}): Workload => ({
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop', generation: 2, annotations, labels: { app: 'web' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: { spec: { containers: [{ name: 'app', image: `ghcr.io/acme/web@${D2}` }] } },
    },
    status: { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 },
  });
  const pod = (name: string, owner: string, digest: string): Pod => ({
    owner,
    metadata: { name, namespace: 'shop' },
    status: {
      phase: 'Running',
      containerStatuses: [{ name: 'app', imageID: `ghcr.io/acme/web@${digest}`, ready: true }],
    },
  });

  it('reads what the workload pods run, its rollout, and the pin record', () => {
    const pin = JSON.stringify({ policy: 'shop/web', image: `ghcr.io/acme/web@${D2}`, reverts: 1 });
    const w = workload({ [pinAnnotation('app')]: pin });
    const pods = [pod('a', 'Deployment/web', D2), pod('b', 'Deployment/web', D2), pod('other', 'Deployment/api', D1)];
    const [o] = observeContainers(
      [{ kind: 'Deployment', name: 'web', container: 'app', image: `ghcr.io/acme/web@${D2}` }],
      [w],
      pods,
    );
    assert.deepEqual(o?.running, { digests: [{ digest: D2, pods: 2, ready: 2 }], unknown: 0 });
    assert.equal(o?.progress.state, 'Complete');
    assert.equal(o?.pinnedImage, `ghcr.io/acme/web@${D2}`);
    assert.equal(o?.pinnedReverts, 1);
    assert.deepEqual(pinRecord(workload({ [pinAnnotation('app')]: 'not json' }), 'app'), undefined);
  });

  it("finds a pod's workload from its controller reference", () => {
    const ref = (kind: string, name: string) => [{ apiVersion: 'apps/v1', kind, name, uid: 'u', controller: true }];
    assert.equal(
      ownerWorkload({ ownerReferences: ref('ReplicaSet', 'web-7d9f8b'), labels: { 'pod-template-hash': '7d9f8b' } }),
      'Deployment/web',
    );
    assert.equal(ownerWorkload({ ownerReferences: ref('StatefulSet', 'db') }), 'StatefulSet/db');
    assert.equal(ownerWorkload({ ownerReferences: ref('DaemonSet', 'agent') }), 'DaemonSet/agent');
    assert.equal(
      ownerWorkload({ ownerReferences: ref('ReplicaSet', 'bare-rs') }),
      undefined,
      'a ReplicaSet of no Deployment',
    );
    assert.equal(ownerWorkload({ ownerReferences: ref('Job', 'build') }), undefined);
    assert.equal(ownerWorkload({}), undefined);
  });
});
