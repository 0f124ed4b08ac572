import assert from 'node:assert/strict';
import { KubeApiError } from '../../../src/runtime/errors.ts';
import {
  LeaderElector,
  type LeaseRecord,
  type LeaseStore,
  type StoredLease,
} from '../../../src/runtime/leaderelection.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';
import { NotLeading, fencedClient } from '../../../src/runtime/fence.ts';
import { ManualClock, flushPromises } from '../../support/manual-clock.ts';

/** An in-memory Lease with the API server's optimistic concurrency. */
class FakeLeaseStore implements LeaseStore {
  readonly description = 'test/lease';
  lease: StoredLease | undefined;
  writes = 0;
  private rv = 1;
  private failures = 0;

  get(): Promise<StoredLease | undefined> {
    if (this.failures > 0) return Promise.reject(new KubeApiError(500, 'InternalError', 'injected'));
    return Promise.resolve(this.lease && structuredClone(this.lease));
  }

  create(record: LeaseRecord): Promise<StoredLease> {
    if (this.lease) return Promise.reject(new KubeApiError(409, 'AlreadyExists', 'exists'));
    this.writes++;
    this.lease = { record: { ...record }, resourceVersion: String(++this.rv) };
    return Promise.resolve(structuredClone(this.lease));
  }

  update(record: LeaseRecord, resourceVersion: string): Promise<StoredLease> {
    if (this.failures > 0) return Promise.reject(new KubeApiError(500, 'InternalError', 'injected'));
    if (!this.lease || this.lease.resourceVersion !== resourceVersion) {
      return Promise.reject(new KubeApiError(409, 'Conflict', 'the object has been modified'));
    }
    this.writes++;
    this.lease = { record: { ...record }, resourceVersion: String(++this.rv) };
    return Promise.resolve(structuredClone(this.lease));
  }

  /** Another writer takes the lease behind the leader's back. */
  steal(holder: string): void {
    this.lease = {
      record: { ...this.lease?.record, holderIdentity: holder, renewTime: new Date().toISOString() },
      resourceVersion: String(++this.rv),
    };
  }

  failFor(n: number): void {
    this.failures = n;
  }

  heal(): void {
    this.failures = 0;
  }
}

interface Candidate {
  elector: LeaderElector;
  run: Promise<void>;
  abort: AbortController;
  started: number;
  stopped: string[];
  leaderSignal?: AbortSignal;
}

describe('LeaderElector', () => {
  let clock: ManualClock;
  let store: FakeLeaseStore;

  beforeEach(() => {
    clock = new ManualClock();
    store = new FakeLeaseStore();
  });

  function candidate(identity: string, releaseOnCancel = true): Candidate {
    const elector = new LeaderElector({
      store,
      identity,
      clock,
      logger: silentLogger(),
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      releaseOnCancel,
    });
    const abort = new AbortController();
    const c: Candidate = { elector, abort, started: 0, stopped: [], run: Promise.resolve() };
    c.run = elector.run(abort.signal, {
      onStartedLeading: (signal) => {
        c.started++;
        c.leaderSignal = signal;
      },
      onStoppedLeading: (reason) => c.stopped.push(reason),
    });
    return c;
  }

  async function step(ms: number): Promise<void> {
    await flushPromises();
    clock.advance(ms);
    await flushPromises();
  }

  it('acquires an absent lease and records itself as holder', async () => {
    const a = candidate('a');
    await flushPromises();
    assert.equal(a.started, 1);
    assert.ok(a.elector.isLeader());
    assert.equal(store.lease?.record.holderIdentity, 'a');
    assert.equal(store.lease?.record.leaseDurationSeconds, 15);
    assert.equal(store.lease?.record.leaseTransitions, 0);
    assert.match(store.lease?.record.renewTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime format');
    a.abort.abort();
    await a.run;
  });

  it('renews every retry period, keeping its acquire time', async () => {
    const a = candidate('a');
    await flushPromises();
    const acquired = store.lease?.record.acquireTime;
    const firstRenew = store.lease?.record.renewTime;
    await step(2_000);
    assert.notEqual(store.lease?.record.renewTime, firstRenew);
    assert.equal(store.lease?.record.acquireTime, acquired);
    await step(2_000);
    assert.equal(store.writes, 3);
    assert.ok(a.elector.isLeader());
    a.abort.abort();
    await a.run;
  });

  it('a second candidate stays follower while the leader renews', async () => {
    const a = candidate('a');
    await flushPromises();
    const b = candidate('b');
    for (let i = 0; i < 20; i++) await step(2_500);
    assert.ok(a.elector.isLeader());
    assert.ok(!b.elector.isLeader());
    assert.equal(b.started, 0);
    assert.equal(store.lease?.record.holderIdentity, 'a');
    a.abort.abort();
    b.abort.abort();
    await Promise.all([a.run, b.run]);
  });

  it('takes over a lease whose holder stopped renewing, once the lease duration has passed', async () => {
    const a = candidate('a', false);
    await flushPromises();
    const b = candidate('b');
    await step(2_400);
    a.abort.abort(); // a dies without releasing (kill -9)
    await a.run;
    const diedAt = clock.now();
    while (!b.elector.isLeader()) await step(500);
    const waited = clock.now() - diedAt;
    // One lease duration after b last saw a renew, which is at most one (jittered) retry
    // period after a's last renew; a renewed at most one retry period before it died.
    assert.ok(waited >= 15_000 - 2_400, `took over after ${waited}ms`);
    assert.ok(waited <= 15_000 + 2_400 + 500, `took over after ${waited}ms`);
    assert.equal(store.lease?.record.holderIdentity, 'b');
    assert.equal(store.lease?.record.leaseTransitions, 1);
    b.abort.abort();
    await b.run;
  });

  it('stops leading at once when it finds another holder (lost on conflict)', async () => {
    const a = candidate('a');
    await flushPromises();
    store.steal('intruder');
    await step(2_000);
    assert.equal(a.started, 1);
    assert.deepEqual(a.stopped, ['lost']);
    assert.ok(a.leaderSignal?.aborted, 'work stops when leadership is lost');
    assert.ok(!a.elector.isLeader());
    await a.run;
    assert.equal(store.lease?.record.holderIdentity, 'intruder', 'a lost leader does not release');
  });

  it('stops leading when it cannot renew within the renew deadline', async () => {
    const a = candidate('a');
    await flushPromises();
    store.failFor(1);
    await step(2_000); // renew fails, 2 s since the last renew
    await step(2_000);
    await step(2_000);
    await step(2_000);
    assert.ok(a.elector.isLeader(), 'still leading before the deadline');
    await step(2_000); // 10 s without a renew
    assert.deepEqual(a.stopped, ['lost']);
    await a.run;
  });

  it('holds the lease only within the renew deadline: a leader paused past it writes nothing on waking', async () => {
    const a = candidate('a');
    await flushPromises();
    assert.ok(a.elector.holdsLease());
    await step(2_000);
    assert.ok(a.elector.holdsLease());
    const sent: string[] = [];
    const client = fencedClient(
      {
        server: 'https://k8s.example',
        requestJson: <T>(method: string, path: string) => {
          sent.push(`${method} ${path}`);
          return Promise.resolve(undefined as T);
        },
        stream: () => Promise.reject(new Error('no')),
        close: () => Promise.resolve(),
      },
      () => a.elector.holdsLease(),
      { logger: silentLogger() },
    );
    await client.requestJson('PUT', '/apis/patchline.dev/v1alpha1/namespaces/n/imagepolicies/p/status');
    // Paused for 20 s (SIGSTOP): on waking its timers fire before its renew loop has looked,
    // and meanwhile another replica took the lease.
    store.steal('b');
    clock.advance(20_000);
    assert.ok(a.elector.isLeader(), 'it still thinks it leads');
    assert.equal(a.elector.holdsLease(), false);
    await assert.rejects(
      client.requestJson('PUT', '/apis/patchline.dev/v1alpha1/namespaces/n/imagepolicies/q/status'),
      NotLeading,
    );
    await assert.rejects(client.requestJson('PATCH', '/apis/apps/v1/namespaces/n/deployments/web'), NotLeading);
    await client.requestJson('GET', '/apis/apps/v1/namespaces/n/deployments/web');
    await assert.rejects(client.requestJson('POST', '/apis/events.k8s.io/v1/namespaces/n/events'), NotLeading);
    assert.deepEqual(sent, [
      'PUT /apis/patchline.dev/v1alpha1/namespaces/n/imagepolicies/p/status',
      'GET /apis/apps/v1/namespaces/n/deployments/web',
    ]);
    // Its renew loop then finds the lease taken and stops leading.
    await flushPromises();
    assert.deepEqual(a.stopped, ['lost']);
    await a.run;
  });

  it('survives a short renew failure', async () => {
    const a = candidate('a');
    await flushPromises();
    store.failFor(1);
    await step(2_000);
    await step(2_000);
    store.heal();
    await step(2_000);
    assert.ok(a.elector.isLeader());
    assert.deepEqual(a.stopped, []);
    a.abort.abort();
    await a.run;
  });

  it('releases the lease on shutdown, so that a follower takes over without waiting for expiry', async () => {
    const a = candidate('a');
    await flushPromises();
    const b = candidate('b');
    await step(2_400);
    a.abort.abort();
    await a.run;
    assert.deepEqual(a.stopped, ['shutdown']);
    assert.equal(store.lease?.record.holderIdentity, '');
    const releasedAt = clock.now();
    while (!b.elector.isLeader()) await step(500);
    assert.ok(clock.now() - releasedAt <= 2_400 + 500, 'taken at the next retry');
    b.abort.abort();
    await b.run;
  });
});
