// Pinning a container's image with server-side apply on the real API server: Patchline owns
// the image field and its annotation, nothing else; a manager that sets the image back is
// visible in managedFields.
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { FIELD_MANAGER, applyPin, imageFieldOwner, keptPins, pinAnnotation } from '../../src/rollout/pin.ts';
import { env, kubectl, newNamespace } from './support/env.ts';

interface Deployment {
  metadata: {
    annotations?: Record<string, string>;
    managedFields?: { manager?: string; fieldsV1?: unknown }[];
    generation?: number;
  };
  spec: {
    replicas: number;
    template: {
      metadata: { labels: Record<string, string> };
      spec: { containers: { name: string; image: string; env?: unknown[] }[] };
    };
  };
}

const D1 = `sha256:${'1'.repeat(64)}`;

describe('pinning an image by server-side apply', () => {
  it('changes only the pinned container image, owned by the patchline field manager', async () => {
    const ns = newNamespace('pin');
    kubectl(['apply', '--server-side', '--field-manager=gitops', '-n', ns, '-f', '-'], {
      input: stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', labels: { app: 'web' } },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: {
              containers: [
                { name: 'web', image: 'registry.example/shop/web:1.4', env: [{ name: 'MODE', value: 'prod' }] },
                { name: 'proxy', image: 'registry.example/shop/proxy:2' },
              ],
            },
          },
        },
      }),
    });
    const pinned = `registry.example/shop/web@${D1}`;
    await applyPin(env().admin, {
      kind: 'Deployment',
      namespace: ns,
      name: 'web',
      container: 'web',
      image: pinned,
      policy: `${ns}/web`,
      previousImage: 'registry.example/shop/web:1.4',
    });
    const get = (): Deployment =>
      JSON.parse(
        kubectl(['get', 'deployment', 'web', '-n', ns, '-o', 'json', '--show-managed-fields']).stdout,
      ) as Deployment;
    const d = get();
    const containers = d.spec.template.spec.containers;
    assert.deepEqual(
      containers.map((c) => [c.name, c.image]),
      [
        ['web', pinned],
        ['proxy', 'registry.example/shop/proxy:2'],
      ],
    );
    assert.deepEqual(containers[0]!.env, [{ name: 'MODE', value: 'prod' }], 'other fields untouched');
    assert.equal(d.spec.replicas, 2);
    assert.deepEqual(JSON.parse(d.metadata.annotations![pinAnnotation('web')]!), {
      policy: `${ns}/web`,
      image: pinned,
      previous: 'registry.example/shop/web:1.4',
    });
    assert.equal(imageFieldOwner(d.metadata.managedFields, 'web'), FIELD_MANAGER);
    assert.equal(imageFieldOwner(d.metadata.managedFields, 'proxy'), 'gitops');
    const mine = d.metadata.managedFields?.find((m) => m.manager === FIELD_MANAGER);
    assert.ok(mine, 'patchline has a managedFields entry');
    const owned = JSON.stringify(mine.fieldsV1);
    assert.ok(!owned.includes('f:replicas') && !owned.includes('f:env') && !owned.includes('proxy'), owned);

    // Applying the same pin again changes nothing (no new generation).
    const generation = d.metadata.generation;
    await applyPin(env().admin, {
      kind: 'Deployment',
      namespace: ns,
      name: 'web',
      container: 'web',
      image: pinned,
      policy: `${ns}/web`,
      previousImage: 'registry.example/shop/web:1.4',
    });
    assert.equal(get().metadata.generation, generation);

    // Another manager sets the image back: managedFields names it.
    kubectl(['set', 'image', '-n', ns, 'deployment/web', 'web=registry.example/shop/web:1.4']);
    assert.equal(imageFieldOwner(get().metadata.managedFields, 'web'), 'kubectl-set');
  });

  it('pins a second container of the same workload without dropping the first (one field manager for every pin)', async () => {
    const ns = newNamespace('pin-two');
    kubectl(['apply', '--server-side', '--field-manager=gitops', '-n', ns, '-f', '-'], {
      input: stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'two' },
        spec: {
          selector: { matchLabels: { app: 'two' } },
          template: {
            metadata: { labels: { app: 'two' } },
            spec: {
              containers: [
                { name: 'app', image: 'registry.example/shop/app:1' },
                { name: 'proxy', image: 'registry.example/mesh/proxy:1' },
              ],
            },
          },
        },
      }),
    });
    const D2 = `sha256:${'2'.repeat(64)}`;
    const first = {
      kind: 'Deployment' as const,
      namespace: ns,
      name: 'two',
      container: 'app',
      image: `registry.example/shop/app@${D1}`,
      policy: `${ns}/app`,
    };
    await applyPin(env().admin, first);
    const get = (): Deployment =>
      JSON.parse(kubectl(['get', 'deployment', 'two', '-n', ns, '-o', 'json']).stdout) as Deployment;
    const w = get();
    const kept = keptPins(
      { annotations: w.metadata.annotations ?? {}, containers: w.spec.template.spec.containers },
      'proxy',
    );
    assert.deepEqual(
      kept.map((k) => [k.container, k.image]),
      [['app', first.image]],
    );
    await applyPin(env().admin, {
      kind: 'Deployment',
      namespace: ns,
      name: 'two',
      container: 'proxy',
      image: `registry.example/mesh/proxy@${D2}`,
      policy: `${ns}/proxy`,
      others: kept,
    });
    const d = get();
    assert.deepEqual(
      d.spec.template.spec.containers.map((c) => [c.name, c.image]),
      [
        ['app', first.image],
        ['proxy', `registry.example/mesh/proxy@${D2}`],
      ],
    );
    assert.deepEqual(
      Object.keys(d.metadata.annotations ?? {})
        .filter((k) => k.startsWith('patchline.dev/'))
        .sort(),
      [pinAnnotation('app'), pinAnnotation('proxy')],
    );
  });
});
