// The Helm chart (charts/patchline) rendered by the real helm CLI (scripts/install-helm.sh):
// with default values it installs the same objects as `kubectl apply -k manifests/`; each value
// does what values.yaml says; values.schema.json refuses bad values; its CRDs are crds/. That
// the rendered objects are valid for a real API server is checked in the e2e suite (helm.test.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
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

describe('Helm chart (charts/patchline)', () => {
  let kustomized: Obj[];

  before(function () {
    this.timeout(60_000);
    const r = spawnSync(KUBECTL, ['kustomize', join(ROOT, 'manifests')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    kustomized = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
  });

  it('renders, with default values, the same objects as the kustomize install (the namespace aside)', () => {
    const { code, objects, stderr } = helmTemplate(['--include-crds']);
    assert.equal(code, 0, stderr);
    const fromHelm = new Map(objects.map((o) => [key(o), normalised(o)]));
    const fromKustomize = new Map(kustomized.filter((o) => o.kind !== 'Namespace').map((o) => [key(o), normalised(o)]));
    assert.deepEqual([...fromHelm.keys()].sort(), [...fromKustomize.keys()].sort());
    for (const [k, o] of fromKustomize) {
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
      ['Fail', 'Fail'],
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
    ] as const) {
      const r = helmTemplate(['--set', set]);
      assert.notEqual(r.code, 0, set);
      assert.match(r.stderr, why, set);
    }
  });
});
