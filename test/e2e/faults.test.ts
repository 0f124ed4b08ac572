// Faults outside the operator, on the real control plane: the registry down for minutes and
// then back, a build service that answers garbage and then hangs. Each time the resources
// say what is wrong, nothing is lost, and the operator recovers on its own — the same
// process, no restart.
import assert from 'node:assert/strict';
import type { RebuildTriggerStatus } from '../../src/api/v1alpha1/index.ts';
import { kubectl, newNamespace } from './support/env.ts';
import type { Operator } from './support/operator.ts';
import { applyPolicy, applyWorkload, waitForPolicy, workload } from './support/policies.ts';
import { RebuildEnv, applyTrigger, createBuildSecret, triggerStatus } from './support/rebuild-env.ts';

const condition = (
  s: { conditions?: { type: string; status: string; reason?: string; message?: string }[] },
  type: string,
) => s.conditions?.find((c) => c.type === type);

describe('faults outside the operator', function () {
  this.timeout(400_000);
  let e: RebuildEnv;
  let op: Operator;
  let ns: string;

  before(async () => {
    e = await RebuildEnv.start({ buildMs: 1_000 });
    ns = newNamespace('faults');
    op = await e.operator('op-faults', `e2e-faults-${Date.now()}`, ['--watch-namespaces', ns]);
    await op.waitForLog((l) => l.message === 'controllers started', 'leading');
  });

  after(async () => {
    await op?.stop();
    await e?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(op.recentLogs());
  });

  it('the registry down for minutes, then back: the policy says so, and the next digest rolls out without a restart', async () => {
    const v1 = await e.pusher.pushImage('shop/faulty', '1.0', { seed: `${ns}-v1` });
    applyWorkload(ns, 'Deployment', 'web', e.image('shop/faulty', '1.0'));
    applyPolicy(ns, 'web', {
      image: `${e.registry.host}/shop/faulty`,
      follow: { tag: '1.0' },
      interval: '30s',
      workloads: { names: ['web'] },
      verify: { registries: [e.registry.host] },
    });
    await waitForPolicy(op, ns, 'web', 'v1 up to date', (x) => workload(x, 'Deployment', 'web')?.state === 'UpToDate');

    const downAt = Date.now();
    await e.registry.down();
    const s = await waitForPolicy(op, ns, 'web', 'the outage reported', (x) =>
      /the registry cannot be read now/.test(condition(x, 'Ready')?.message ?? ''),
    );
    console.log(`      while down: ${condition(s, 'Ready')?.message}`);
    assert.equal(workload(s, 'Deployment', 'web')?.desiredDigest, v1.digest, 'nothing changed while it was down');
    // Down for minutes: until the operator has failed several checks in a row (backing off).
    await op.waitUntil(
      async () => (await op.metric('patchline_watcher_checks_total', { result: 'error' })) >= 4,
      'several failed checks',
      240_000,
    );
    const downForMs = Date.now() - downAt;

    await e.registry.up();
    const upAt = Date.now();
    // What it held survived; a push after the outage is noticed (webhook) and rolled out.
    const v2 = await e.pusher.pushImage('shop/faulty', '1.0', { seed: `${ns}-v2` });
    const after = await waitForPolicy(
      op,
      ns,
      'web',
      'v2 rolled out after the outage',
      (x) =>
        workload(x, 'Deployment', 'web')?.state === 'UpToDate' &&
        x.latest?.digest === v2.digest &&
        !/cannot be read/.test(condition(x, 'Ready')?.message ?? ''),
    );
    console.log(
      `      registry down ${Math.round(downForMs / 1000)} s; back to Ready and v2 rolled out ${Date.now() - upAt} ms after it returned`,
    );
    assert.equal(condition(after, 'Ready')?.status, 'True');
    assert.equal(workload(after, 'Deployment', 'web')?.runningDigest, v2.digest);
  });

  it('a build service that answers garbage, then hangs: the trigger says so, and the build lands once it recovers', async () => {
    createBuildSecret(ns);
    const base1 = await e.pusher.pushImage('base/faulty', '1', { seed: `${ns}-b1` });
    await e.pusher.pushImage('team/faulty', '1', { seed: `${ns}-a1` });
    applyTrigger(ns, 'app', {
      baseImages: [{ image: e.image('base/faulty', '1') }],
      target: { image: e.image('team/faulty', '1') },
      build: {
        webhook: { url: `${e.builds.url}/builds`, statusURL: `${e.builds.url}/builds/$(build.id)` },
        credentialsRef: { name: 'build-creds' },
      },
      settle: '0s',
    });
    let status: RebuildTriggerStatus = {};
    const until = (what: string, test: (s: RebuildTriggerStatus) => boolean, timeoutMs = 90_000) =>
      op
        .waitUntil(() => test((status = triggerStatus(ns, 'app'))), what, timeoutMs)
        .catch((err: unknown) => {
          throw new Error(`${String(err)}\nlast status: ${JSON.stringify(status, null, 2)}`);
        });
    await until('the base learned', (s) => s.bases?.[0]?.digest === base1.digest && s.phase === 'Idle');

    e.builds.fault = 'garbage';
    const base2 = await e.pusher.pushImage('base/faulty', '1', { seed: `${ns}-b2` });
    // Said on Ready at the trigger's next look (the outcome of a poll is recorded at once, the
    // conditions are recomputed at the next reconcile, within the 15 s retry).
    await until('the garbage reported on Ready', (s) =>
      /cannot follow it now: the build service sent a status without a known "status" field/.test(
        condition(s, 'Ready')?.message ?? '',
      ),
    );
    console.log(`      garbage: Ready says "${condition(status, 'Ready')?.message}"`);
    assert.ok(['Queued', 'Running'].includes(status.build?.phase ?? ''), 'a status it cannot read fails nothing');

    e.builds.fault = 'hang';
    await until(
      'the hang reported on Ready',
      (s) => /cannot follow it now: .*(unreachable|timed? ?out|aborted)/i.test(condition(s, 'Ready')?.message ?? ''),
      120_000,
    );
    console.log(`      hang: Ready says "${condition(status, 'Ready')?.message}"`);
    assert.ok(['Queued', 'Running'].includes(status.build?.phase ?? ''), 'nor does a hang');

    e.builds.fault = undefined;
    await until('the build landed', (s) => s.phase === 'Landed' && s.build?.baseDigest === base2.digest, 120_000);
    assert.equal(e.builds.builds.size, 1, 'one build: nothing started twice');
    assert.equal(condition(status, 'Ready')?.status, 'True');
    assert.equal(status.build?.followError, undefined, 'cleared once the service answered');
    assert.equal(kubectl(['get', 'rbt', 'app', '-n', ns, '-o', 'jsonpath={.status.build.phase}']).stdout, 'Succeeded');
  });
});
