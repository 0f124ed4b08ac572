// Rebuilds end to end, on the real control plane and the real registry: a new base digest
// is pushed, the registry notifies the operator, the trigger starts a build through its
// provider, follows it, and confirms what landed. Then the exactly-once guarantees under
// kill -9 and a leader change.
import assert from 'node:assert/strict';
import { MediaTypes } from '../../src/registry/manifest.ts';
import type { RebuildTriggerStatus } from '../../src/api/v1alpha1/index.ts';
import { waitFor } from '../support/manual-clock.ts';
import { kubectl, newNamespace } from './support/env.ts';
import type { Operator } from './support/operator.ts';
import {
  RebuildEnv,
  applyTrigger,
  createBuildSecret,
  eventReasons,
  installTektonCrd,
  triggerStatus,
} from './support/rebuild-env.ts';

const until = async (what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> =>
  waitFor(check, what, timeoutMs, 100);

/** Waits for the trigger to have learned a base digest (its baseline) and be Idle. */
async function learned(ns: string, name: string, digest: string): Promise<void> {
  await until(`${name} learned ${digest}`, () => {
    const s = triggerStatus(ns, name);
    return s.bases?.[0]?.digest === digest && s.phase === 'Idle';
  });
}

async function landedOn(
  ns: string,
  name: string,
  baseDigest: string,
  timeoutMs = 60_000,
): Promise<RebuildTriggerStatus> {
  let status: RebuildTriggerStatus = {};
  await until(
    `${name} landed a rebuild on ${baseDigest}`,
    () => {
      status = triggerStatus(ns, name);
      return status.phase === 'Landed' && status.build?.baseDigest === baseDigest;
    },
    timeoutMs,
  );
  return status;
}

describe('RebuildTrigger end to end', function () {
  this.timeout(300_000);
  let env: RebuildEnv;
  let op: Operator;

  before(async () => {
    env = await RebuildEnv.start({ buildMs: 300 });
    op = await env.operator('op-rebuild', 'e2e-rebuild');
    await op.waitForLog((l) => l.message === 'controllers started', 'leading');
  });

  const namespaces: string[] = [];
  const namespace = (prefix: string): string => {
    const ns = newNamespace(prefix);
    namespaces.push(ns);
    return ns;
  };

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(op.recentLogs());
  });

  after(async () => {
    await op?.stop();
    await env?.stop();
    // Their triggers follow a registry that is gone now: do not leave them to later tests.
    for (const ns of namespaces) kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it('webhook provider: a new base digest is rebuilt, lands with verified provenance, and is reported', async () => {
    const ns = namespace('rebuild');
    createBuildSecret(ns);
    const base1 = await env.pusher.pushImage('base/python', '3.12', { seed: `${ns}-b1` });
    const before = await env.pusher.pushImage('team/app', '1.0', { seed: `${ns}-a1` });
    applyTrigger(ns, 'app', {
      baseImages: [{ image: env.image('base/python', '3.12') }],
      target: { image: env.image('team/app', '1.0') },
      build: {
        webhook: { url: `${env.builds.url}/builds`, statusURL: `${env.builds.url}/builds/$(build.id)` },
        credentialsRef: { name: 'build-creds' },
      },
      settle: '0s',
    });
    await learned(ns, 'app', base1.digest);
    assert.equal(env.builds.builds.size, 0, 'the first digest seen is a baseline: no build');

    const base2 = await env.pusher.pushImage('base/python', '3.12', { seed: `${ns}-b2` });
    const status = await landedOn(ns, 'app', base2.digest);
    const built = [...env.builds.builds.values()];
    assert.equal(built.length, 1, 'exactly one build');
    const rebuilt = built[0]!;
    assert.equal(rebuilt.baseDigest, base2.digest);
    assert.equal(status.bases?.[0]?.previousDigest, base1.digest);
    assert.equal(status.build?.id, rebuilt.id);
    assert.equal(status.build?.phase, 'Succeeded');
    assert.equal(status.build?.targetDigestBefore, before.digest);
    assert.equal(status.build?.outputDigest, rebuilt.digest);
    assert.equal(status.landed?.digest, rebuilt.digest);
    assert.equal(status.landed?.provenance, 'Verified');
    assert.equal(status.landed?.baseDigest, base2.digest);
    const cond = (type: string) => status.conditions?.find((c) => c.type === type);
    assert.equal(cond('Ready')?.status, 'True');
    assert.equal(cond('UpToDate')?.status, 'True');
    assert.deepEqual(eventReasons(ns, 'app'), ['BaseChanged', 'BuildStarted', 'BuildSucceeded', 'Landed']);
    const row = kubectl(['get', 'rbt', 'app', '-n', ns, '--no-headers']).stdout;
    assert.match(row, /Landed/);
    assert.equal((await op.metric('patchline_builds_total', { provider: 'webhook', result: 'started' })) >= 1, true);
    assert.equal((await op.metric('patchline_builds_total', { provider: 'webhook', result: 'succeeded' })) >= 1, true);
    assert.ok((await op.metric('patchline_time_to_landed_seconds_count', { provider: 'webhook' })) >= 1);
  });

  it('a failing build is retried, then stalls with the provider message and a link', async () => {
    const ns = namespace('rebuild-fail');
    createBuildSecret(ns);
    const failing = new Set<string>();
    const base1 = await env.pusher.pushImage('base/failing', '1', { seed: `${ns}-b1` });
    await env.pusher.pushImage('team/failing', '1', { seed: `${ns}-a1` });
    applyTrigger(ns, 'fail', {
      baseImages: [{ image: env.image('base/failing', '1') }],
      target: { image: env.image('team/failing', '1') },
      build: {
        webhook: { url: `${env.builds.url}/builds`, statusURL: `${env.builds.url}/builds/$(build.id)` },
        credentialsRef: { name: 'build-creds' },
        retries: 0,
      },
      settle: '0s',
    });
    await learned(ns, 'fail', base1.digest);
    const base2 = await env.pusher.pushImage('base/failing', '1', { seed: `${ns}-b2` });
    failing.add(base2.digest);
    env.builds.failWhen((b) => failing.has(b.baseDigest));
    let status: RebuildTriggerStatus = {};
    await until('stalled', () => {
      status = triggerStatus(ns, 'fail');
      return status.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True') ?? false;
    });
    assert.equal(status.build?.phase, 'Failed');
    const ready = status.conditions?.find((c) => c.type === 'Ready');
    assert.equal(ready?.status, 'False');
    assert.equal(ready?.reason, 'BuildFailed');
    assert.ok(ready?.message.includes(`${env.builds.url}/builds/`), ready?.message);
    assert.ok(eventReasons(ns, 'fail').includes('Stalled'));

    // Fixed at the build service; the user asks for another try.
    failing.clear();
    kubectl(['annotate', '--overwrite', 'rbt', 'fail', '-n', ns, 'patchline.dev/reconcile-requested-at=retry-1']);
    const landed = await landedOn(ns, 'fail', base2.digest);
    assert.equal(landed.build?.attempt, 2);
    assert.equal(landed.history?.[0]?.phase, 'Failed');
  });

  it('Job provider: a Job from the template, owned by the trigger, reporting its digest', async () => {
    const ns = namespace('rebuild-job');
    const base1 = await env.pusher.pushImage('base/job', '1', { seed: `${ns}-b1` });
    await env.pusher.pushImage('team/job', '1', { seed: `${ns}-a1` });
    // What the build will push: pushed beforehand under another tag, so its digest is known.
    const output = await env.pusher.pushImage('team/job', 'candidate', { seed: `${ns}-out` });
    applyTrigger(ns, 'job', {
      baseImages: [{ image: env.image('base/job', '1') }],
      target: { image: env.image('team/job', '1') },
      build: {
        job: {
          digestContainer: 'build',
          template: {
            template: {
              metadata: { annotations: { 'testcp.patchline.dev/termination-message': output.digest } },
              spec: {
                restartPolicy: 'Never',
                containers: [
                  {
                    name: 'build',
                    image: 'moby/buildkit:rootless',
                    args: ['--opt', 'build-arg:BASE=$(base.ref)', '--output', 'name=$(target.image)'],
                  },
                ],
              },
            },
          },
        },
      },
      settle: '0s',
    });
    await learned(ns, 'job', base1.digest);
    const base2 = await env.pusher.pushImage('base/job', '1', { seed: `${ns}-b2` });
    let status: RebuildTriggerStatus = {};
    // The Job is watched: its end wakes the trigger at once. Polled, it would be looked at
    // only after the 60 s fallback, past this wait.
    await until(
      'job build succeeded, seen from the watched Job',
      () => {
        status = triggerStatus(ns, 'job');
        return status.build?.phase === 'Succeeded';
      },
      30_000,
    );
    assert.equal(status.build?.outputDigest, output.digest, 'read from the build container termination message');
    const job = JSON.parse(kubectl(['get', 'job', status.build.id!, '-n', ns, '-o', 'json']).stdout) as {
      metadata: { labels: Record<string, string>; ownerReferences: { kind: string; name: string }[] };
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    assert.equal(job.metadata.ownerReferences[0]?.kind, 'RebuildTrigger');
    assert.equal(job.metadata.labels['patchline.dev/build-id'], status.build?.correlationId);
    assert.ok(
      job.spec.template.spec.containers[0]!.args.includes(
        `build-arg:BASE=${env.registry.host}/base/job@${base2.digest}`,
      ),
    );
    // The build "pushes": the output lands on the target tag. It declares no base.
    await env.pusher.copyManifest('team/job', 'candidate', '1', MediaTypes.ociManifest);
    const landed = await landedOn(ns, 'job', base2.digest);
    assert.equal(landed.landed?.digest, output.digest);
    assert.equal(landed.landed?.provenance, 'Unknown');
    assert.match(landed.conditions?.find((c) => c.type === 'Ready')?.message ?? '', /provenance unknown/);
  });

  it('Tekton provider: a PipelineRun with the base as a parameter, followed to its result', async () => {
    installTektonCrd();
    const ns = namespace('rebuild-tekton');
    const base1 = await env.pusher.pushImage('base/tekton', '1', { seed: `${ns}-b1` });
    await env.pusher.pushImage('team/tekton', '1', { seed: `${ns}-a1` });
    applyTrigger(ns, 'tk', {
      baseImages: [{ image: env.image('base/tekton', '1') }],
      target: { image: env.image('team/tekton', '1') },
      build: { tekton: { pipelineRef: { name: 'build-image' }, params: { BASE_IMAGE: '$(base.ref)' } } },
      settle: '0s',
    });
    await learned(ns, 'tk', base1.digest);
    const base2 = await env.pusher.pushImage('base/tekton', '1', { seed: `${ns}-b2` });
    let status: RebuildTriggerStatus = {};
    await until('pipelinerun created', () => {
      status = triggerStatus(ns, 'tk');
      return status.build?.phase === 'Queued' || status.build?.phase === 'Running';
    });
    const name = status.build!.id!;
    const run = JSON.parse(kubectl(['get', 'pipelineruns.tekton.dev', name, '-n', ns, '-o', 'json']).stdout) as {
      spec: { pipelineRef: { name: string }; params: { name: string; value: string }[] };
    };
    assert.equal(run.spec.pipelineRef.name, 'build-image');
    assert.deepEqual(run.spec.params, [
      { name: 'BASE_IMAGE', value: `${env.registry.host}/base/tekton@${base2.digest}` },
    ]);
    // Tekton's controller is not here: the test plays it, writing the run's status.
    const digest = `sha256:${'c'.repeat(64)}`;
    kubectl([
      'patch',
      'pipelineruns.tekton.dev',
      name,
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: {
          conditions: [{ type: 'Succeeded', status: 'True', reason: 'Succeeded', message: 'Tasks Completed: 2' }],
          results: [{ name: 'IMAGE_DIGEST', value: digest }],
        },
      }),
    ]);
    // The PipelineRun is watched: its status change wakes the trigger (the fallback look is 60 s away).
    await until(
      'tekton build succeeded, waiting for the target tag to show its digest',
      () => {
        status = triggerStatus(ns, 'tk');
        return status.build?.phase === 'Succeeded' && status.phase === 'Verifying';
      },
      30_000,
    );
    assert.equal(status.build?.outputDigest, digest);
    assert.match(status.build?.message ?? '', /Tasks Completed: 2/);
  });
});

describe('RebuildTrigger exactly once', function () {
  this.timeout(900_000);

  it('kill -9 at random moments, at least 20 times: one build per base digest, none missed', async () => {
    // Start requests are answered after 300 ms: a kill in that gap leaves a build started
    // that the operator never heard of, the hardest moment for exactly-once.
    const env = await RebuildEnv.start({ buildMs: 400, holdStartMs: 300 });
    const ns = newNamespace('chaos');
    createBuildSecret(ns);
    let op = await env.operator('op-chaos', 'e2e-chaos');
    const pushed: string[] = [];
    let kills = 0;
    let killsOnStart = 0;
    let stopKilling = false;
    let onStart: (() => void) | undefined;
    env.builds.onPost = () => onStart?.();
    // Killer: kill -9 at a random moment after each start, or — one time in three — just as
    // a build start request arrives; then start again (same pod name, as a restarted pod would).
    const killer = (async () => {
      while (!stopKilling) {
        const atStart = Math.random() < 1 / 3;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 200 + Math.floor(Math.random() * 2_500));
          onStart = atStart
            ? () => {
                clearTimeout(timer);
                killsOnStart++;
                resolve();
              }
            : undefined;
        });
        onStart = undefined;
        if (stopKilling) break;
        await op.kill();
        kills++;
        op = await env.operator('op-chaos', 'e2e-chaos');
      }
    })();
    try {
      const base0 = await env.pusher.pushImage('base/chaos', '1', { seed: `${ns}-b0` });
      await env.pusher.pushImage('team/chaos', '1', { seed: `${ns}-a0` });
      applyTrigger(ns, 'chaos', {
        baseImages: [{ image: env.image('base/chaos', '1') }],
        target: { image: env.image('team/chaos', '1') },
        build: {
          webhook: { url: `${env.builds.url}/builds`, statusURL: `${env.builds.url}/builds/$(build.id)` },
          credentialsRef: { name: 'build-creds' },
        },
        settle: '0s',
      });
      await learned(ns, 'chaos', base0.digest);
      for (let round = 1; round <= 30 && (kills < 20 || round <= 5); round++) {
        const base = await env.pusher.pushImage('base/chaos', '1', { seed: `${ns}-b${round}` });
        pushed.push(base.digest);
        await landedOn(ns, 'chaos', base.digest, 240_000);
      }
    } finally {
      stopKilling = true;
      await killer;
      await op.stop();
      await env.stop();
      kubectl(['delete', 'namespace', ns, '--wait=false']);
    }
    const perBase = env.builds.buildsPerBaseDigest();
    console.log(
      `      ${kills} kills (${killsOnStart} as a start request arrived), ${pushed.length} base digests, ${env.builds.builds.size} builds, ${env.builds.posts.length} start requests`,
    );
    assert.ok(kills >= 20, `killed ${kills} times`);
    for (const d of pushed) assert.equal(perBase.get(d), 1, `one build for ${d}`);
    assert.equal(env.builds.builds.size, pushed.length, 'no other builds');
  });

  it('two replicas, the leader killed mid-build: the new leader follows the same build to the end', async () => {
    const env = await RebuildEnv.start({ buildMs: 6_000 });
    const ns = newNamespace('failover');
    createBuildSecret(ns);
    const fast = ['--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '500ms'];
    const a = await env.operator('op-a', 'e2e-failover', fast);
    await a.waitForLog((l) => l.message === 'controllers started', 'a leads');
    const b = await env.operator('op-b', 'e2e-failover', fast, 1);
    try {
      const base1 = await env.pusher.pushImage('base/failover', '1', { seed: `${ns}-b1` });
      await env.pusher.pushImage('team/failover', '1', { seed: `${ns}-a1` });
      applyTrigger(ns, 'fo', {
        baseImages: [{ image: env.image('base/failover', '1') }],
        target: { image: env.image('team/failover', '1') },
        build: {
          webhook: { url: `${env.builds.url}/builds`, statusURL: `${env.builds.url}/builds/$(build.id)` },
          credentialsRef: { name: 'build-creds' },
        },
        settle: '0s',
      });
      await learned(ns, 'fo', base1.digest);
      const base2 = await env.pusher.pushImage('base/failover', '1', { seed: `${ns}-b2` });
      await until('build running', () => ['Queued', 'Running'].includes(triggerStatus(ns, 'fo').build?.phase ?? ''));
      await a.kill();
      await b.waitForLog((l) => l.message === 'controllers started', 'b takes over', 30_000);
      const landed = await landedOn(ns, 'fo', base2.digest);
      assert.equal(env.builds.builds.size, 1, 'one build');
      assert.equal(env.builds.buildsPerBaseDigest().get(base2.digest), 1);
      assert.equal(landed.landed?.provenance, 'Verified');
    } finally {
      await a.stop();
      await b.stop();
      await env.stop();
      kubectl(['delete', 'namespace', ns, '--wait=false']);
    }
  });
});
