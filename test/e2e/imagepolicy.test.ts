// ImagePolicy end to end, on the real control plane and a real registry that notifies the
// operator of pushes: a new digest lands, the workloads are pinned to it and their pods run
// it; a bad image is rolled back; unapproved and too-old images are refused and reported;
// Manual mode waits for approval; a revert loop is detected; StatefulSets and DaemonSets too.
import assert from 'node:assert/strict';
import { kubectl, newNamespace } from './support/env.ts';
import type { Operator } from './support/operator.ts';
import { applyPolicy, applyWorkload, runningPods, specImage, waitForPolicy, workload } from './support/policies.ts';
import { RebuildEnv, applyTrigger, createBuildSecret, eventReasons, triggerStatus } from './support/rebuild-env.ts';

describe('ImagePolicy: follow, check, roll out, verify, roll back', () => {
  let e: RebuildEnv;
  let operator: Operator;

  before(async () => {
    e = await RebuildEnv.start();
    operator = await e.operator('op-ipol', `e2e-ipol-${Date.now()}`);
    await operator.waitForLog((l) => l.message === 'controllers started', 'leading');
  });

  after(async () => {
    if (operator) assert.equal(await operator.stop(), 0);
    await e?.stop();
  });

  it('rolls a 3-replica Deployment to each new digest; its pods run it; kubectl shows it up to date', async () => {
    const ns = newNamespace('ipol');
    const v1 = await e.pusher.pushImage('shop/web', '1.0', { seed: 'web-v1' });
    applyWorkload(ns, 'Deployment', 'web', e.image('shop/web', '1.0'), { replicas: 3 });
    applyPolicy(ns, 'web', {
      image: `${e.registry.host}/shop/web`,
      follow: { tag: '1.0' },
      workloads: { names: ['web'] },
      verify: { registries: [e.registry.host], requireDigest: true },
    });
    const repo = `${e.registry.host}/shop/web`;
    let s = await waitForPolicy(
      operator,
      ns,
      'web',
      'v1 up to date',
      (x) => workload(x, 'Deployment', 'web')?.state === 'UpToDate',
    );
    assert.equal(specImage(ns, 'Deployment', 'web'), `${repo}@${v1.digest}`, 'pinned by digest');
    assert.equal(
      specImage(ns, 'Deployment', 'web', 'sidecar'),
      'registry.example.com/mesh/proxy:1.0',
      'sidecar untouched',
    );
    assert.equal(s.latest?.digest, v1.digest);
    assert.equal(s.latest?.verified, true);

    // A new digest lands on the tag: the registry notifies the operator, which rolls it out.
    const v2 = await e.pusher.pushImage('shop/web', '1.0', { seed: 'web-v2' });
    s = await waitForPolicy(
      operator,
      ns,
      'web',
      'v2 up to date',
      (x) => workload(x, 'Deployment', 'web')?.state === 'UpToDate' && x.latest?.digest === v2.digest,
    );
    const w = workload(s, 'Deployment', 'web')!;
    assert.equal(w.runningDigest, v2.digest);
    assert.equal(w.desiredDigest, v2.digest);
    assert.equal(w.previousDigest, v1.digest, 'the rollback target is kept');
    assert.equal(s.upToDate, '1/1');
    const pods = await runningPods(ns, 'web');
    assert.equal(pods.length, 3);
    for (const p of pods) {
      const app = p.status?.containerStatuses?.find((c) => c.name === 'app');
      assert.equal(app?.imageID, `${repo}@${v2.digest}`, `${p.metadata.name} runs the new digest`);
      assert.equal(app?.ready, true);
    }
    const cond = (type: string) => s.conditions?.find((c) => c.type === type);
    assert.equal(cond('Ready')?.status, 'True');
    assert.equal(cond('Compliant')?.status, 'True');
    assert.equal(cond('RolloutProgressing')?.reason, 'Complete');
    const table = kubectl(['get', 'imagepolicies', '-n', ns]).stdout;
    assert.match(table, /NAME\s+IMAGE\s+DIGEST\s+COMPLIANT\s+UP-TO-DATE\s+READY\s+STATUS\s+AGE/);
    assert.match(
      table,
      new RegExp(`web\\s+${repo.replace(/[.]/g, '\\.')}\\s+${v2.digest.slice(0, 19)}\\s+True\\s+1/1\\s+True`),
    );
    assert.ok(eventReasons(ns, 'web').includes('RolledOut'));
  });

  it('rolls back an image whose pods never become ready, and holds that digest back', async () => {
    const ns = newNamespace('ipol-bad');
    const v1 = await e.pusher.pushImage('shop/bad', '1.0', { seed: 'bad-v1' });
    const v2 = await e.pusher.pushImage('shop/bad', 'next', { seed: 'bad-v2' });
    applyWorkload(ns, 'Deployment', 'bad', e.image('shop/bad', '1.0'), {
      replicas: 2,
      podAnnotations: { 'testcp.patchline.dev/never-ready-images': v2.digest },
    });
    applyPolicy(ns, 'bad', {
      image: `${e.registry.host}/shop/bad`,
      follow: { tag: '1.0' },
      workloads: { names: ['bad'] },
      rollout: { progressDeadline: '10s' },
    });
    await waitForPolicy(
      operator,
      ns,
      'bad',
      'v1 up to date',
      (x) => workload(x, 'Deployment', 'bad')?.state === 'UpToDate',
    );
    // The bad image lands on the followed tag.
    await e.pusher.copyManifest('shop/bad', 'next', '1.0', v2.mediaType);
    const s = await waitForPolicy(
      operator,
      ns,
      'bad',
      'failed and rolled back',
      (x) => workload(x, 'Deployment', 'bad')?.state === 'Failed',
    );
    const repo = `${e.registry.host}/shop/bad`;
    assert.equal(s.failedDigest, v2.digest);
    assert.match(workload(s, 'Deployment', 'bad')!.message ?? '', /rolled back to sha256:/);
    assert.equal(specImage(ns, 'Deployment', 'bad'), `${repo}@${v1.digest}`, 'rolled back to the previous digest');
    assert.equal(s.conditions?.find((c) => c.type === 'Ready')?.reason, 'RolloutFailed');
    assert.equal(s.conditions?.find((c) => c.type === 'Stalled')?.status, 'True');
    assert.ok(eventReasons(ns, 'bad').includes('RolledBack'));
    // The audit trail: the same decision as a structured log line.
    // (The operator's stdout is read asynchronously: wait for the line rather than look once.)
    const audit = await operator.waitForLog(
      (l) => l.audit === true && l.reason === 'RolledBack' && l.namespace === ns,
      'audit line for the rollback',
    );
    assert.equal(audit.kind, 'ImagePolicy');
    assert.match(audit.message, new RegExp(`rolled back to ${v1.digest.slice(0, 19)}`));
    await operator.waitUntil(async () => {
      const pods = await runningPods(ns, 'bad');
      return (
        pods.length === 2 &&
        pods.every(
          (p) => p.status?.containerStatuses?.find((c) => c.name === 'app')?.imageID === `${repo}@${v1.digest}`,
        )
      );
    }, 'pods back on v1');
    // Not retried: the workload stays on v1 while v2 is the newest digest.
    assert.equal(specImage(ns, 'Deployment', 'bad'), `${repo}@${v1.digest}`);
  });

  it('refuses an image from an unapproved registry and one that is too old, and reports them', async () => {
    const ns = newNamespace('ipol-refuse');
    await e.pusher.pushImage('shop/old', '1.0', { seed: 'old', created: '2020-01-01T00:00:00Z' });
    applyWorkload(ns, 'Deployment', 'old', e.image('shop/old', '1.0'));
    applyWorkload(ns, 'Deployment', 'foreign', e.image('shop/foreign', '1.0'));
    await e.pusher.pushImage('shop/foreign', '1.0', { seed: 'foreign' });
    applyPolicy(ns, 'old', {
      image: `${e.registry.host}/shop/old`,
      follow: { tag: '1.0' },
      workloads: { names: ['old'] },
      verify: { maxAge: '720h' },
    });
    applyPolicy(ns, 'foreign', {
      image: `${e.registry.host}/shop/foreign`,
      follow: { tag: '1.0' },
      workloads: { names: ['foreign'] },
      verify: { registries: ['approved.example.com'] },
    });
    const old = await waitForPolicy(
      operator,
      ns,
      'old',
      'refused',
      (x) => x.latest?.verified === false && !!x.violations?.length,
    );
    assert.equal(old.conditions?.find((c) => c.type === 'Ready')?.reason, 'CandidateRefused');
    assert.match(
      old.conditions?.find((c) => c.type === 'Ready')?.message ?? '',
      /age: built 2020-01-01T00:00:00Z, older than the maximum age 720h/,
    );
    assert.equal(workload(old, 'Deployment', 'old')?.state, 'Blocked');
    assert.deepEqual(
      old.violations?.map((v) => [v.workload, v.container, v.rule]),
      [
        ['Deployment/old', 'app', 'digest'],
        ['Deployment/old', 'app', 'age'],
      ],
    );
    assert.equal(old.conditions?.find((c) => c.type === 'Compliant')?.status, 'False');
    const foreign = await waitForPolicy(
      operator,
      ns,
      'foreign',
      'refused',
      (x) => x.latest?.verified === false && !!x.violations?.length,
    );
    assert.match(
      foreign.conditions?.find((c) => c.type === 'Ready')?.message ?? '',
      /registry: .* is not from an approved registry/,
    );
    assert.deepEqual(
      foreign.violations?.map((v) => [v.workload, v.rule]),
      [
        ['Deployment/foreign', 'registry'],
        ['Deployment/foreign', 'digest'],
      ],
    );
    // Neither was touched.
    assert.equal(specImage(ns, 'Deployment', 'old'), e.image('shop/old', '1.0'));
    assert.equal(specImage(ns, 'Deployment', 'foreign'), e.image('shop/foreign', '1.0'));
    assert.ok(eventReasons(ns, 'old').includes('CandidateRefused'));
    assert.ok(eventReasons(ns, 'foreign').includes('PolicyViolation'));
  });

  it('in Manual mode waits for the approval annotation, then rolls out', async () => {
    const ns = newNamespace('ipol-manual');
    const v1 = await e.pusher.pushImage('shop/manual', '1.0', { seed: 'manual-v1' });
    applyWorkload(ns, 'Deployment', 'manual', e.image('shop/manual', '1.0'));
    applyPolicy(ns, 'manual', {
      image: `${e.registry.host}/shop/manual`,
      follow: { tag: '1.0' },
      workloads: { names: ['manual'] },
      rollout: { mode: 'Manual' },
    });
    const s = await waitForPolicy(
      operator,
      ns,
      'manual',
      'pending approval',
      (x) => workload(x, 'Deployment', 'manual')?.state === 'PendingApproval',
    );
    assert.match(
      workload(s, 'Deployment', 'manual')!.message ?? '',
      new RegExp(`patchline.dev/approve-digest=${v1.digest}`),
    );
    assert.equal(specImage(ns, 'Deployment', 'manual'), e.image('shop/manual', '1.0'), 'not pinned before approval');
    kubectl(['annotate', '-n', ns, 'imagepolicy/manual', `patchline.dev/approve-digest=${v1.digest}`]);
    await waitForPolicy(
      operator,
      ns,
      'manual',
      'up to date',
      (x) => workload(x, 'Deployment', 'manual')?.state === 'UpToDate',
    );
    assert.equal(specImage(ns, 'Deployment', 'manual'), `${e.registry.host}/shop/manual@${v1.digest}`);
  });

  it('stops fighting another field manager that keeps setting the image back, naming it', async () => {
    const ns = newNamespace('ipol-revert');
    await e.pusher.pushImage('shop/loop', '1.0', { seed: 'loop-v1' });
    applyWorkload(ns, 'Deployment', 'loop', e.image('shop/loop', '1.0'));
    applyPolicy(ns, 'loop', {
      image: `${e.registry.host}/shop/loop`,
      follow: { tag: '1.0' },
      workloads: { names: ['loop'] },
    });
    const pinned = `${e.registry.host}/shop/loop@`;
    await waitForPolicy(
      operator,
      ns,
      'loop',
      'up to date',
      (x) => workload(x, 'Deployment', 'loop')?.state === 'UpToDate',
    );
    // A GitOps tool (here kubectl) sets the tag back: Patchline pins again, once.
    kubectl(['set', 'image', '-n', ns, 'deployment/loop', `app=${e.image('shop/loop', '1.0')}`]);
    await waitForPolicy(operator, ns, 'loop', 'one revert', (x) => workload(x, 'Deployment', 'loop')?.reverts === 1);
    await operator.waitUntil(() => specImage(ns, 'Deployment', 'loop').startsWith(pinned), 're-pinned');
    kubectl(['set', 'image', '-n', ns, 'deployment/loop', `app=${e.image('shop/loop', '1.0')}`]);
    const s = await waitForPolicy(
      operator,
      ns,
      'loop',
      'blocked',
      (x) => workload(x, 'Deployment', 'loop')?.state === 'Blocked',
    );
    const w = workload(s, 'Deployment', 'loop')!;
    assert.equal(w.reverts, 2);
    assert.equal(w.revertedBy, 'kubectl-set');
    assert.equal(s.conditions?.find((c) => c.type === 'Ready')?.reason, 'RevertLoop');
    assert.match(
      s.conditions?.find((c) => c.type === 'Ready')?.message ?? '',
      /kubectl-set keeps setting the image back/,
    );
    assert.equal(specImage(ns, 'Deployment', 'loop'), e.image('shop/loop', '1.0'), 'left as the other manager set it');
    assert.ok(eventReasons(ns, 'loop').includes('ImageReverted'));
  });

  it('rolls StatefulSets and DaemonSets selected by label too', async () => {
    const ns = newNamespace('ipol-kinds');
    const v1 = await e.pusher.pushImage('shop/agent', '2.0', { seed: 'agent-v1' });
    applyWorkload(ns, 'StatefulSet', 'db', e.image('shop/agent', '2.0'), { replicas: 2, labels: { tier: 'agent' } });
    applyWorkload(ns, 'DaemonSet', 'node', e.image('shop/agent', '2.0'), { labels: { tier: 'agent' } });
    applyPolicy(ns, 'agent', {
      image: `${e.registry.host}/shop/agent`,
      follow: { tag: '2.0' },
      workloads: { selector: { matchLabels: { tier: 'agent' } }, kinds: ['StatefulSet', 'DaemonSet'] },
    });
    const v2 = await e.pusher.pushImage('shop/agent', '2.0', { seed: 'agent-v2' });
    const s = await waitForPolicy(
      operator,
      ns,
      'agent',
      'both up to date on v2',
      (x) =>
        x.latest?.digest === v2.digest &&
        workload(x, 'StatefulSet', 'db')?.state === 'UpToDate' &&
        workload(x, 'DaemonSet', 'node')?.state === 'UpToDate',
    );
    assert.notEqual(v1.digest, v2.digest);
    assert.equal(s.upToDate, '2/2');
    const repo = `${e.registry.host}/shop/agent`;
    assert.equal(specImage(ns, 'StatefulSet', 'db'), `${repo}@${v2.digest}`);
    assert.equal(specImage(ns, 'DaemonSet', 'node'), `${repo}@${v2.digest}`);
    for (const app of ['db', 'node']) {
      const pods = await runningPods(ns, app);
      assert.ok(pods.length >= 1);
      for (const p of pods)
        assert.equal(p.status?.containerStatuses?.find((c) => c.name === 'app')?.imageID, `${repo}@${v2.digest}`);
    }
  });

  it('pins two containers of one Deployment in the same reconcile, keeping both', async () => {
    const ns = newNamespace('ipol-two');
    const v1 = await e.pusher.pushImage('shop/twice', '1.0', { seed: `${ns}-v1` });
    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'twice' },
        spec: {
          selector: { matchLabels: { app: 'twice' } },
          template: {
            metadata: { labels: { app: 'twice' } },
            spec: {
              containers: [
                { name: 'app', image: e.image('shop/twice', '1.0') },
                { name: 'worker', image: e.image('shop/twice', '1.0') },
              ],
            },
          },
        },
      }),
    });
    applyPolicy(ns, 'twice', {
      image: `${e.registry.host}/shop/twice`,
      follow: { tag: '1.0' },
      workloads: { names: ['twice'] },
    });
    await waitForPolicy(operator, ns, 'twice', 'both containers up to date', (x) => x.upToDate === '2/2');
    const pinned = `${e.registry.host}/shop/twice@${v1.digest}`;
    assert.equal(specImage(ns, 'Deployment', 'twice', 'app'), pinned);
    assert.equal(specImage(ns, 'Deployment', 'twice', 'worker'), pinned);
    assert.ok(!eventReasons(ns, 'twice').includes('PinFailed'));
  });

  it('deleting a policy releases its pins: the annotation goes, the image stays on its digest', async () => {
    const ns = newNamespace('ipol-delete');
    const v1 = await e.pusher.pushImage('shop/deleted', '1.0', { seed: `${ns}-v1` });
    applyWorkload(ns, 'Deployment', 'gone', e.image('shop/deleted', '1.0'));
    applyPolicy(ns, 'gone', {
      image: `${e.registry.host}/shop/deleted`,
      follow: { tag: '1.0' },
      workloads: { names: ['gone'] },
    });
    await waitForPolicy(operator, ns, 'gone', 'pinned', (x) => workload(x, 'Deployment', 'gone')?.state === 'UpToDate');
    const pinned = `${e.registry.host}/shop/deleted@${v1.digest}`;
    assert.equal(specImage(ns, 'Deployment', 'gone'), pinned);
    assert.equal(
      kubectl(['get', 'ipol', 'gone', '-n', ns, '-o', 'jsonpath={.metadata.finalizers}']).stdout,
      '["patchline.dev/pins"]',
    );
    kubectl(['delete', 'ipol', 'gone', '-n', ns, '--timeout=60s']);
    assert.equal(specImage(ns, 'Deployment', 'gone'), pinned, 'the image stays on the pinned digest');
    const annotations = kubectl([
      'get',
      'deployment',
      'gone',
      '-n',
      ns,
      '-o',
      'jsonpath={.metadata.annotations}',
    ]).stdout;
    assert.doesNotMatch(annotations, /patchline\.dev\/pinned/);
    assert.ok(eventReasons(ns, 'gone').includes('PinsReleased'));
  });

  it('the whole loop: a base change is rebuilt, verified against the new base, and rolled out', async () => {
    const ns = newNamespace('ipol-loop');
    createBuildSecret(ns);
    await e.pusher.pushImage('base/loop', '1', { seed: `${ns}-b1` });
    await e.pusher.pushImage('shop/looped', '1.0', { seed: `${ns}-a1` });
    applyTrigger(ns, 'looped', {
      baseImages: [{ image: e.image('base/loop', '1') }],
      target: { image: e.image('shop/looped', '1.0') },
      build: {
        webhook: { url: `${e.builds.url}/builds`, statusURL: `${e.builds.url}/builds/$(build.id)` },
        credentialsRef: { name: 'build-creds' },
      },
      settle: '0s',
    });
    applyWorkload(ns, 'Deployment', 'looped', e.image('shop/looped', '1.0'), { replicas: 2 });
    applyPolicy(ns, 'looped', {
      image: `${e.registry.host}/shop/looped`,
      follow: { tag: '1.0' },
      workloads: { names: ['looped'] },
      verify: { registries: [e.registry.host], provenance: { requireBase: true } },
    });
    // The image there now declares no base: refused, the workload left alone.
    await waitForPolicy(operator, ns, 'looped', 'refused for provenance', (x) =>
      (x.latest?.checks ?? []).some((c) => c.name === 'provenance' && !c.passed),
    );
    assert.equal(specImage(ns, 'Deployment', 'looped'), e.image('shop/looped', '1.0'));
    await operator.waitUntil(() => triggerStatus(ns, 'looped').bases?.[0]?.digest !== undefined, 'base learned');

    // The base is patched: the trigger rebuilds, the rebuilt image lands, the policy takes it.
    const base2 = await e.pusher.pushImage('base/loop', '1', { seed: `${ns}-b2` });
    const s = await waitForPolicy(
      operator,
      ns,
      'looped',
      'rebuilt digest rolled out',
      (x) =>
        x.latest?.verified === true &&
        x.latest.digest === triggerStatus(ns, 'looped').landed?.digest &&
        workload(x, 'Deployment', 'looped')?.state === 'UpToDate',
    );
    const landed = triggerStatus(ns, 'looped').landed!;
    assert.equal(landed.baseDigest, base2.digest);
    assert.match(s.latest?.checks?.find((c) => c.name === 'provenance')?.message ?? '', new RegExp(base2.digest));
    assert.equal(specImage(ns, 'Deployment', 'looped'), `${e.registry.host}/shop/looped@${landed.digest}`);
    for (const p of await runningPods(ns, 'looped'))
      assert.equal(
        p.status?.containerStatuses?.find((c) => c.name === 'app')?.imageID,
        `${e.registry.host}/shop/looped@${landed.digest}`,
      );
  });
});
