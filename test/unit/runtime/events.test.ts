import assert from 'node:assert/strict';
import { KubeEventRecorder } from '../../../src/runtime/events.ts';
import type { RequestOptions } from '../../../src/runtime/kube-client.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';
import { createRegistry } from '../../../src/runtime/metrics.ts';
import { waitFor } from '../../support/manual-clock.ts';

interface Call {
  method: string;
  path: string;
  body: Record<string, unknown>;
  answer: (value: unknown) => void;
}

/** An API server that answers only when the test says so: what is in flight can be counted. */
class HeldApi {
  readonly calls: Call[] = [];
  inFlight = 0;
  maxInFlight = 0;

  requestJson<T>(method: string, path: string, options?: RequestOptions): Promise<T> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<T>((resolve) => {
      this.calls.push({
        method,
        path,
        body: options?.body as Record<string, unknown>,
        answer: (v) => {
          this.inFlight--;
          resolve(v as T);
        },
      });
    });
  }

  answerAll(): void {
    for (const c of this.calls.splice(0))
      c.answer({ metadata: { name: (c.body.metadata as { name?: string } | undefined)?.name } });
  }
}

const policy = (name: string) => ({
  apiVersion: 'patchline.dev/v1alpha1',
  kind: 'ImagePolicy',
  metadata: { name, namespace: 'team', uid: `uid-${name}`, resourceVersion: '7', labels: { big: 'x'.repeat(100) } },
  spec: { image: 'example.com/app' },
});

describe('KubeEventRecorder', () => {
  it('writes at most maxInFlight events at once, the rest in order after them, and flush waits for all', async () => {
    const api = new HeldApi();
    const rec = new KubeEventRecorder({ client: api, controller: 'c', instance: 'i', logger: silentLogger() });
    for (let i = 0; i < 5; i++) rec.record(policy(`p${i}`), 'Normal', 'CandidateAccepted', 'Verify', `note ${i}`);
    assert.equal(api.inFlight, 2);
    let flushed = false;
    void rec.flush().then(() => (flushed = true));
    const notes: unknown[] = [];
    while (notes.length < 5) {
      await waitFor(() => api.calls.length > 0, 'a write');
      notes.push(...api.calls.map((c) => c.body.note));
      api.answerAll();
    }
    await waitFor(() => flushed, 'flush resolved');
    assert.deepEqual(notes, ['note 0', 'note 1', 'note 2', 'note 3', 'note 4']);
    assert.equal(api.maxInFlight, 2);
  });

  it('keeps only what the Event names of its object while it waits', async () => {
    const api = new HeldApi();
    const rec = new KubeEventRecorder({ client: api, controller: 'c', instance: 'i', logger: silentLogger() });
    rec.record(policy('web'), 'Warning', 'CandidateRefused', 'Verify', 'refused');
    assert.equal(api.calls.length, 1);
    const body = api.calls[0]!.body;
    assert.deepEqual(body.regarding, {
      apiVersion: 'patchline.dev/v1alpha1',
      kind: 'ImagePolicy',
      name: 'web',
      namespace: 'team',
      uid: 'uid-web',
      resourceVersion: '7',
    });
    assert.equal(api.calls[0]!.path, '/apis/events.k8s.io/v1/namespaces/team/events');
    api.answerAll();
    await rec.flush();
  });

  it('drops events beyond the queue, counts them, and logs it at most once a minute', async () => {
    const api = new HeldApi();
    const registry = createRegistry(false);
    const warnings: Record<string, unknown>[] = [];
    const logger = silentLogger();
    logger.warn = ((message: string, meta: Record<string, unknown>) => {
      warnings.push({ message, ...meta });
      return logger;
    }) as typeof logger.warn;
    let now = 0;
    const rec = new KubeEventRecorder({
      client: api,
      controller: 'c',
      instance: 'i',
      logger,
      registry,
      now: () => now,
      maxInFlight: 1,
      maxQueued: 3,
    });
    // 1 in flight + 3 queued; the next 6 are dropped.
    for (let i = 0; i < 10; i++) rec.record(policy(`p${i}`), 'Normal', 'CandidateAccepted', 'Verify', `n${i}`);
    now = 61_000;
    rec.record(policy('late'), 'Normal', 'CandidateAccepted', 'Verify', 'late');
    const dropped = (await registry.getSingleMetric('patchline_events_dropped_total')!.get()).values[0]?.value;
    assert.equal(dropped, 7);
    assert.deepEqual(
      warnings.map((w) => [w.message, w.dropped]),
      [
        ['events dropped: more are waiting to be written than the queue holds', 1],
        ['events dropped: more are waiting to be written than the queue holds', 6],
      ],
    );
    const written: unknown[] = [];
    while (written.length < 4) {
      await waitFor(() => api.calls.length > 0, 'a write');
      written.push(...api.calls.map((c) => c.body.note));
      api.answerAll();
    }
    await rec.flush();
    assert.deepEqual(written, ['n0', 'n1', 'n2', 'n3']);
  });

  it('folds a repeat into the first event’s series with a patch', async () => {
    const api = new HeldApi();
    const rec = new KubeEventRecorder({
      client: api,
      controller: 'c',
      instance: 'i',
      logger: silentLogger(),
      now: () => 5,
    });
    rec.record(policy('web'), 'Normal', 'RolledOut', 'Rollout', 'same');
    await waitFor(() => api.calls.length === 1, 'create');
    api.answerAll();
    await rec.flush();
    rec.record(policy('web'), 'Normal', 'RolledOut', 'Rollout', 'same');
    await waitFor(() => api.calls.length === 1, 'patch');
    assert.equal(api.calls[0]!.method, 'PATCH');
    assert.deepEqual((api.calls[0]!.body.series as { count: number }).count, 2);
    api.answerAll();
    await rec.flush();
  });
});
