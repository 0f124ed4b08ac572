// Tenants: Patchline acts for a tenant with no more rights than the tenant granted. The
// operator runs with --default-service-account=default, so a tenant's build Jobs and pins are
// made as a ServiceAccount of the tenant's own namespace (impersonation): a tenant who may only
// manage Patchline's resources gets no Job and no changed Deployment from Patchline, and is
// told why; once a ServiceAccount with those rights is named, both work.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { MediaTypes } from '../../src/registry/manifest.ts';
import { writeServiceAccountKubeconfig } from '../support/install.ts';
import { auditEvents } from './support/audit.ts';
import { OPERATOR_USER, env, kubectl, newNamespace } from './support/env.ts';
import type { Operator } from './support/operator.ts';
import { applyWorkload, specImage, waitForPolicy, workload } from './support/policies.ts';
import { RebuildEnv, triggerStatus } from './support/rebuild-env.ts';

const condition = (
  conditions: { type: string; status: string; reason?: string; message?: string }[] | undefined,
  type: string,
) => conditions?.find((c) => c.type === type);

describe('tenants: Patchline acts as a ServiceAccount of the namespace, never with its own rights', function () {
  this.timeout(300_000);
  let e: RebuildEnv;
  let op: Operator;
  let ns: string;
  let tenantKubeconfig: string;
  /** kubectl as the tenant: a ServiceAccount token that may manage Patchline's resources in its namespace only. */
  const asTenant = (args: string[], input?: string) =>
    kubectl([...args], { kubeconfig: tenantKubeconfig, ...(input ? { input } : {}), allowFailure: true });

  before(async () => {
    e = await RebuildEnv.start({ buildMs: 300 });
    ns = newNamespace('tenant');
    op = await e.operator('op-tenant', `e2e-tenant-${Date.now()}`, [
      '--default-service-account',
      'default',
      '--watch-namespaces',
      ns,
    ]);
    await op.waitForLog((l) => l.message === 'controllers started', 'leading');
    kubectl(['create', 'serviceaccount', 'tenant', '-n', ns]);
    kubectl([
      'create',
      'role',
      'patchline-user',
      '-n',
      ns,
      '--verb=get,list,watch,create,update,patch,delete',
      '--resource=imagepolicies.patchline.dev,rebuildtriggers.patchline.dev',
    ]);
    kubectl([
      'create',
      'rolebinding',
      'patchline-user',
      '-n',
      ns,
      '--role=patchline-user',
      `--serviceaccount=${ns}:tenant`,
    ]);
    tenantKubeconfig = join(env().workDir, `${ns}-tenant.kubeconfig`);
    writeServiceAccountKubeconfig(
      env().cp.kubeconfig,
      { server: env().cp.server, caFile: join(env().cp.dir, 'pki', 'apiserver.crt') },
      tenantKubeconfig,
      { name: 'tenant', namespace: ns },
    );
    // What the tenant cannot do itself, and so must not get done by Patchline.
    for (const [verb, resource] of [
      ['create', 'jobs.batch'],
      ['patch', 'deployments.apps'],
    ] as const)
      assert.equal(asTenant(['auth', 'can-i', verb, resource, '-n', ns]).stdout.trim(), 'no');
  });

  after(async () => {
    await op?.stop();
    await e?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(op.recentLogs());
  });

  it("a RebuildTrigger's Job is created as the namespace's ServiceAccount: refused without the right, created with it", async () => {
    const base1 = await e.pusher.pushImage('base/tenant', '1', { seed: `${ns}-b1` });
    await e.pusher.pushImage('team/tenant', '1', { seed: `${ns}-a1` });
    const output = await e.pusher.pushImage('team/tenant', 'candidate', { seed: `${ns}-out` });
    const trigger = (serviceAccountName?: string) =>
      stringify({
        apiVersion: 'patchline.dev/v1alpha1',
        kind: 'RebuildTrigger',
        metadata: { name: 'app' },
        spec: {
          baseImages: [{ image: e.image('base/tenant', '1') }],
          target: { image: e.image('team/tenant', '1') },
          settle: '0s',
          ...(serviceAccountName ? { serviceAccountName } : {}),
          build: {
            retries: 0,
            job: {
              digestContainer: 'build',
              template: {
                template: {
                  metadata: { annotations: { 'testcp.patchline.dev/termination-message': output.digest } },
                  spec: {
                    restartPolicy: 'Never',
                    containers: [{ name: 'build', image: 'moby/buildkit:rootless', args: ['$(base.ref)'] }],
                  },
                },
              },
            },
          },
        },
      });
    assert.equal(asTenant(['apply', '-n', ns, '-f', '-'], trigger()).code, 0);
    await op.waitUntil(() => triggerStatus(ns, 'app').bases?.[0]?.digest === base1.digest, 'the base learned');
    const base2 = await e.pusher.pushImage('base/tenant', '1', { seed: `${ns}-b2` });

    // Acting as "default", which may not create Jobs: the build is refused, the trigger stalls and says why.
    await op.waitUntil(
      () => condition(triggerStatus(ns, 'app').conditions, 'Stalled')?.status === 'True',
      'the trigger stalled',
    );
    const stalled = condition(triggerStatus(ns, 'app').conditions, 'Stalled')!;
    console.log(`      stalled: ${stalled.message}`);
    assert.match(
      stalled.message ?? '',
      new RegExp(
        `forbidden: ServiceAccount ${ns}/default may not .*User "system:serviceaccount:${ns}:default" cannot create resource "jobs"`,
      ),
    );
    assert.equal(kubectl(['get', 'jobs', '-n', ns, '-o', 'name']).stdout.trim(), '', 'no Job was created');

    // A ServiceAccount that may create Jobs, named by the tenant: the build runs and lands.
    kubectl(['create', 'serviceaccount', 'builder', '-n', ns]);
    kubectl(['create', 'role', 'create-jobs', '-n', ns, '--verb=create', '--resource=jobs.batch']);
    kubectl(['create', 'rolebinding', 'builder', '-n', ns, '--role=create-jobs', `--serviceaccount=${ns}:builder`]);
    assert.equal(asTenant(['apply', '-n', ns, '-f', '-'], trigger('builder')).code, 0);
    assert.equal(
      asTenant([
        'annotate',
        'rebuildtrigger',
        'app',
        '-n',
        ns,
        '--overwrite',
        `patchline.dev/reconcile-requested-at=${new Date().toISOString()}`,
      ]).code,
      0,
    );
    await op.waitUntil(() => triggerStatus(ns, 'app').build?.phase === 'Succeeded', 'the build succeeded', 60_000);
    await e.pusher.copyManifest('team/tenant', 'candidate', '1', MediaTypes.ociManifest);
    await op.waitUntil(
      () => triggerStatus(ns, 'app').phase === 'Landed' && triggerStatus(ns, 'app').build?.baseDigest === base2.digest,
      'the rebuild landed',
      60_000,
    );
    const creates = auditEvents().filter(
      (a) =>
        a.user.username === OPERATOR_USER &&
        a.verb === 'create' &&
        a.objectRef?.resource === 'jobs' &&
        a.objectRef.namespace === ns &&
        a.stage === 'ResponseComplete',
    );
    assert.deepEqual(
      creates.map((a) => [a.impersonatedUser?.username, a.responseStatus?.code]),
      [
        [`system:serviceaccount:${ns}:default`, 403],
        [`system:serviceaccount:${ns}:builder`, 201],
      ],
      'every Job create was made as a ServiceAccount of the namespace',
    );
  });

  it("an ImagePolicy's pins are made as the namespace's ServiceAccount: refused without the right, applied with it", async () => {
    const v1 = await e.pusher.pushImage('shop/tenant', '1.0', { seed: `${ns}-v1` });
    applyWorkload(ns, 'Deployment', 'web', e.image('shop/tenant', '1.0'));
    const policy = (serviceAccountName?: string) =>
      stringify({
        apiVersion: 'patchline.dev/v1alpha1',
        kind: 'ImagePolicy',
        metadata: { name: 'web' },
        spec: {
          image: `${e.registry.host}/shop/tenant`,
          follow: { tag: '1.0' },
          workloads: { names: ['web'] },
          verify: { registries: [e.registry.host], requireDigest: true },
          ...(serviceAccountName ? { serviceAccountName } : {}),
        },
      });
    assert.equal(asTenant(['apply', '-n', ns, '-f', '-'], policy()).code, 0);
    const s = await waitForPolicy(
      op,
      ns,
      'web',
      'stalled on a forbidden pin',
      (x) => condition(x.conditions, 'Stalled')?.reason === 'PinForbidden',
    );
    const ready = condition(s.conditions, 'Ready')!;
    console.log(`      stalled: ${ready.message}`);
    assert.equal(ready.status, 'False');
    assert.match(
      ready.message ?? '',
      new RegExp(
        `cannot pin Deployment/web: forbidden: ServiceAccount ${ns}/default cannot patch deployments in namespace ${ns} .*cannot patch resource "deployments"`,
      ),
    );
    assert.equal(specImage(ns, 'Deployment', 'web'), e.image('shop/tenant', '1.0'), 'the Deployment is unchanged');

    kubectl(['create', 'serviceaccount', 'deployer', '-n', ns]);
    kubectl(['create', 'role', 'patch-deployments', '-n', ns, '--verb=patch', '--resource=deployments.apps']);
    kubectl([
      'create',
      'rolebinding',
      'deployer',
      '-n',
      ns,
      '--role=patch-deployments',
      `--serviceaccount=${ns}:deployer`,
    ]);
    assert.equal(asTenant(['apply', '-n', ns, '-f', '-'], policy('deployer')).code, 0);
    await waitForPolicy(
      op,
      ns,
      'web',
      'pinned',
      (x) =>
        workload(x, 'Deployment', 'web')?.desiredDigest === v1.digest &&
        condition(x.conditions, 'Stalled') === undefined,
    );
    assert.equal(specImage(ns, 'Deployment', 'web'), `${e.registry.host}/shop/tenant@${v1.digest}`);
    const patches = auditEvents().filter(
      (a) =>
        a.user.username === OPERATOR_USER &&
        a.verb === 'patch' &&
        a.objectRef?.resource === 'deployments' &&
        a.objectRef.namespace === ns &&
        a.stage === 'ResponseComplete',
    );
    assert.ok(patches.length >= 2);
    assert.ok(
      patches.every((a) => a.impersonatedUser?.username?.startsWith(`system:serviceaccount:${ns}:`)),
      'every pin was made as a ServiceAccount of the namespace',
    );
    assert.ok(
      patches.some(
        (a) =>
          a.impersonatedUser?.username === `system:serviceaccount:${ns}:deployer` && a.responseStatus?.code === 200,
      ),
    );
  });

  it("reads Secrets and ServiceAccounts only in the resource's own namespace: a reference elsewhere is refused", () => {
    kubectl(['create', 'namespace', `${ns}-other`]);
    kubectl(['create', 'secret', 'generic', 'creds', '-n', `${ns}-other`, '--from-literal=x=y']);
    const policy = (secretRef: Record<string, string>) =>
      stringify({
        apiVersion: 'patchline.dev/v1alpha1',
        kind: 'ImagePolicy',
        metadata: { name: 'elsewhere' },
        spec: {
          image: `${e.registry.host}/shop/tenant`,
          follow: { tag: '1.0' },
          workloads: { names: ['none'] },
          registryAuth: { secretRef },
        },
      });
    // A namespace field does not exist: the API server refuses it.
    const withNamespace = asTenant(['apply', '-n', ns, '-f', '-'], policy({ name: 'creds', namespace: `${ns}-other` }));
    assert.notEqual(withNamespace.code, 0);
    assert.match(withNamespace.stderr, /unknown field "spec.registryAuth.secretRef.namespace"/);
    // A name that would climb out of the namespace's path is not a name: refused too (the
    // operator checks names again before any request, for objects admitted before this rule).
    const climbing = asTenant(['apply', '-n', ns, '-f', '-'], policy({ name: `../../${ns}-other/secrets/creds` }));
    assert.notEqual(climbing.code, 0);
    assert.match(climbing.stderr, /spec.registryAuth.secretRef.name in body should match/);
    const reads = auditEvents().filter(
      (a) =>
        a.user.username === OPERATOR_USER &&
        (a.objectRef?.resource === 'secrets' || a.objectRef?.resource === 'serviceaccounts') &&
        a.verb === 'get' &&
        a.objectRef.namespace?.startsWith(ns),
    );
    assert.deepEqual(
      reads.filter((a) => a.objectRef?.namespace !== ns),
      [],
      'nothing read in another namespace',
    );
  });
});
