// What keeps the operator economical at scale, end to end (the operator a separate process
// under its shipped RBAC):
//   - a registry request budget too small for the intervals: requestsPerMinute 12 for the local
//     registry, a RebuildTrigger following nine references there at 30 s (18 a minute). It must
//     say so (IntervalMet False, with the figures), the metric must give the stretch, and once
//     the trigger follows fewer references the condition must go;
//   - pods of workloads no policy governs are not cached (asserted on the cache, not on RSS),
//     and the pods of a workload a new policy comes to govern are read at once;
//   - an API server restart: every watch expires, every informer relists, and what changes
//     after it is acted on.
import assert from 'node:assert/strict';
import { waitFor } from '../support/manual-clock.ts';
import type { ImagePolicy } from '../../src/api/v1alpha1/index.ts';
import { env as envOf, kubectl, newNamespace } from './support/env.ts';
import type { Operator } from './support/operator.ts';
import { applyPolicy, applyWorkload, runningPods, waitForPolicy, workload } from './support/policies.ts';
import { RebuildEnv, applyTrigger, createBuildSecret, triggerStatus } from './support/rebuild-env.ts';

describe('a registry request budget too small for the intervals', function () {
  this.timeout(180_000);
  let env: RebuildEnv;
  let op: Operator;
  let ns: string;

  before(async () => {
    env = await RebuildEnv.start({}, { requestsPerMinute: 12 });
    // Only this namespace: the suite keeps earlier tests' resources, and one of their registries
    // may have listened on the port this registry got, adding its references to the need counted.
    ns = newNamespace('budget');
    op = await env.operator('op-budget', `e2e-budget-${Date.now()}`, ['--watch-namespaces', ns]);
    await op.waitForLog((l) => l.message === 'controllers started', 'leading');
  });

  after(async () => {
    if (op) assert.equal(await op.stop(), 0);
    await env?.stop();
  });

  it('is reported on the resource (IntervalMet False) and as a metric, and cleared when the need fits', async () => {
    createBuildSecret(ns);
    const bases = Array.from({ length: 8 }, (_, i) => `base/budget${i}`);
    for (const b of bases) await env.pusher.pushImage(b, '1', { seed: `${ns}-${b}` });
    await env.pusher.pushImage('team/budget', '1', { seed: `${ns}-target` });
    const spec = (n: number) => ({
      baseImages: bases.slice(0, n).map((b) => ({ image: env.image(b, '1') })),
      target: { image: env.image('team/budget', '1') },
      build: {
        webhook: { url: `${env.builds.url}/builds`, statusURL: `${env.builds.url}/builds/$(build.id)` },
        credentialsRef: { name: 'build-creds' },
      },
      interval: '30s',
    });
    const intervalMet = () => triggerStatus(ns, 'many').conditions?.find((c) => c.type === 'IntervalMet');

    applyTrigger(ns, 'many', spec(8));
    await waitFor(() => intervalMet() !== undefined, 'IntervalMet reported', 60_000, 200);
    const met = intervalMet()!;
    assert.equal(met.status, 'False');
    assert.equal(met.reason, 'RequestBudgetExceeded');
    assert.match(
      met.message,
      new RegExp(
        `^${env.registry.host.replace(/\./g, '\\.')} allows 12 requests a minute and the references followed there need 18 at their intervals: checked every 45s instead of every 30s`,
      ),
    );
    assert.equal(await op.metric('patchline_watcher_interval_stretch_ratio', { registry: env.registry.host }), 1.5);
    assert.equal(await op.metric('patchline_watcher_needed_requests_per_minute', { registry: env.registry.host }), 18);
    assert.ok(
      op.logs.some((l) => l.message === 'the request budget cannot check every reference at its interval'),
      'logged once',
    );

    // Two bases and the target need 6 a minute: within the budget.
    applyTrigger(ns, 'many', spec(2));
    await waitFor(() => intervalMet() === undefined, 'IntervalMet cleared', 60_000, 200);
    assert.equal(await op.metric('patchline_watcher_interval_stretch_ratio', { registry: env.registry.host }), 1);
    assert.equal(triggerStatus(ns, 'many').conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  });
});

describe('pods of workloads no policy governs', function () {
  this.timeout(180_000);
  let env: RebuildEnv;
  let op: Operator;

  before(async () => {
    env = await RebuildEnv.start();
    op = await env.operator('op-governed', `e2e-governed-${Date.now()}`);
    await op.waitForLog((l) => l.message === 'controllers started', 'leading');
  });

  after(async () => {
    if (op) assert.equal(await op.stop(), 0);
    await env?.stop();
  });

  const governed = () => op.metric('patchline_pods_governed');
  const cachedPods = () => op.metric('patchline_informer_objects', { informer: 'pods' });

  it('are not cached, and are read at once when a policy comes to govern their workload', async () => {
    const ns = newNamespace('governed');
    const v1 = await env.pusher.pushImage('shop/gov', '1.0', { seed: `${ns}-v1` });
    const pinned = `${env.registry.host}/shop/gov@${v1.digest}`;
    const baseline = await governed();
    applyWorkload(ns, 'Deployment', 'crowd', pinned, { replicas: 10 });
    applyWorkload(ns, 'Deployment', 'chosen', pinned, { replicas: 2 });
    await waitFor(async () => (await runningPods(ns, 'crowd')).length === 10, 'crowd running', 90_000, 200);
    await waitFor(async () => (await runningPods(ns, 'chosen')).length === 2, 'chosen running', 90_000, 200);
    const cachedBefore = await cachedPods();
    assert.equal(await governed(), baseline, 'no pod cached: no policy governs them');
    assert.equal(cachedBefore, baseline);

    // A policy comes to govern one workload whose pods already run its digest: nothing about
    // the pods changes, so only reading them again can show what they run.
    applyPolicy(ns, 'chosen', {
      image: `${env.registry.host}/shop/gov`,
      follow: { tag: '1.0' },
      workloads: { names: ['chosen'] },
      verify: { registries: [env.registry.host] },
    });
    const s = await waitForPolicy(
      op,
      ns,
      'chosen',
      'up to date from the pods it runs',
      (x) => workload(x, 'Deployment', 'chosen')?.state === 'UpToDate',
    );
    assert.equal(workload(s, 'Deployment', 'chosen')?.runningDigest, v1.digest);
    let full = NaN;
    await waitFor(async () => (full = await governed()) === baseline + 2, 'two pods cached', 30_000, 100).catch(
      (err: unknown) => {
        throw new Error(`${String(err)}: ${full} pods cached, baseline ${baseline}`);
      },
    );
    assert.equal(await cachedPods(), baseline + 2, 'the ten pods of the ungoverned Deployment are not cached');
  });
});

describe('an API server restart (every watch expires)', function () {
  this.timeout(240_000);
  let env: RebuildEnv;
  let op: Operator;

  before(async () => {
    env = await RebuildEnv.start();
    // Without leader election: a single API server away for longer than the renew deadline
    // costs the leader its lease, and the operator exits to restart clean (tested in
    // leader-election.test.ts); here the same process must see its watches expire.
    op = await env.operator('op-relist', `e2e-relist-${Date.now()}`, ['--leader-elect', 'false']);
    await op.waitForLog((l) => l.message === 'controllers started', 'started');
  });

  after(async () => {
    if (op) assert.equal(await op.stop(), 0);
    await env?.stop();
  });

  const counter = (name: string) => (informer: string) => op.metric(name, { informer });
  const lists = counter('patchline_informer_lists_total');
  const watches = counter('patchline_informer_watches_total');

  it('ends every watch and expires every resourceVersion: every informer relists after a 410 and watches again, and the operator acts on what changes after it', async () => {
    const ns = newNamespace('relist');
    const v1 = await env.pusher.pushImage('shop/relist', '1.0', { seed: `${ns}-v1` });
    applyWorkload(ns, 'Deployment', 'web', `${env.registry.host}/shop/relist@${v1.digest}`, { replicas: 2 });
    applyPolicy(ns, 'web', {
      image: `${env.registry.host}/shop/relist`,
      follow: { tag: '1.0' },
      workloads: { names: ['web'] },
      verify: { registries: [env.registry.host] },
    });
    await waitForPolicy(op, ns, 'web', 'up to date', (s) => s.upToDate === '1/1' && s.latest?.digest === v1.digest);
    const informers = ['imagepolicies', 'rebuildtriggers', 'gitwritebacks', 'deployments', 'pods'];
    const watchesBefore = await Promise.all(informers.map(watches));
    const listsBefore = await Promise.all(informers.map(lists));

    const tookMs = await envOf().cp.restartApiServer();
    // Every watch ended with the old server, and testcp compacted etcd while it was down:
    // every informer's resourceVersion is gone, so each must be told 410 and relist.
    await waitFor(
      async () => (await Promise.all(informers.map(lists))).every((n, i) => n > listsBefore[i]!),
      `every informer relisted (${informers.join(', ')})`,
      90_000,
      200,
    );
    await waitFor(
      async () => (await Promise.all(informers.map(watches))).every((n, i) => n > watchesBefore[i]!),
      `every informer watching again (${informers.join(', ')})`,
      90_000,
      200,
    );
    const toldGone = new Set(
      op.logs.filter((l) => l.message === 'resourceVersion expired; relisting').map((l) => String(l.informer)),
    );
    assert.deepEqual(
      informers.filter((i) => !toldGone.has(i)),
      [],
      `each informer relisted after a 410 (API server back after ${tookMs} ms)`,
    );

    // The caches are whole again and the watches live: a new digest is rolled out.
    const v2 = await env.pusher.pushImage('shop/relist', '1.0', { seed: `${ns}-v2` });
    const s = await waitForPolicy(
      op,
      ns,
      'web',
      'rolled to the digest pushed after the restart',
      (x) => x.upToDate === '1/1' && x.latest?.digest === v2.digest,
    );
    assert.equal(workload(s, 'Deployment', 'web')?.runningDigest, v2.digest);
    assert.equal((await runningPods(ns, 'web')).length, 2);
  });

  it('restarted while twenty rollouts are in flight: every one completes, each decided once', async () => {
    const ns = newNamespace('relist-load');
    const N = 20;
    const v1 = await env.pusher.pushImage('shop/load', '1.0', { seed: `${ns}-v1` });
    for (let i = 0; i < N; i++) {
      applyWorkload(ns, 'Deployment', `w${i}`, `${env.registry.host}/shop/load@${v1.digest}`);
      applyPolicy(ns, `p${i}`, {
        image: `${env.registry.host}/shop/load`,
        follow: { tag: '1.0' },
        workloads: { names: [`w${i}`] },
        verify: { registries: [env.registry.host] },
      });
    }
    /** Whether every policy of the namespace is up to date on `digest` (one list per look). */
    const allOn = (digest: string) => (): boolean => {
      const list = JSON.parse(kubectl(['get', 'imagepolicies', '-n', ns, '-o', 'json']).stdout) as {
        items: ImagePolicy[];
      };
      return (
        list.items.length === N &&
        list.items.every((p) => p.status?.upToDate === '1/1' && p.status.latest?.digest === digest)
      );
    };
    await waitFor(allOn(v1.digest), 'all on v1', 120_000, 500);
    // A new digest for all twenty at once (the registry notifies the operator), and the API
    // server restarted (etcd compacted) while their rollouts are being decided and applied.
    const v2 = await env.pusher.pushImage('shop/load', '1.0', { seed: `${ns}-v2` });
    await op.waitForLog((l) => l.reason === 'RolloutStarted' && l.digest === v2.digest, 'the first rollout started');
    const tookMs = await envOf().cp.restartApiServer();
    await waitFor(allOn(v2.digest), 'all twenty on v2 after the restart', 180_000, 500);
    const started = op.logs.filter((l) => l.audit === true && l.reason === 'RolloutStarted' && l.digest === v2.digest);
    const perPolicy = new Map<string, number>();
    for (const l of started) perPolicy.set(String(l.name), (perPolicy.get(String(l.name)) ?? 0) + 1);
    console.log(
      `      API server back after ${tookMs} ms; rollouts started for v2: ${started.length} (${perPolicy.size} policies)`,
    );
    const twice = [...perPolicy].filter(([, n]) => n > 1).map(([name]) => name);
    const story = op.logs
      .filter((l) => {
        const resource = typeof l.resource === 'string' ? l.resource : '';
        return twice.includes(String(l.name)) || twice.some((n) => resource.endsWith(`/${n}`));
      })
      .filter((l) => l.level !== 'debug')
      .map((l) => JSON.stringify(l))
      .join('\n');
    assert.deepEqual(
      Array.from({ length: N }, (_, i) => perPolicy.get(`p${i}`) ?? 0),
      Array.from({ length: N }, () => 1),
      `each rollout decided exactly once: none missed, none repeated\n${story}`,
    );
  });
});
