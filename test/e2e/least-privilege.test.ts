// Least privilege, measured: the permissions the operator used (from the API server's
// audit log, over this whole run) are exactly the permissions the shipped RBAC grants.
// A grant the code never uses fails this test, as does a request the RBAC refuses.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { ROOT } from '../support/fixtures.ts';
import { OciPusher } from '../support/oci-push.ts';
import { startRegistry, type RegistryServer } from '../support/registry-server.ts';
import { auditEvents, permissionOf } from './support/audit.ts';
import { OPERATOR_NAMESPACE, OPERATOR_USER, kubectl, newNamespace } from './support/env.ts';
import { Operator } from './support/operator.ts';

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
}

function granted(): Set<string> {
  const docs = parseAllDocuments(kubectl(['kustomize', join(ROOT, 'manifests')]).stdout).map(
    (d) => d.toJS() as { kind: string; metadata: { name: string }; rules?: Rule[] },
  );
  const roles = docs.filter(
    (d) =>
      (d.kind === 'ClusterRole' && d.metadata.name === 'patchline-operator') ||
      (d.kind === 'Role' && ['patchline-leader-election', 'patchline-admission-tls'].includes(d.metadata.name)),
  );
  const out = new Set<string>();
  for (const role of roles)
    for (const r of role.rules ?? [])
      for (const g of r.apiGroups ?? [''])
        for (const res of r.resources ?? []) for (const v of r.verbs) out.add(`${g}/${res}:${v}`);
  return out;
}

describe('least privilege', () => {
  let registry: RegistryServer;
  before(async () => {
    registry = await startRegistry({ auth: { htpasswd: { puller: 'pull-pass' } } });
  });
  after(() => registry.stop());

  it('the operator does its whole job with the shipped RBAC, and uses every permission it is granted', async function () {
    this.timeout(120_000);
    // Exercise every code path that talks to the API server, in case this test runs alone:
    // a fresh lease (create, get, update), both kinds (list, watch, status update), and an
    // Event repeated within its series window (create, then patch).
    // A registry that wants credentials: the trigger's Secret and ServiceAccount are read.
    await new OciPusher(registry.url, { username: 'puller', password: 'pull-pass' }).pushImage('base/node', '22');
    const dir = mkdtempSync(join(tmpdir(), 'patchline-rbac-'));
    writeFileSync(join(dir, 'config.yaml'), stringify({ registries: [{ host: registry.host, insecure: true }] }));
    const started = Date.now() - 1_000; // the audit log's clock is this machine's; a second of slack
    const op = await Operator.start({
      identity: 'op-rbac',
      leaseName: `e2e-rbac-${Date.now()}`,
      args: ['--config-file', join(dir, 'config.yaml')],
    });
    const ns = newNamespace('rbac');
    // Registry credentials from a Secret and a ServiceAccount's imagePullSecrets (get each).
    // Job and Tekton builds (jobs, pods, pipelineruns) run in rebuild.test.ts, on-demand scan
    // Jobs (deleted once read) and Notary trust stores in ConfigMaps in trust.test.ts, Trivy
    // Operator's VulnerabilityReports are watched in trust.test.ts, GitWriteBacks are read and
    // their status written in gitops.test.ts, and the admission
    // certificates are kept in admission.test.ts, earlier in the suite: this test reads the
    // audit log of the whole run.
    const dockerconfig = Buffer.from(
      JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('puller:pull-pass').toString('base64') } } }),
    ).toString('base64');
    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: [
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'pull' },
          type: 'kubernetes.io/dockerconfigjson',
          data: { '.dockerconfigjson': dockerconfig },
        },
        {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name: 'puller' },
          imagePullSecrets: [{ name: 'pull' }],
        },
      ]
        .map((o) => stringify(o))
        .join('---\n'),
    });
    // A Deployment the policy pins (patch), reading its pods (list, watch).
    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web' },
        spec: {
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'app', image: `${registry.host}/base/node:22` }] },
          },
        },
      }),
    });
    const base = {
      apiVersion: 'patchline.dev/v1alpha1',
      kind: 'ImagePolicy',
      metadata: { name: 'p' },
      spec: {
        image: `${registry.host}/base/node`,
        follow: { tag: '22' },
        workloads: { names: ['web'] },
        registryAuth: { secretRef: { name: 'pull' } },
      },
    };
    const invalid = {
      ...base,
      spec: { ...base.spec, rollout: { window: { schedule: '0 2 * * *', timeZone: 'No/Where' } } },
    };
    const reason = () =>
      kubectl(['get', 'ipol', 'p', '-n', ns, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].reason}']).stdout;
    for (const [manifest, expected] of [
      [invalid, 'InvalidSpec'],
      [base, 'Accepted'],
      [invalid, 'InvalidSpec'],
    ] as const) {
      kubectl(['apply', '-n', ns, '-f', '-'], { input: stringify(manifest) });
      await op.waitUntil(() => reason() === expected, expected);
      if (manifest === base)
        await op.waitUntil(
          () =>
            kubectl([
              'get',
              'deploy',
              'web',
              '-n',
              ns,
              '-o',
              'jsonpath={.spec.template.spec.containers[0].image}',
            ]).stdout.includes('@sha256:'),
          'web pinned',
        );
    }
    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: stringify({
        apiVersion: 'patchline.dev/v1alpha1',
        kind: 'RebuildTrigger',
        metadata: { name: 't' },
        spec: {
          baseImages: [{ image: `${registry.host}/base/node:22` }],
          target: { image: 'registry.example.com/team/app:1.0' },
          build: { webhook: { url: 'https://builds.example.com/x' } },
          registryAuth: { secretRef: { name: 'pull' }, serviceAccountName: 'puller' },
        },
      }),
    });
    await op.waitUntil(
      () =>
        ['secrets', 'serviceaccounts'].every((resource) =>
          auditEvents().some(
            (e) =>
              e.user.username === OPERATOR_USER &&
              e.verb === 'get' &&
              e.objectRef?.resource === resource &&
              e.objectRef.namespace === ns,
          ),
        ) && kubectl(['get', 'rbt', 't', '-n', ns, '-o', 'jsonpath={.status.observedGeneration}']).stdout === '1',
      'trigger reconciled with its registry credentials',
    );
    await op.waitUntil(
      () =>
        auditEvents().some(
          (e) => e.user.username === OPERATOR_USER && e.verb === 'patch' && e.objectRef?.resource === 'events',
        ),
      'repeated event folded into a series (patch)',
    );
    await op.waitUntil(
      () =>
        auditEvents().filter(
          (e) =>
            e.user.username === OPERATOR_USER &&
            e.verb === 'update' &&
            e.objectRef?.resource === 'leases' &&
            e.stage === 'ResponseComplete',
        ).length >= 2,
      'lease renewed',
    );
    assert.equal(await op.stop(), 0);

    const mine = auditEvents().filter((e) => e.user.username === OPERATOR_USER);
    // Refusals of this operator's run only: the suite's earlier operators share the
    // ServiceAccount, and one of them watches through an API server restart, when the new
    // server's authorizer answers 403 until its RBAC caches are filled.
    // Requests made as a tenant's ServiceAccount (impersonation) are refused when the tenant
    // did not grant the right: that is the tenant's RBAC working, not the operator's missing.
    const refused = mine
      .filter(
        (e) =>
          e.responseStatus?.code === 403 &&
          !e.impersonatedUser &&
          Date.parse(e.requestReceivedTimestamp ?? '') >= started,
      )
      .map((e) => `${permissionOf(e)} ${e.requestURI}`);
    assert.deepEqual(refused, [], 'the operator was never refused');

    // A request made as a tenant's ServiceAccount uses the operator's right to impersonate it;
    // what it does is authorized as that ServiceAccount.
    const used = new Set(mine.map((e) => (e.impersonatedUser ? '/serviceaccounts:impersonate' : permissionOf(e))));
    const grants = granted();
    const grantedButUnused = [...grants].filter((p) => !used.has(p)).sort();
    const usedButNotGranted = [...used].filter((p) => !grants.has(p)).sort();
    console.log(`      permissions used: ${[...used].sort().join(', ')}`);
    assert.deepEqual(grantedButUnused, [], 'every granted permission is used');
    assert.deepEqual(usedButNotGranted, [], 'every used permission is granted');

    const leaseRequests = mine.filter((e) => e.objectRef?.resource === 'leases');
    assert.ok(
      leaseRequests.every((e) => e.objectRef?.namespace === OPERATOR_NAMESPACE),
      'leases only in its own namespace',
    );
  });

  it('the ServiceAccount can do nothing else, such as listing Secrets or replacing Deployments', () => {
    const as = `--as=${OPERATOR_USER}`;
    for (const [verb, resource] of [
      ['list', 'secrets'],
      ['watch', 'secrets'],
      ['create', 'pods'],
      ['update', 'jobs.batch'],
      ['update', 'pipelineruns.tekton.dev'],
      ['update', 'deployments.apps'],
      ['delete', 'deployments.apps'],
      ['delete', 'imagepolicies.patchline.dev'],
      ['update', 'imagepolicies.patchline.dev'],
      ['create', 'leases.coordination.k8s.io'],
    ] as const) {
      const ns = resource.startsWith('leases') ? 'default' : 'kube-system';
      const r = kubectl(['auth', 'can-i', verb, resource, '-n', ns, as], { allowFailure: true });
      assert.equal(r.stdout.trim(), 'no', `${verb} ${resource} in ${ns}`);
    }
  });
});
