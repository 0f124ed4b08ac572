// A registry request budget too small for the intervals, end to end: the operator (a separate
// process under its shipped RBAC) runs with requestsPerMinute 12 for the local registry; a
// RebuildTrigger following nine references there at 30 s needs 18 requests a minute. It must
// say so (IntervalMet False, with the figures), the metric must give the stretch, and once the
// trigger follows fewer references the condition must go.
import assert from 'node:assert/strict';
import { waitFor } from '../support/manual-clock.ts';
import { newNamespace } from './support/env.ts';
import type { Operator } from './support/operator.ts';
import { RebuildEnv, applyTrigger, createBuildSecret, triggerStatus } from './support/rebuild-env.ts';

describe('a registry request budget too small for the intervals', function () {
  this.timeout(180_000);
  let env: RebuildEnv;
  let op: Operator;

  before(async () => {
    env = await RebuildEnv.start({}, { requestsPerMinute: 12 });
    op = await env.operator('op-budget', `e2e-budget-${Date.now()}`);
    await op.waitForLog((l) => l.message === 'controllers started', 'leading');
  });

  after(async () => {
    if (op) assert.equal(await op.stop(), 0);
    await env?.stop();
  });

  it('is reported on the resource (IntervalMet False) and as a metric, and cleared when the need fits', async () => {
    const ns = newNamespace('budget');
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
