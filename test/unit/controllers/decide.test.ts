import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ImagePolicy, RebuildTrigger } from '../../../src/api/v1alpha1/index.ts';
import { decideImagePolicy, type PolicyGathered } from '../../../src/controllers/imagepolicy/decide.ts';
import { decideRebuildTrigger } from '../../../src/controllers/rebuildtrigger/decide.ts';
import type { Condition } from '../../../src/runtime/conditions.ts';
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

const D1 = `sha256:${'1'.repeat(64)}`;
const BASE = `sha256:${'b'.repeat(64)}`;

/** A candidate that passes the example's checks: recent, built on the current base. */
function accepted(digest = D1): PolicyGathered {
  return {
    follow: { tag: '1.4', digest },
    facts: {
      served: { matches: true, message: 'shopregistry.azurecr.io/shop/web serves it' },
      created: new Date('2026-11-20T10:00:00Z'),
      provenance: { verdict: 'Verified', message: `built on ${BASE} (annotation)` },
    },
    observed: [],
    violations: [],
  };
}

describe('ImagePolicy decision', () => {
  it('says it is looking while no digest is known yet: Ready Unknown, Reconciling', () => {
    const d = decideImagePolicy(policy(), now);
    assert.equal(d.status.observedGeneration, 3);
    assert.deepEqual(ready(d.status), {
      type: 'Ready',
      status: 'Unknown',
      reason: 'Following',
      message: 'Following shopregistry.azurecr.io/shop/web:1.4: looking up the digest',
      observedGeneration: 3,
      lastTransitionTime: '2026-11-22T10:00:00Z',
    });
    assert.equal(d.status.conditions?.find((c) => c.type === 'Reconciling')?.status, 'True');
    assert.deepEqual(d.pins, []);
  });

  it('accepts a candidate that passes every check: Ready True, latest verified, one event', () => {
    const d = decideImagePolicy(policy(), now, accepted());
    assert.equal(ready(d.status)?.status, 'True');
    assert.equal(ready(d.status)?.reason, 'Accepted');
    assert.equal(
      ready(d.status)?.message,
      `Following shopregistry.azurecr.io/shop/web:1.4: 1.4@sha256:111111111111 accepted.`,
    );
    assert.equal(d.status.latest?.verified, true);
    assert.deepEqual(
      d.status.latest?.checks?.map((c) => c.name),
      ['registry', 'digest', 'age', 'provenance'],
    );
    assert.deepEqual(
      d.events.map((e) => [e.type, e.reason]),
      [['Normal', 'CandidateAccepted']],
    );
    assert.equal(
      d.status.conditions?.find((c) => c.type === 'Compliant')?.message,
      'no workload container is selected',
    );
  });

  it('stalls when the ServiceAccount it acts as may not pin the workloads, and recovers when it may', () => {
    const why =
      'cannot pin Deployment/web: forbidden: ServiceAccount shop/default cannot patch deployments in namespace shop (…)';
    const d = decideImagePolicy(policy(), now, { ...accepted(), pinsForbidden: why });
    assert.equal(ready(d.status)?.status, 'False');
    assert.equal(ready(d.status)?.reason, 'PinForbidden');
    assert.equal(ready(d.status)?.message, why);
    assert.equal(stalled(d.status)?.status, 'True');
    assert.equal(stalled(d.status)?.reason, 'PinForbidden');
    const after = decideImagePolicy({ ...policy(), status: d.status }, later, accepted());
    assert.equal(ready(after.status)?.reason, 'Accepted');
    assert.equal(stalled(after.status), undefined);
  });

  it('is idempotent: deciding again on its own output, later, changes nothing and records no event', () => {
    const first = decideImagePolicy(policy(), now, accepted());
    const second = decideImagePolicy(
      policy((p) => (p.status = first.status)),
      later,
      accepted(),
    );
    assert.ok(statusEqual(first.status, second.status));
    assert.deepEqual(second.events, []);
    // As the API server returns it: keys in another order.
    const sorted = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(sorted)
        : v && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .sort(([a], [b]) => (a < b ? -1 : 1))
                .map(([k, x]) => [k, sorted(x)]),
            )
          : v;
    const third = decideImagePolicy(
      policy((p) => (p.status = sorted(first.status) as ImagePolicy['status'])),
      later,
      accepted(),
    );
    assert.ok(statusEqual(first.status, third.status), 'the order of keys read back makes no difference');
  });

  it('refuses a candidate that fails a check, saying which, and keeps the containers where they are', () => {
    const gathered = accepted();
    gathered.facts!.created = new Date('2026-09-01T00:00:00Z');
    gathered.observed = [
      {
        kind: 'Deployment',
        name: 'web',
        container: 'web',
        specImage: 'shopregistry.azurecr.io/shop/web:1.4',
        progress: { state: 'Complete', message: 'done' },
      },
    ];
    const d = decideImagePolicy(policy(), now, gathered);
    assert.equal(ready(d.status)?.reason, 'CandidateRefused');
    assert.match(
      ready(d.status)!.message,
      /^1\.4@sha256:111111111111 refused: age: built 2026-09-01T00:00:00Z, older than/,
    );
    assert.equal(d.status.latest?.verified, false);
    assert.deepEqual(d.pins, []);
    assert.equal(d.status.workloads?.[0]?.state, 'Blocked');
    assert.deepEqual(
      d.events.map((e) => e.reason),
      ['CandidateRefused'],
    );
  });

  it('waits for a registry scanner still scanning the candidate (ScanPending, nothing refused), then refuses it after scanTimeout', () => {
    const scanning = (since: Date): PolicyGathered => {
      const g = accepted();
      g.facts = {
        ...g.facts,
        scanPending: { source: 'Harbor harbor.example.com', detail: 'Harbor scan Running', since },
      };
      g.observed = [
        {
          kind: 'Deployment',
          name: 'web',
          container: 'web',
          specImage: 'shopregistry.azurecr.io/shop/web:1.4',
          progress: { state: 'Complete', message: 'done' },
        },
      ];
      return g;
    };
    const withScanners = policy((p) => {
      p.spec.verify!.vulnerabilities = {
        maxSeverity: 'HIGH',
        scanners: [{ type: 'harbor' }],
        scanTimeout: '30m',
      };
    });
    const since = new Date(now.getTime() - 10 * 60_000);
    const d = decideImagePolicy(withScanners, now, scanning(since));
    assert.equal(ready(d.status)?.status, 'False');
    assert.equal(ready(d.status)?.reason, 'ScanPending');
    assert.equal(
      ready(d.status)?.message,
      `1.4@sha256:111111111111 waits: vulnerabilities: waiting for Harbor harbor.example.com to finish scanning ${D1} (Harbor scan Running) since 2026-11-22T09:50:00.000Z`,
    );
    assert.equal(d.status.conditions?.find((c) => c.type === 'Reconciling')?.reason, 'ScanPending');
    assert.equal(d.status.latest?.pendingSince, '2026-11-22T09:50:00Z');
    assert.equal(d.status.latest?.checks?.find((c) => c.name === 'vulnerabilities')?.pending, true);
    assert.deepEqual(d.pins, []);
    assert.equal(d.status.workloads?.[0]?.state, 'Blocked');
    assert.deepEqual(
      d.events.map((e) => e.reason),
      ['ScanPending'],
    );
    assert.ok((d.requeueAfterMs ?? Infinity) <= 30_000);

    // Past scanTimeout (30 minutes since it began waiting): refused, naming the scanner.
    const late = decideImagePolicy(withScanners, new Date(since.getTime() + 30 * 60_000), scanning(since));
    assert.equal(ready(late.status)?.reason, 'CandidateRefused');
    assert.match(
      ready(late.status)!.message,
      /vulnerabilities: Harbor harbor.example.com is still scanning sha256:1{64} \(Harbor scan Running\), waited since 2026-11-22T09:50:00.000Z \(scanTimeout 30m\)/,
    );
    assert.deepEqual(
      late.events.map((e) => e.reason),
      ['CandidateRefused'],
    );
    // A check that fails outright refuses at once, scan or no scan.
    const signed = policy((p) => {
      p.spec.verify!.vulnerabilities = { maxSeverity: 'HIGH', scanners: [{ type: 'harbor' }] };
      p.spec.verify!.signature = { keys: [{ secretRef: { name: 'cosign', key: 'cosign.pub' } }] };
    });
    assert.equal(ready(decideImagePolicy(signed, now, scanning(since)).status)?.reason, 'CandidateRefused');
  });

  it('fails closed when a check has no verdict (a signature not verified)', () => {
    const d = decideImagePolicy(
      policy((p) => (p.spec.verify!.signature = { keys: [{ secretRef: { name: 'cosign', key: 'cosign.pub' } }] })),
      now,
      accepted(),
    );
    assert.equal(ready(d.status)?.status, 'False');
    assert.equal(ready(d.status)?.reason, 'CandidateRefused');
    assert.match(ready(d.status)!.message, /signature: signature not verified yet/);
  });

  it('reports an unreadable registry before any digest is known as FollowFailed, with a Warning', () => {
    const d = decideImagePolicy(policy(), now, {
      follow: { error: 'connection refused' },
      observed: [],
      violations: [],
    });
    assert.equal(ready(d.status)?.status, 'False');
    assert.equal(ready(d.status)?.reason, 'FollowFailed');
    assert.deepEqual(
      d.events.map((e) => [e.type, e.reason]),
      [['Warning', 'FollowFailed']],
    );
    // Once a digest was accepted, an outage does not un-accept it.
    const ok = decideImagePolicy(policy(), now, accepted());
    const outage = decideImagePolicy(
      policy((p) => (p.status = ok.status)),
      later,
      { follow: { tag: '1.4', digest: D1, error: 'connection refused' }, observed: [], violations: [] },
    );
    assert.equal(ready(outage.status)?.reason, 'Accepted');
    assert.match(ready(outage.status)!.message, /the registry cannot be read now: connection refused/);
    assert.equal(outage.status.latest?.verified, true);
  });

  it('reports violations in status and as Compliant False, with one Warning per change', () => {
    const gathered = accepted();
    gathered.violations = [
      {
        workload: 'Deployment/old',
        container: 'web',
        image: 'docker.io/library/web:1',
        rule: 'registry',
        message: 'not from an approved registry',
      },
    ];
    const d = decideImagePolicy(policy(), now, gathered);
    const compliant = d.status.conditions?.find((c) => c.type === 'Compliant');
    assert.equal(compliant?.status, 'False');
    assert.match(
      compliant.message,
      /1 container\(s\) break the policy, first Deployment\/old\/web: not from an approved registry/,
    );
    assert.equal(d.status.violations?.length, 1);
    assert.ok(d.events.some((e) => e.reason === 'PolicyViolation'));
    const again = decideImagePolicy(
      policy((p) => (p.status = d.status)),
      later,
      gathered,
    );
    assert.ok(!again.events.some((e) => e.reason === 'PolicyViolation'));
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
    assert.deepEqual(d.pins, []);
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
    assert.equal(ready(good.status)?.reason, 'Following');
  });

  it('recovers from a stalled state once the spec is fixed, removing Stalled', () => {
    const broken = decideImagePolicy(
      policy((p) => (p.spec.follow = { semver: { range: '???' } })),
      now,
    );
    const fixed = decideImagePolicy(
      policy((p) => (p.status = broken.status)),
      later,
      accepted(),
    );
    assert.equal(ready(fixed.status)?.status, 'True');
    assert.equal(ready(fixed.status)?.lastTransitionTime, '2026-11-22T11:00:00Z');
    assert.equal(stalled(fixed.status), undefined);
  });

  it('when suspended keeps Ready status but says why, and records one event', () => {
    const first = decideImagePolicy(policy(), now, accepted());
    const suspended = decideImagePolicy(
      policy((p) => {
        p.spec.suspend = true;
        p.status = first.status;
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
    assert.deepEqual(suspended.pins, []);
  });

  it('echoes the reconcile-requested-at annotation', () => {
    const d = decideImagePolicy(
      policy((p) => (p.metadata!.annotations = { 'patchline.dev/reconcile-requested-at': '2026-11-22T10:05:00Z' })),
      now,
    );
    assert.equal(d.status.lastHandledReconcileAt, '2026-11-22T10:05:00Z');
  });

  it('produces a status the CRD schema accepts', () => {
    const p = policy((x) => (x.status = decideImagePolicy(policy(), now, accepted()).status));
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

  it('says when the registry budget stretches the interval of a base (IntervalMet False), and drops it once met', () => {
    const t = trigger();
    const base = t.spec.baseImages[0]!.image;
    const shortfall = {
      registry: 'mcr.microsoft.com',
      neededPerMinute: 2000,
      allowedPerMinute: 600,
      intervalMs: 60_000,
      effectiveIntervalMs: 200_000,
    };
    const gathered = {
      bases: [{ image: base, digest: BASE, budget: shortfall }],
      target: {},
      slot: { available: true, limit: 1 },
    };
    const d = decideRebuildTrigger(t, now, gathered);
    const met = d.status.conditions?.find((c) => c.type === 'IntervalMet');
    assert.equal(met?.status, 'False');
    assert.equal(met?.reason, 'RequestBudgetExceeded');
    assert.match(met.message, /allows 600 requests a minute .* need 2000 .* every 3m20s instead of every 1m/);
    const after = decideRebuildTrigger(
      trigger((x) => (x.status = d.status)),
      later,
      { ...gathered, bases: [{ image: base, digest: BASE }] },
    );
    assert.equal(
      after.status.conditions?.find((c) => c.type === 'IntervalMet'),
      undefined,
    );
  });
});

describe('IntervalMet on an ImagePolicy', () => {
  it('is False with the figures while the followed tag is checked less often than asked, absent otherwise', () => {
    const stretched = accepted();
    stretched.follow.budget = {
      registry: 'shopregistry.azurecr.io',
      neededPerMinute: 900,
      allowedPerMinute: 300,
      intervalMs: 300_000,
      effectiveIntervalMs: 900_000,
    };
    const d = decideImagePolicy(policy(), now, stretched);
    const met = d.status.conditions?.find((c) => c.type === 'IntervalMet');
    assert.equal(met?.status, 'False');
    assert.match(
      met.message,
      /^shopregistry\.azurecr\.io allows 300 requests a minute .* every 15m instead of every 5m/,
    );
    assert.equal(ready(d.status)?.status, 'True', 'a stretched interval does not make the policy unready');
    const fine = decideImagePolicy(
      policy((p) => (p.status = d.status)),
      later,
      accepted(),
    );
    assert.equal(
      fine.status.conditions?.find((c) => c.type === 'IntervalMet'),
      undefined,
    );
  });
});
