// Sharding: two operator instances (separate processes, the shipped RBAC, their own Leases
// and webhook endpoints) split Patchline's resources by the label patchline.dev/shard, the
// way Flux shards its controllers: the default instance owns what has no shard label
// (--watch-label-selector '!patchline.dev/shard'), the shard "one" what is labelled for it.
// The API server's audit log (the User-Agent carries the replica's identity) must show every
// object written by exactly one instance — the one that owns it — through a first sync, a
// rollout after a new digest, and a resource moved from one shard to the other.
//
// Two installs: a second release of the Helm chart created beside the one made from
// manifests/, each operator under its own names, ServiceAccount and RBAC.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import type { ImagePolicyStatus, RebuildTriggerStatus } from '../../src/api/v1alpha1/index.ts';
import { waitFor } from '../support/manual-clock.ts';
import { auditEvents, type AuditEvent } from './support/audit.ts';
import { CHART, HELM } from '../support/helm.ts';
import { writeServiceAccountKubeconfig } from '../support/install.ts';
import { stablePort } from '../support/registry-server.ts';
import { OPERATOR_NAMESPACE, OPERATOR_USER, env as envOf, kubectl, newNamespace } from './support/env.ts';
import { Operator } from './support/operator.ts';
import { applyPolicy, applyWorkload, waitForPolicy } from './support/policies.ts';
import { RebuildEnv, createBuildSecret, triggerStatus } from './support/rebuild-env.ts';

const SHARD_KEY = 'patchline.dev/shard';

describe('sharding by label: two operator instances', function () {
  this.timeout(240_000);
  let env: RebuildEnv;
  let main: Operator;
  let one: Operator;
  const run = Date.now();

  before(async () => {
    env = await RebuildEnv.start();
    main = await env.operator('op-shard-main', `e2e-shard-main-${run}`, ['--watch-label-selector', `!${SHARD_KEY}`], 0);
    one = await env.operator('op-shard-one', `e2e-shard-one-${run}`, ['--watch-label-selector', `${SHARD_KEY}=one`], 1);
    for (const op of [main, one]) await op.waitForLog((l) => l.message === 'controllers started', 'leading');
  });

  after(async () => {
    for (const op of [main, one]) if (op) assert.equal(await op.stop(), 0);
    await env?.stop();
  });

  /** Which instances (by the identity in their User-Agent) wrote an object, from the audit log. */
  const writers = (events: AuditEvent[], resource: string, ns: string, name: string): Set<string> =>
    new Set(
      events
        .filter(
          (e) =>
            e.stage === 'ResponseComplete' &&
            e.user.username === OPERATOR_USER &&
            ['create', 'update', 'patch'].includes(e.verb) &&
            e.objectRef?.resource === resource &&
            e.objectRef.namespace === ns &&
            e.objectRef.name === name,
        )
        .map((e) => /\(([^)]+)\)$/.exec(e.userAgent ?? '')?.[1] ?? e.userAgent ?? '?'),
    );

  const applyLabelled = (ns: string, kind: string, name: string, shard: string | undefined, spec: object): void => {
    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: stringify({
        apiVersion: 'patchline.dev/v1alpha1',
        kind,
        metadata: { name, labels: shard ? { [SHARD_KEY]: shard } : {} },
        spec,
      }),
    });
  };

  it('each object is acted on by exactly the instance that owns its shard, also after it moves', async () => {
    const ns = newNamespace('shards');
    createBuildSecret(ns);
    const v1 = await env.pusher.pushImage('shop/sharded', '1', { seed: `${ns}-v1` });
    await env.pusher.pushImage('base/sharded', '1', { seed: `${ns}-base` });
    const owners = new Map<string, string | undefined>();
    for (let i = 0; i < 6; i++) {
      const name = `app-${i}`;
      const shard = i % 2 === 0 ? undefined : 'one';
      owners.set(name, shard);
      applyWorkload(ns, 'Deployment', name, `${env.registry.host}/shop/sharded@${v1.digest}`);
      applyLabelled(ns, 'ImagePolicy', name, shard, {
        image: `${env.registry.host}/shop/sharded`,
        follow: { tag: '1' },
        workloads: { names: [name] },
        verify: { registries: [env.registry.host] },
      });
    }
    const triggerSpec = {
      baseImages: [{ image: env.image('base/sharded', '1') }],
      target: { image: env.image('shop/sharded', '1') },
      build: {
        webhook: { url: `${env.builds.url}/builds`, statusURL: `${env.builds.url}/builds/$(build.id)` },
        credentialsRef: { name: 'build-creds' },
      },
    };
    applyLabelled(ns, 'RebuildTrigger', 'main-trigger', undefined, triggerSpec);
    applyLabelled(ns, 'RebuildTrigger', 'one-trigger', 'one', triggerSpec);

    const opOf = (shard: string | undefined): Operator => (shard ? one : main);
    const onDigest = (digest: string) => (s: ImagePolicyStatus) => s.latest?.digest === digest && s.upToDate === '1/1';
    for (const [name, shard] of owners) await waitForPolicy(opOf(shard), ns, name, 'up to date', onDigest(v1.digest));
    const triggerReady = (s: RebuildTriggerStatus) =>
      s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
    for (const name of ['main-trigger', 'one-trigger'])
      await waitFor(() => triggerReady(triggerStatus(ns, name)), `${name} Ready`, 60_000, 200);

    // A new digest: each shard rolls the Deployments of its own policies.
    const v2 = await env.pusher.pushImage('shop/sharded', '1', { seed: `${ns}-v2` });
    for (const [name, shard] of owners) await waitForPolicy(opOf(shard), ns, name, 'rolled', onDigest(v2.digest));

    let events = auditEvents();
    for (const [name, shard] of owners) {
      const expected = shard ? one.identity : main.identity;
      assert.deepEqual([...writers(events, 'imagepolicies', ns, name)], [expected], `policy ${name}`);
      assert.deepEqual([...writers(events, 'deployments', ns, name)], [expected], `Deployment ${name}`);
    }
    assert.deepEqual([...writers(events, 'rebuildtriggers', ns, 'main-trigger')], [main.identity]);
    assert.deepEqual([...writers(events, 'rebuildtriggers', ns, 'one-trigger')], [one.identity]);

    // app-0 moves from the default instance to shard one: the label change takes it out of the
    // default instance's watch (a deletion to it, which must not touch the object) and into
    // shard one's, which reports it from then on.
    const movedAt = auditEvents().length;
    kubectl(['label', 'imagepolicy', 'app-0', '-n', ns, `${SHARD_KEY}=one`]);
    const requested = `moved-${run}`;
    kubectl(['annotate', 'imagepolicy', 'app-0', '-n', ns, `patchline.dev/reconcile-requested-at=${requested}`]);
    await waitForPolicy(one, ns, 'app-0', 'reconciled by shard one', (s) => {
      const ready = s.conditions?.find((c) => c.type === 'Ready');
      return ready?.status === 'True' && s.upToDate === '1/1' && s.lastHandledReconcileAt === requested;
    });
    events = auditEvents().slice(movedAt);
    assert.deepEqual([...writers(events, 'imagepolicies', ns, 'app-0')], [one.identity], 'after the move');
    assert.ok(
      main.logs.every((l) => l.level !== 'error'),
      `the default instance logged no error: ${JSON.stringify(main.logs.filter((l) => l.level === 'error'))}`,
    );
  });
});

describe('a second install in the same cluster', function () {
  this.timeout(240_000);
  let env: RebuildEnv;
  const ops: Operator[] = [];
  const release = 'tenant-b';
  const installNs = 'tenant-b-system';
  const name = 'tenant-b-patchline';

  before(async () => {
    env = await RebuildEnv.start();
  });

  after(async () => {
    for (const op of ops) assert.equal(await op.stop(), 0);
    await env?.stop();
  });

  it('collides with nothing: each install runs under its own names and RBAC and acts only on its own', async () => {
    const nsA = newNamespace('install-a');
    const nsB = newNamespace('install-b');
    // The chart of a second release, created (not applied: an existing object is an error)
    // beside the install the suite made from manifests/. The CRDs are the cluster's, shared.
    kubectl(['create', 'namespace', installNs]);
    const rendered = spawnSync(
      HELM,
      ['template', release, CHART, '--namespace', installNs, '--set', `watchNamespaces={${nsB}}`],
      { encoding: 'utf8' },
    );
    assert.equal(rendered.status, 0, rendered.stderr);
    const created = kubectl(['create', '-f', '-'], { input: rendered.stdout, allowFailure: true });
    assert.equal(created.code, 0, `a name of the second install is taken already:\n${created.stderr}`);
    kubectl(['scale', '-n', installNs, `deployment/${name}`, '--replicas=0']);

    // Install B's operator runs with its Deployment's own settings and its ServiceAccount's
    // token: what it is told to use is what its RBAC grants.
    const deployment = parseAllDocuments(rendered.stdout)
      .map(
        (d) =>
          d.toJS() as {
            kind?: string;
            spec?: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
          },
      )
      .find((d) => d?.kind === 'Deployment')!;
    // Where it listens is the test's choice (loopback, free ports): the rest is the chart's.
    const settings = Object.fromEntries(
      deployment
        .spec!.template.spec.containers[0]!.env.filter(
          (e) => e.value !== undefined && e.name !== 'PATCHLINE_PROBE_ADDRESS',
        )
        .map((e) => [e.name, e.value!]),
    );
    const kubeconfigB = join(envOf().workDir, 'tenant-b.kubeconfig');
    writeServiceAccountKubeconfig(
      envOf().cp.kubeconfig,
      { server: envOf().cp.server, caFile: join(envOf().cp.dir, 'pki', 'apiserver.crt') },
      kubeconfigB,
      { name, namespace: installNs },
    );
    const admissionPorts = [await stablePort(), await stablePort()];
    const opA = await env.operator('op-install-a', 'patchline-leader', [
      '--watch-namespaces',
      nsA,
      '--admission-address',
      `127.0.0.1:${admissionPorts[0]!}`,
    ]);
    ops.push(opA);
    const opB = await Operator.start({
      identity: 'op-install-b',
      leaseName: settings.PATCHLINE_LEADER_ELECTION_ID!,
      env: {
        ...settings,
        KUBECONFIG: kubeconfigB,
        POD_NAMESPACE: installNs,
        PATCHLINE_ADMISSION_ADDRESS: `127.0.0.1:${admissionPorts[1]!}`,
        PATCHLINE_WEBHOOK_ADDRESS: `127.0.0.1:${env.webhookPorts[1]!}`,
        PATCHLINE_CONFIG_FILE: env.configFilePath,
      },
    });
    ops.push(opB);
    for (const op of ops) await op.waitForLog((l) => l.message === 'controllers started', 'leading');
    assert.equal(settings.PATCHLINE_WATCH_NAMESPACES, nsB);

    // Each leader keeps its own admission certificate in its own webhook configuration.
    const caBundles = (config: string) =>
      (
        JSON.parse(kubectl(['get', 'validatingwebhookconfiguration', config, '-o', 'json']).stdout) as {
          webhooks: { clientConfig: { caBundle?: string } }[];
        }
      ).webhooks.map((w) => w.clientConfig.caBundle);
    const secretCa = (ns: string, secret: string) =>
      (
        JSON.parse(kubectl(['get', 'secret', '-n', ns, secret, '-o', 'json']).stdout) as {
          data: Record<string, string>;
        }
      ).data['ca.crt'];
    await waitFor(
      () => kubectl(['get', 'secret', '-n', installNs, `${name}-admission-tls`], { allowFailure: true }).code === 0,
      "install B's admission certificate",
      60_000,
      200,
    );
    await waitFor(
      () => caBundles(`${name}-admission`).every((b) => b === secretCa(installNs, `${name}-admission-tls`)),
      "install B's CA in its own webhook configuration",
      60_000,
      200,
    );

    // Each acts on the policies of the namespace it watches, and only those.
    const v1 = await env.pusher.pushImage('shop/installs', '1', { seed: `${nsA}-v1` });
    for (const ns of [nsA, nsB]) {
      applyWorkload(ns, 'Deployment', 'web', `${env.registry.host}/shop/installs@${v1.digest}`);
      applyPolicy(ns, 'web', {
        image: `${env.registry.host}/shop/installs`,
        follow: { tag: '1' },
        workloads: { names: ['web'] },
        verify: { registries: [env.registry.host] },
      });
    }
    await waitForPolicy(opA, nsA, 'web', 'up to date', (s) => s.upToDate === '1/1');
    await waitForPolicy(opB, nsB, 'web', 'up to date', (s) => s.upToDate === '1/1');
    const events = auditEvents();
    const userB = `system:serviceaccount:${installNs}:${name}`;
    const statusWriters = (ns: string) =>
      new Set(
        events
          .filter(
            (e) =>
              e.stage === 'ResponseComplete' &&
              e.objectRef?.resource === 'imagepolicies' &&
              e.objectRef.namespace === ns &&
              e.verb === 'update',
          )
          .map((e) => e.user.username),
      );
    assert.deepEqual([...statusWriters(nsA)], [OPERATOR_USER]);
    assert.deepEqual([...statusWriters(nsB)], [userB]);
    // B never touched A's webhook configuration, nor anything of A's namespace.
    const forbidden = events.filter(
      (e) =>
        e.user.username === userB &&
        (e.objectRef?.name === 'patchline-admission' || e.objectRef?.namespace === OPERATOR_NAMESPACE) &&
        e.verb !== 'list' &&
        e.verb !== 'watch',
    );
    assert.deepEqual(
      forbidden.map((e) => `${e.verb} ${e.requestURI}`),
      [],
    );
    // And it never was refused anything: its names match its grants.
    const refused = events.filter((e) => e.user.username === userB && e.responseStatus?.code === 403);
    assert.deepEqual(
      refused.map((e) => `${e.verb} ${e.requestURI}`),
      [],
    );
  });

  after(() => {
    kubectl(['delete', '-f', '-'], {
      input: spawnSync(HELM, ['template', release, CHART, '--namespace', installNs], { encoding: 'utf8' }).stdout,
      allowFailure: true,
    });
    kubectl(['delete', 'namespace', installNs, '--wait=false'], { allowFailure: true });
  });
});
