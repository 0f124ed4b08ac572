// The admission webhook on the real control plane: the API server calls the operator (run as
// its ServiceAccount, with its self-managed CA injected into the webhook configuration) for
// pods and workloads in namespaces that opt in. Enforce refuses unapproved registries, pods
// not pinned by digest and unsigned images — of the containers a policy governs, or of every
// container in a namespace that asks for scope "all"; warn admits with warnings; dry runs
// leave no Event; the certificate survives a restart; with the operator down the cluster
// still admits.
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { kubectl, newNamespace, OPERATOR_NAMESPACE } from './support/env.ts';
import type { Operator } from './support/operator.ts';
import { applyPolicy } from './support/policies.ts';
import { RebuildEnv, eventReasons } from './support/rebuild-env.ts';
import { stablePort } from '../support/registry-server.ts';
import { ecKeyPair, SigstoreFixtures } from '../support/sigstore.ts';

const CONFIG = 'patchline-admission';

interface WebhookConfiguration {
  webhooks: { name: string; clientConfig: { caBundle?: string } }[];
}

function webhookConfiguration(port: number): object {
  const rules = [
    { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods'] },
    {
      apiGroups: ['apps'],
      apiVersions: ['v1'],
      operations: ['CREATE', 'UPDATE'],
      resources: ['deployments', 'statefulsets', 'daemonsets', 'replicasets'],
    },
    { apiGroups: ['batch'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['jobs', 'cronjobs'] },
  ];
  // As manifests/admission.yaml, but by URL: the test control plane has no Service network.
  const hook = (mode: string, all: boolean) => ({
    name: `${mode}${all ? '-all' : ''}.admission.patchline.dev`,
    admissionReviewVersions: ['v1'],
    clientConfig: { url: `https://127.0.0.1:${port}/admission/${mode}${all ? '/all' : ''}` },
    rules,
    namespaceSelector: {
      matchExpressions: [
        { key: 'patchline.dev/admission', operator: 'In', values: [mode] },
        { key: 'patchline.dev/admission-scope', operator: all ? 'In' : 'NotIn', values: ['all'] },
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', OPERATOR_NAMESPACE] },
      ],
    },
    failurePolicy: 'Ignore',
    sideEffects: 'NoneOnDryRun',
    timeoutSeconds: 10,
  });
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: CONFIG },
    webhooks: [hook('enforce', false), hook('enforce', true), hook('warn', false), hook('warn', true)],
  };
}

/** One field of the admission TLS Secret (base64, as stored). */
function tlsSecretField(key: string): string {
  const path = `jsonpath={.data.${key.replace('.', '\\.')}}`;
  return kubectl(['get', 'secret', '-n', OPERATOR_NAMESPACE, 'patchline-admission-tls', '-o', path]).stdout;
}

function pod(name: string, image: string, sidecar?: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { containers: [{ name: 'app', image }, ...(sidecar ? [{ name: 'istio-proxy', image: sidecar }] : [])] },
  });
}

function cronJob(name: string, image: string): string {
  return stringify({
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name },
    spec: {
      schedule: '0 3 * * *',
      suspend: true,
      jobTemplate: {
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'job', image }] } } },
      },
    },
  });
}

/** What a mesh injects beside the app: no policy governs it. */
const SIDECAR = 'docker.io/istio/proxyv2:1.22.0';

describe('Admission webhook', () => {
  let e: RebuildEnv;
  let operator: Operator | undefined;
  let port: number;
  let fx: SigstoreFixtures;
  const key = ecKeyPair();
  let enforce: string;
  let enforceAll: string;
  let warn: string;
  let signed: string;
  let unsigned: string;

  const start = async (identity: string, certHosts = '127.0.0.1'): Promise<Operator> => {
    const op = await e.operator(identity, `e2e-admission-${Date.now()}`, [
      '--admission-address',
      `127.0.0.1:${port}`,
      '--admission-cert-hosts',
      certHosts,
    ]);
    await op.waitForLog((l) => l.message === 'serving admission reviews', 'serving admission reviews');
    return op;
  };

  before(async () => {
    fx = await SigstoreFixtures.create();
    e = await RebuildEnv.start({}, {}, fx.trustedRoot());
    port = await stablePort();
    kubectl(['delete', 'secret', '-n', OPERATOR_NAMESPACE, 'patchline-admission-tls', '--ignore-not-found']);
    // The installed configuration calls the Service; here it calls the local operator by URL.
    kubectl(['delete', 'validatingwebhookconfiguration', CONFIG, '--ignore-not-found']);
    kubectl(['create', '-f', '-'], { input: stringify(webhookConfiguration(port)) });
    operator = await start('op-admission');

    const repo = `${e.registry.host}/shop/app`;
    const s = await e.pusher.pushImage('shop/app', '1.0', { seed: 'adm-signed' });
    await e.pusher.pushCosignTag('shop/app', s.digest, 'sig', [
      await fx.legacySignature(repo, s.digest, { key }, { tlog: false }),
    ]);
    const u = await e.pusher.pushImage('shop/app', '2.0', { seed: 'adm-unsigned' });
    signed = `${repo}@${s.digest}`;
    unsigned = `${repo}@${u.digest}`;
    enforce = newNamespace('adm-enforce');
    enforceAll = newNamespace('adm-all');
    warn = newNamespace('adm-warn');
    kubectl(['label', 'namespace', enforceAll, 'patchline.dev/admission-scope=all']);
    for (const [ns, mode] of [
      [enforce, 'enforce'],
      [enforceAll, 'enforce'],
      [warn, 'warn'],
    ] as const) {
      kubectl(['label', 'namespace', ns, `patchline.dev/admission=${mode}`]);
      kubectl(['create', 'secret', 'generic', 'cosign', '-n', ns, `--from-literal=cosign.pub=${key.publicPem}`]);
      applyPolicy(ns, 'app', {
        image: repo,
        follow: { tag: '1.0' },
        // The container named app of the Deployment named app is governed whatever it runs.
        workloads: { names: ['app'], containers: ['app'] },
        rollout: { mode: 'Manual' },
        verify: {
          registries: [e.registry.host],
          signature: { keys: [{ secretRef: { name: 'cosign' }, ignoreTlog: true }] },
        },
      });
    }
    // The policies are in the operator's cache before the tests ask.
    await operator.waitUntil(
      () =>
        [enforce, enforceAll, warn].every(
          (ns) =>
            kubectl(['get', 'imagepolicy', 'app', '-n', ns, '-o', 'jsonpath={.status.observedGeneration}']).stdout ===
            '1',
        ),
      'policies seen',
    );
  });

  after(async () => {
    if (operator) assert.equal(await operator.stop(), 0);
    kubectl(['delete', 'validatingwebhookconfiguration', CONFIG, '--ignore-not-found']);
    await e?.stop();
  });

  it('injects its CA into the webhook configuration, and the API server trusts it', async () => {
    const config = JSON.parse(
      kubectl(['get', 'validatingwebhookconfiguration', CONFIG, '-o', 'json']).stdout,
    ) as WebhookConfiguration;
    const secret = JSON.parse(
      kubectl(['get', 'secret', '-n', OPERATOR_NAMESPACE, 'patchline-admission-tls', '-o', 'json']).stdout,
    ) as { type: string; data: Record<string, string> };
    assert.equal(secret.type, 'kubernetes.io/tls');
    for (const w of config.webhooks) assert.equal(w.clientConfig.caBundle, secret.data['ca.crt'], w.name);
    // A signed, pinned image from the approved registry: the API server called the webhook over TLS and was told yes.
    const ok = kubectl(['apply', '-n', enforce, '-f', '-'], { input: pod('signed', signed) });
    assert.match(ok.stdout, /pod\/signed created/);
    // ...and it was the webhook that said yes (failurePolicy Ignore would admit on a TLS failure too).
    assert.equal(
      await operator!.metric('patchline_admission_reviews_total', { mode: 'enforce', result: 'allowed' }),
      1,
    );
  });

  it('enforce: refuses tags and unsigned images it governs — naming the container, image, policy and rule', () => {
    const refused = (name: string, image: string): string => {
      const r = kubectl(['apply', '-n', enforce, '-f', '-'], { input: pod(name, image), allowFailure: true });
      assert.notEqual(r.code, 0, `${name} was admitted`);
      return r.stderr;
    };
    assert.match(
      refused('tagged', `${e.registry.host}/shop/app:1.0`),
      /denied the request: patchline: containers\[app\] \S+\/shop\/app:1\.0: digest \(ImagePolicy app\): not pinned by digest/,
    );
    assert.match(
      refused('unsigned', unsigned),
      /signature: no cosign signature found for sha256:[a-f0-9]{64} \(ImagePolicy app\)/,
    );
    assert.ok(eventReasons(enforce, 'unsigned').includes('AdmissionRejected'));
  });

  it('enforce: leaves what no policy governs alone — an injected sidecar, another workload, a CronJob of other images', () => {
    const apply = (ns: string, input: string) => kubectl(['apply', '-n', ns, '-f', '-'], { input, allowFailure: true });
    // The app container is governed and passes; the mesh sidecar beside it is not judged.
    assert.equal(apply(enforce, pod('meshed', signed, SIDECAR)).code, 0);
    assert.equal(apply(enforce, pod('nginx', `docker.io/library/nginx@sha256:${'d'.repeat(64)}`)).code, 0);
    const other = stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'batch' },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'batch' } },
        template: {
          metadata: { labels: { app: 'batch' } },
          spec: { containers: [{ name: 'app', image: 'quay.io/other/batch:1' }] },
        },
      },
    });
    assert.equal(apply(enforce, other).code, 0, 'a Deployment no policy selects');
    assert.equal(apply(enforce, cronJob('cleanup', 'docker.io/library/busybox:1.36')).code, 0);
    // A CronJob running a governed image is judged at apply time, where kubectl shows it.
    const cron = apply(enforce, cronJob('report', unsigned));
    assert.notEqual(cron.code, 0);
    assert.match(
      cron.stderr,
      /patchline: containers\[job\] \S+: signature: no cosign signature found for sha256:[a-f0-9]{64} \(ImagePolicy app\)/,
    );
  });

  it('enforce with scope "all": every policy judges every container, the sidecar and the CronJob included', () => {
    const apply = (input: string) => kubectl(['apply', '-n', enforceAll, '-f', '-'], { input, allowFailure: true });
    const meshed = apply(pod('meshed', signed, SIDECAR));
    assert.notEqual(meshed.code, 0);
    assert.match(
      meshed.stderr,
      /containers\[istio-proxy\] docker\.io\/istio\/proxyv2:1\.22\.0: registry \(ImagePolicy app\): not from an approved registry/,
    );
    assert.match(meshed.stderr, /containers\[istio-proxy\] \S+: digest \(ImagePolicy app\): not pinned by digest/);
    const cron = apply(cronJob('cleanup', 'docker.io/library/busybox:1.36'));
    assert.notEqual(cron.code, 0);
    assert.match(cron.stderr, /containers\[job\] docker\.io\/library\/busybox:1\.36: registry \(ImagePolicy app\)/);
    assert.equal(apply(pod('signed', signed)).code, 0);
  });

  it('enforce: lets a workload template name a tag (Patchline pins it), and judges only images an update introduces', () => {
    const deployment = (image: string) =>
      stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'app', labels: { app: 'app' } },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: 'app' } },
          template: { metadata: { labels: { app: 'app' } }, spec: { containers: [{ name: 'app', image }] } },
        },
      });
    assert.equal(
      kubectl(['apply', '-n', enforce, '-f', '-'], { input: deployment(`${e.registry.host}/shop/app:1.0`) }).code,
      0,
    );
    const bad = kubectl(['apply', '-n', enforce, '-f', '-'], {
      input: deployment('quay.io/evil/app:1'),
      allowFailure: true,
    });
    assert.match(
      bad.stderr,
      /containers\[app\] quay\.io\/evil\/app:1: registry \(ImagePolicy app\): not from an approved registry/,
    );
    // Scaling does not introduce an image: admitted.
    assert.equal(kubectl(['scale', 'deployment', 'app', '-n', enforce, '--replicas=0']).code, 0);
  });

  it('warn: admits with a warning per finding, and records an Event', () => {
    const r = kubectl(['apply', '-n', warn, '-f', '-'], { input: pod('warned', `${e.registry.host}/shop/app:2.0`) });
    assert.match(r.stdout, /pod\/warned created/);
    assert.match(
      r.stderr,
      /Warning: patchline: containers\[app\] .*shop\/app:2\.0: digest \(ImagePolicy app\): not pinned by digest/,
    );
    assert.ok(eventReasons(warn, 'warned').includes('AdmissionWarning'));
  });

  it('a dry run is judged but leaves no Event', async () => {
    const r = kubectl(['apply', '--dry-run=server', '-n', enforce, '-f', '-'], {
      input: pod('dry', unsigned),
      allowFailure: true,
    });
    assert.match(r.stderr, /signature: no cosign signature found/);
    // The refusal of the real request above is recorded; this one must not be.
    const audit = await operator!.waitForLog(
      (l) => l.audit === true && l.reason === 'AdmissionRejected' && l.name === 'unsigned',
      'an audit line for a refusal',
    );
    assert.deepEqual(
      [audit.operation, audit.mode, audit.result, audit.rules, audit.images],
      ['CREATE', 'enforce', 'denied', ['signature'], [unsigned]],
    );
    assert.equal(
      operator!.findLog((l) => l.audit === true && l.name === 'dry'),
      undefined,
    );
    assert.deepEqual(eventReasons(enforce, 'dry'), []);
  });

  it('keeps its certificate across a restart, and fails open while no replica answers', async () => {
    const before = tlsSecretField('tls.crt');
    assert.equal(await operator!.stop(), 0);
    operator = undefined;
    // Nobody answers: failurePolicy Ignore admits, so the cluster is not locked out.
    const r = kubectl(['apply', '-n', enforceAll, '-f', '-'], { input: pod('while-down', 'quay.io/evil/app:1') });
    assert.match(r.stdout, /pod\/while-down created/);
    operator = await start('op-admission-2');
    assert.equal(
      operator.findLog((l) => l.message === 'admission certificates issued'),
      undefined,
    );
    assert.equal(tlsSecretField('tls.crt'), before);
    const again = kubectl(['apply', '-n', enforceAll, '-f', '-'], {
      input: pod('after-restart', 'quay.io/evil/app:2'),
      allowFailure: true,
    });
    assert.match(again.stderr, /registry \(ImagePolicy app\): not from an approved registry/);
  });

  it('reissues the serving certificate when its names change, from the same CA, and the API server still trusts it', async () => {
    const [cert, bundle] = [tlsSecretField('tls.crt'), tlsSecretField('ca.crt')];
    assert.equal(await operator!.stop(), 0);
    operator = await start('op-admission-3', '127.0.0.1,admission.patchline.example');
    const issued = await operator.waitForLog((l) => l.message === 'admission certificates issued', 'reissued');
    assert.deepEqual(issued.reasons, ['serving-hosts-changed']);
    assert.notEqual(tlsSecretField('tls.crt'), cert);
    assert.equal(tlsSecretField('ca.crt'), bundle, 'same CA bundle: nothing to re-inject');
    const r = kubectl(['apply', '-n', enforceAll, '-f', '-'], {
      input: pod('rotated', 'quay.io/evil/app:3'),
      allowFailure: true,
    });
    assert.match(r.stderr, /registry \(ImagePolicy app\): not from an approved registry/);
  });
});
