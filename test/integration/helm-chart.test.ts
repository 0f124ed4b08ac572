// The Helm chart (charts/patchline) rendered by the real helm CLI (scripts/install-helm.sh):
// with default values it installs the same objects as `kubectl apply -k manifests/`; each value
// does what values.yaml says; values.schema.json refuses bad values; its CRDs are crds/. That
// the rendered objects are valid for a real API server is checked in the e2e suite (helm.test.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { KUBECTL } from '../support/controlplane.ts';
import { ROOT } from '../support/fixtures.ts';
import { CHART, HELM } from '../support/helm.ts';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
}

function helmTemplate(args: string[] = []): { code: number; objects: Obj[]; stderr: string } {
  const r = spawnSync(HELM, ['template', 'patchline', CHART, '--namespace', 'patchline-system', ...args], {
    encoding: 'utf8',
  });
  const objects =
    r.status === 0
      ? parseAllDocuments(r.stdout)
          .map((d) => d.toJS() as Obj | null)
          .filter((o): o is Obj => o !== null)
      : [];
  return { code: r.status ?? -1, objects, stderr: r.stderr };
}

const key = (o: Obj): string => `${o.kind}/${o.metadata.name}`;

/** What may differ between the two installs: labels each tool adds, the config checksum. */
function normalised(o: Obj): Obj {
  const copy = structuredClone(o);
  if (copy.metadata.labels) delete copy.metadata.labels['app.kubernetes.io/part-of'];
  const template = (copy.spec as { template?: { metadata?: { annotations?: Record<string, string> } } } | undefined)
    ?.template;
  if (template?.metadata?.annotations) {
    delete template.metadata.annotations['checksum/config'];
    if (Object.keys(template.metadata.annotations).length === 0) delete template.metadata.annotations;
  }
  return copy;
}

/** Objects of `kubectl kustomize` of an overlay of manifests/ with the given components. */
function kustomize(components: string[]): Obj[] {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-overlay-'));
  // kustomize takes directories outside the overlay only by relative path.
  const rel = (p: string) => relative(dir, join(ROOT, p));
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    stringify({ resources: [rel('manifests')], ...(components.length ? { components: components.map(rel) } : {}) }),
  );
  const r = spawnSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
}

/** The chart's objects equal the kustomize install's, the namespace, image and config comments aside. */
function assertSameObjects(fromChart: Obj[], fromKustomize: Obj[]): void {
  const fromHelm = new Map(fromChart.map((o) => [key(o), normalised(o)]));
  const kustomized = new Map(fromKustomize.filter((o) => o.kind !== 'Namespace').map((o) => [key(o), normalised(o)]));
  assert.deepEqual([...fromHelm.keys()].sort(), [...kustomized.keys()].sort());
  for (const [k, o] of kustomized) {
    const h = fromHelm.get(k)!;
    // kustomize sets the image from its images: list; the chart from values.
    if (o.kind === 'Deployment') {
      const image = (x: Obj) =>
        (x.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers[0]!;
      assert.equal(image(h).image, 'ghcr.io/patchline-dev/patchline:v0.1.0');
      assert.equal(image(o).image, 'ghcr.io/patchline-dev/patchline:v0.1.0');
    }
    if (o.kind === 'ConfigMap') {
      // The chart renders the config from values; the kustomize one carries commented examples.
      assert.deepEqual(parseAllDocuments(String((h.data as Record<string, string>)['config.yaml']))[0]!.toJS(), {
        registries: [],
        webhooks: { receivers: [] },
      });
      continue;
    }
    assert.deepEqual(h, o, k);
  }
}

interface OperatorDeployment extends Obj {
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: { spec: { containers: { env: { name: string; value?: string }[] }[] } };
  };
}
const envOf = (d: Obj): Record<string, string | undefined> =>
  Object.fromEntries((d as OperatorDeployment).spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value]));

describe('Helm chart (charts/patchline)', () => {
  it('renders, with default values, the same objects as the kustomize install (the namespace aside)', function () {
    this.timeout(60_000);
    const { code, objects, stderr } = helmTemplate(['--include-crds']);
    assert.equal(code, 0, stderr);
    assertSameObjects(objects, kustomize([]));
  });

  it('renders shards as the kustomize shards component does: one more instance per shard, its own Lease and Services', function () {
    this.timeout(60_000);
    const { code, objects, stderr } = helmTemplate(['--include-crds', '--set', 'shards={one}']);
    assert.equal(code, 0, stderr);
    assertSameObjects(objects, kustomize(['manifests/components/shards']));

    const two = helmTemplate(['--set', 'shards={one,two}']).objects;
    const deployments = two.filter((o) => o.kind === 'Deployment');
    assert.deepEqual(
      deployments.map((d) => [
        d.metadata.name,
        envOf(d).PATCHLINE_WATCH_LABEL_SELECTOR,
        envOf(d).PATCHLINE_LEADER_ELECTION_ID,
      ]),
      [
        ['patchline', '!patchline.dev/shard', 'patchline-leader'],
        ['patchline-shard-one', 'patchline.dev/shard=one', 'patchline-shard-one-leader'],
        ['patchline-shard-two', 'patchline.dev/shard=two', 'patchline-shard-two-leader'],
      ],
    );
    // Admission stays with the default instance; no Deployment's selector takes another's pods.
    assert.deepEqual(
      deployments.map((d) => envOf(d).PATCHLINE_ADMISSION_ADDRESS),
      ['0.0.0.0:9443', undefined, undefined],
    );
    const selectors = deployments.map((d) => (d as OperatorDeployment).spec.selector.matchLabels);
    for (const [i, a] of selectors.entries())
      for (const [j, b] of selectors.entries())
        if (i !== j)
          assert.ok(
            Object.entries(a).some(([k, v]) => b[k] !== v),
            `${i} and ${j} select apart`,
          );
    assert.deepEqual(
      two
        .filter((o) => o.kind === 'Service')
        .map((o) => o.metadata.name)
        .sort(),
      [
        'patchline-admission',
        'patchline-metrics',
        'patchline-shard-one-metrics',
        'patchline-shard-one-webhooks',
        'patchline-shard-two-metrics',
        'patchline-shard-two-webhooks',
        'patchline-webhooks',
      ],
    );
    // Without shards, the default instance owns everything (no selector).
    assert.equal(
      envOf(helmTemplate().objects.find((o) => o.kind === 'Deployment')!).PATCHLINE_WATCH_LABEL_SELECTOR,
      undefined,
    );
  });

  it('derives every name from the install, so that a second install collides with nothing', () => {
    const first = helmTemplate().objects;
    const r = spawnSync(HELM, ['template', 'tenant-b', CHART, '--namespace', 'tenant-b-system'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const second = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as Obj | null)
      .filter((o): o is Obj => o !== null);
    const clusterScoped = (o: Obj) => o.metadata.namespace === undefined;
    const names = (objs: Obj[]) => new Set(objs.filter(clusterScoped).map(key));
    const shared = [...names(second)].filter((k) => names(first).has(k));
    assert.deepEqual(shared, [], 'no cluster-scoped object of the same name');
    assert.ok(names(second).has('ValidatingWebhookConfiguration/tenant-b-patchline-admission'));
    assert.ok(names(second).has('ClusterRole/tenant-b-patchline-operator'));
    const d = second.find((o) => o.kind === 'Deployment')!;
    assert.equal(d.metadata.name, 'tenant-b-patchline');
    assert.equal(envOf(d).PATCHLINE_LEADER_ELECTION_ID, 'tenant-b-patchline-leader');
    assert.equal(envOf(d).PATCHLINE_ADMISSION_WEBHOOK_CONFIGURATION, 'tenant-b-patchline-admission');
    assert.equal(envOf(d).PATCHLINE_ADMISSION_SECRET, 'tenant-b-patchline-admission-tls');
    // The names the operator is given are the ones its RBAC grants.
    const role = second.find(
      (o) => o.kind === 'ClusterRole' && o.metadata.name === 'tenant-b-patchline-operator',
    ) as Obj & {
      rules: { resources: string[]; resourceNames?: string[] }[];
    };
    assert.deepEqual(role.rules.find((x) => x.resources.includes('validatingwebhookconfigurations'))?.resourceNames, [
      'tenant-b-patchline-admission',
    ]);
    const binding = second.find((o) => o.kind === 'ClusterRoleBinding') as Obj & {
      subjects: { name: string; namespace: string }[];
    };
    assert.deepEqual(binding.subjects, [
      { kind: 'ServiceAccount', name: 'tenant-b-patchline', namespace: 'tenant-b-system' },
    ]);
  });

  it('ships the CRDs of crds/, unchanged', () => {
    for (const file of ['imagepolicies.patchline.dev.yaml', 'rebuildtriggers.patchline.dev.yaml'])
      assert.equal(
        readFileSync(join(CHART, 'crds', file), 'utf8'),
        readFileSync(join(ROOT, 'crds', file), 'utf8'),
        file,
      );
  });

  it('applies image, replicas, resources, namespaces to watch, log level and the config file from values', () => {
    const { objects } = helmTemplate([
      '--set',
      'image.repository=registry.internal/patchline',
      '--set',
      'image.tag=v9.9.9',
      '--set',
      'replicas=3',
      '--set',
      'resources.limits.memory=1Gi',
      '--set',
      'maxOldSpaceMiB=768',
      '--set',
      'watchNamespaces={shop,payments}',
      '--set',
      'logLevel=debug',
      '--set',
      'maxBuilds=5',
      '--set',
      'config.registries[0].host=registry.internal:5000',
      '--set',
      'config.registries[0].insecure=true',
    ]);
    const d = objects.find((o) => o.kind === 'Deployment')! as Obj & {
      spec: {
        replicas: number;
        template: {
          metadata: { annotations: Record<string, string> };
          spec: {
            containers: {
              image: string;
              env: { name: string; value?: string }[];
              resources: { limits: Record<string, string> };
            }[];
          };
        };
      };
    };
    const c = d.spec.template.spec.containers[0]!;
    const env = Object.fromEntries(c.env.map((e) => [e.name, e.value]));
    assert.equal(c.image, 'registry.internal/patchline:v9.9.9');
    assert.equal(d.spec.replicas, 3);
    assert.equal(c.resources.limits.memory, '1Gi');
    assert.equal(env.NODE_OPTIONS, '--max-old-space-size=768 --max-semi-space-size=2');
    assert.equal(env.PATCHLINE_WATCH_NAMESPACES, 'shop,payments');
    assert.equal(env.PATCHLINE_LOG_LEVEL, 'debug');
    assert.equal(env.PATCHLINE_MAX_BUILDS, '5');
    const cm = objects.find((o) => o.kind === 'ConfigMap')! as Obj & { data: Record<string, string> };
    assert.deepEqual(parseAllDocuments(cm.data['config.yaml']!)[0]!.toJS(), {
      registries: [{ host: 'registry.internal:5000', insecure: true }],
      webhooks: { receivers: [] },
    });
    assert.notEqual(
      d.spec.template.metadata.annotations['checksum/config'],
      (helmTemplate().objects.find((o) => o.kind === 'Deployment') as typeof d).spec.template.metadata.annotations[
        'checksum/config'
      ],
      'a changed config rolls the pods',
    );
    // A released chart pulls the image by the digest the release built and signed.
    const digest = `sha256:${'ab'.repeat(32)}`;
    const pinned = helmTemplate(['--set', `image.digest=${digest}`]).objects.filter(
      (o) => o.kind === 'Deployment',
    ) as (typeof d)[];
    assert.ok(pinned.length > 0);
    for (const p of pinned)
      assert.equal(p.spec.template.spec.containers[0]!.image, `ghcr.io/patchline-dev/patchline@${digest}`);
  });

  it('exposes the webhook receiver as asked, and turns admission off or over to cert-manager', () => {
    const exposed = helmTemplate([
      '--set',
      'webhooks.service.type=LoadBalancer',
      '--set',
      'webhooks.ingress.enabled=true',
      '--set',
      'webhooks.ingress.host=hooks.example.com',
      '--set',
      'webhooks.ingress.tlsSecretName=hooks-tls',
    ]).objects;
    assert.equal(
      (exposed.find((o) => key(o) === 'Service/patchline-webhooks')!.spec as { type: string }).type,
      'LoadBalancer',
    );
    const ingress = exposed.find((o) => o.kind === 'Ingress') as Obj & {
      spec: { rules: { host: string }[]; tls: { secretName: string }[] };
    };
    assert.equal(ingress.spec.rules[0]!.host, 'hooks.example.com');
    assert.equal(ingress.spec.tls[0]!.secretName, 'hooks-tls');

    const off = helmTemplate(['--set', 'admission.enabled=false']).objects;
    assert.equal(
      off.some((o) => o.kind === 'ValidatingWebhookConfiguration' || key(o) === 'Service/patchline-admission'),
      false,
    );
    const env = (objs: Obj[]) =>
      (
        objs.find((o) => o.kind === 'Deployment')!.spec as {
          template: { spec: { containers: { env: { name: string; value?: string }[] }[] } };
        }
      ).template.spec.containers[0]!.env.map((e) => e.name);
    assert.equal(env(off).includes('PATCHLINE_ADMISSION_ADDRESS'), false);

    const cm = helmTemplate([
      '--set',
      'admission.certManager.enabled=true',
      '--set',
      'admission.certManager.issuerRef.name=internal-ca',
      '--set',
      'admission.failurePolicy=Fail',
    ]).objects;
    const cert = cm.find((o) => o.kind === 'Certificate') as Obj & {
      spec: { secretName: string; issuerRef: { name: string } };
    };
    assert.equal(cert.spec.secretName, 'patchline-admission-tls');
    assert.equal(cert.spec.issuerRef.name, 'internal-ca');
    const vwc = cm.find((o) => o.kind === 'ValidatingWebhookConfiguration') as Obj & {
      webhooks: { failurePolicy: string }[];
    };
    assert.equal(vwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], 'patchline-system/patchline-admission');
    assert.deepEqual(
      vwc.webhooks.map((w) => w.failurePolicy),
      ['Fail', 'Fail', 'Fail', 'Fail'],
    );
    assert.ok(env(cm).includes('PATCHLINE_ADMISSION_CERT_DIR'));
  });

  it('refuses values the schema does not allow, naming them', () => {
    for (const [set, why] of [
      ['replicas=two', /replicas.*want integer/],
      ['admission.failurePolicy=Sometimes', /failurePolicy.*must be one of/],
      ['watchNamespaces={Not_A_Namespace}', /watchNamespaces/],
      ['logLevel=verbose', /logLevel/],
      ['surprise=1', /additional properties 'surprise' not allowed/],
      ['image.digest=latest', /image\/digest.*does not match pattern/],
    ] as const) {
      const r = helmTemplate(['--set', set]);
      assert.notEqual(r.code, 0, set);
      assert.match(r.stderr, why, set);
    }
  });
});
