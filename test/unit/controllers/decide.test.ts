import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ImagePolicy, RebuildTrigger } from '../../../src/api/v1alpha1/index.ts';
import { decideImagePolicy } from '../../../src/controllers/imagepolicy/decide.ts';
import { decideRebuildTrigger } from '../../../src/controllers/rebuildtrigger/decide.ts';
import { ImagePolicyReconciler } from '../../../src/controllers/imagepolicy/reconciler.ts';
import { MemoryEventRecorder } from '../../../src/runtime/events.ts';
import type { Condition } from '../../../src/runtime/conditions.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';
import type { StatusWriter } from '../../../src/runtime/status.ts';
import { statusEqual } from '../../../src/runtime/status.ts';
import { CrdValidator, loadCrd } from '../../support/crd-validator.ts';
import { ROOT, loadExamples } from '../../support/fixtures.ts';

const now = new Date('2026-11-22T10:00:00Z');
const later = new Date('2026-11-22T11:00:00Z');

// Examples as the API server stores them: with defaults applied.
const policyValidator = new CrdValidator(loadCrd(join(ROOT, 'crds', 'imagepolicies.patchline.dev.yaml')));
const triggerValidator = new CrdValidator(loadCrd(join(ROOT, 'crds', 'rebuildtriggers.patchline.dev.yaml')));
const examples = loadExamples();

function policy(patch: (p: ImagePolicy) => void = () => undefined): ImagePolicy {
  const doc = examples.find((e) => e.file === 'imagepolicy.yaml')!;
  const p = policyValidator.withDefaults(doc.object) as unknown as ImagePolicy;
  p.metadata = { ...p.metadata, namespace: 'shop', generation: 3, uid: 'u1', resourceVersion: '10' };
  patch(p);
  return p;
}

function trigger(patch: (t: RebuildTrigger) => void = () => undefined): RebuildTrigger {
  const doc = examples.find((e) => e.file === 'rebuildtrigger-acr.yaml')!;
  const t = triggerValidator.withDefaults(doc.object) as unknown as RebuildTrigger;
  t.metadata = { ...t.metadata, namespace: 'shop', generation: 2, uid: 'u2', resourceVersion: '11' };
  patch(t);
  return t;
}

const ready = (s: { conditions?: Condition[] }): Condition | undefined => s.conditions?.find((c) => c.type === 'Ready');
const stalled = (s: { conditions?: Condition[] }): Condition | undefined =>
  s.conditions?.find((c) => c.type === 'Stalled');

describe('ImagePolicy decision', () => {
  it('accepts a valid spec: Ready True with observedGeneration, and an Accepted event', () => {
    const d = decideImagePolicy(policy(), now);
    assert.equal(d.status.observedGeneration, 3);
    assert.deepEqual(ready(d.status), {
      type: 'Ready',
      status: 'True',
      reason: 'Accepted',
      message: 'Following shopregistry.azurecr.io/shop/web:1.4 for workloads selected by app.kubernetes.io/name=web.',
      observedGeneration: 3,
      lastTransitionTime: '2026-11-22T10:00:00Z',
    });
    assert.deepEqual(
      d.events.map((e) => [e.type, e.reason]),
      [['Normal', 'Accepted']],
    );
  });

  it('is idempotent: deciding again on its own output changes nothing and records no event', () => {
    const first = decideImagePolicy(policy(), now);
    const second = decideImagePolicy(
      policy((p) => (p.status = first.status)),
      later,
    );
    assert.ok(statusEqual(first.status, second.status));
    assert.deepEqual(second.events, []);
  });

  it('stalls on a spec the API server cannot check, naming the field', () => {
    const d = decideImagePolicy(
      policy((p) => {
        p.spec.follow = { semver: { range: 'newest please' } };
        p.spec.rollout!.window!.timeZone = 'Atlantis/Capital';
      }),
      now,
    );
    assert.equal(ready(d.status)?.status, 'False');
    assert.equal(ready(d.status)?.reason, 'InvalidSpec');
    assert.equal(stalled(d.status)?.status, 'True');
    assert.match(ready(d.status)!.message, /spec\.follow\.semver\.range: "newest please" is not a semver range/);
    assert.match(ready(d.status)!.message, /spec\.rollout\.window\.timeZone: unknown time zone "Atlantis\/Capital"/);
    assert.deepEqual(
      d.events.map((e) => [e.type, e.reason]),
      [['Warning', 'InvalidSpec']],
    );
  });

  it('rejects a Go regex that does not compile, and accepts Go named groups', () => {
    const bad = decideImagePolicy(
      policy((p) => (p.spec.follow = { pattern: { regex: '^v(' } })),
      now,
    );
    assert.match(ready(bad.status)!.message, /spec\.follow\.pattern\.regex: invalid regular expression/);
    const good = decideImagePolicy(
      policy((p) => (p.spec.follow = { pattern: { regex: '^main-(?P<ts>[0-9]+)$' } })),
      now,
    );
    assert.equal(ready(good.status)?.reason, 'Accepted');
  });

  it('fails closed when asked for a check it cannot run yet', () => {
    const d = decideImagePolicy(
      policy((p) => (p.spec.verify!.signature = { keys: [{ secretRef: { name: 'cosign', key: 'cosign.pub' } }] })),
      now,
    );
    assert.equal(ready(d.status)?.status, 'False');
    assert.equal(ready(d.status)?.reason, 'CheckUnavailable');
    assert.match(ready(d.status)!.message, /verify\.signature cannot be checked .* no image is accepted/);
  });

  it('recovers from a stalled state once the spec is fixed, removing Stalled', () => {
    const broken = decideImagePolicy(
      policy((p) => (p.spec.follow = { semver: { range: '???' } })),
      now,
    );
    const fixed = decideImagePolicy(
      policy((p) => (p.status = broken.status)),
      later,
    );
    assert.equal(ready(fixed.status)?.status, 'True');
    assert.equal(ready(fixed.status)?.lastTransitionTime, '2026-11-22T11:00:00Z');
    assert.equal(stalled(fixed.status), undefined);
  });

  it('when suspended keeps Ready status but says why, and records one event', () => {
    const accepted = decideImagePolicy(policy(), now);
    const suspended = decideImagePolicy(
      policy((p) => {
        p.spec.suspend = true;
        p.status = accepted.status;
      }),
      later,
    );
    assert.equal(ready(suspended.status)?.status, 'True');
    assert.equal(ready(suspended.status)?.reason, 'Suspended');
    assert.equal(ready(suspended.status)?.lastTransitionTime, '2026-11-22T10:00:00Z');
    assert.deepEqual(
      suspended.events.map((e) => e.reason),
      ['Suspended'],
    );
  });

  it('echoes the reconcile-requested-at annotation', () => {
    const d = decideImagePolicy(
      policy((p) => (p.metadata!.annotations = { 'patchline.dev/reconcile-requested-at': '2026-11-22T10:05:00Z' })),
      now,
    );
    assert.equal(d.status.lastHandledReconcileAt, '2026-11-22T10:05:00Z');
  });

  it('produces a status the CRD schema accepts', () => {
    const p = policy((x) => (x.status = decideImagePolicy(policy(), now).status));
    assert.deepEqual(policyValidator.validate(p), []);
  });
});

describe('RebuildTrigger decision', () => {
  it('stalls on a cron expression the scheduler rejects or an unknown time zone', () => {
    const d = decideRebuildTrigger(
      trigger((t) => (t.spec.window = { schedule: '0 2 * * 1-5', duration: '1h', timeZone: 'Mars/Olympus_Mons' })),
      now,
    );
    assert.equal(ready(d.status)?.reason, 'InvalidSpec');
    assert.match(ready(d.status)!.message, /spec\.window\.timeZone/);
  });

  it('produces a status the CRD schema accepts', () => {
    const t = trigger(
      (x) =>
        (x.status = decideRebuildTrigger(
          trigger((y) => (y.spec.suspend = true)),
          now,
        ).status),
    );
    assert.deepEqual(triggerValidator.validate(t), []);
  });
});

describe('ImagePolicy reconciler', () => {
  class CountingWriter implements StatusWriter {
    writes = 0;
    last: unknown;
    write<T extends { status?: S }, S>(_type: unknown, obj: T, status: S): Promise<boolean> {
      if (statusEqual(obj.status, status)) return Promise.resolve(false);
      this.writes++;
      this.last = status;
      return Promise.resolve(true);
    }
    commit(): Promise<undefined> {
      return Promise.reject(new Error('the ImagePolicy reconciler does not commit'));
    }
  }
  const ctx = { log: silentLogger(), reconcileId: 't', signal: new AbortController().signal };

  it('writes status and records events only when something changed', async () => {
    let current = policy();
    const writer = new CountingWriter();
    const events = new MemoryEventRecorder();
    const r = new ImagePolicyReconciler({ get: () => current, status: writer, events, now: () => now });
    await r.reconcile({ namespace: 'shop', name: 'shop-web' }, ctx);
    assert.equal(writer.writes, 1);
    assert.equal(events.events.length, 1);
    current = policy((p) => (p.status = writer.last as ImagePolicy['status']));
    await r.reconcile({ namespace: 'shop', name: 'shop-web' }, ctx);
    await r.reconcile({ namespace: 'shop', name: 'shop-web' }, ctx);
    assert.equal(writer.writes, 1, 'no write when nothing changed');
    assert.equal(events.events.length, 1, 'no repeated event');
  });

  it('does nothing for a deleted resource', async () => {
    const writer = new CountingWriter();
    const r = new ImagePolicyReconciler({ get: () => undefined, status: writer, events: new MemoryEventRecorder() });
    assert.deepEqual(await r.reconcile({ namespace: 'shop', name: 'gone' }, ctx), {});
    assert.equal(writer.writes, 0);
  });
});
