import assert from 'node:assert/strict';
import { ItemExponentialRateLimiter, WorkQueue } from '../../../src/runtime/workqueue.ts';
import { Controller } from '../../../src/runtime/controller.ts';
import { TerminalError, type Reconciler } from '../../../src/runtime/reconciler.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';
import { createRegistry } from '../../../src/runtime/metrics.ts';
import { ManualClock, flushPromises, waitFor } from '../../support/manual-clock.ts';

describe('WorkQueue', () => {
  it('de-duplicates a key that is already waiting', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    q.add('b');
    q.add('a');
    assert.equal(q.len(), 2);
    assert.equal(await q.get(), 'a');
    assert.equal(await q.get(), 'b');
    assert.equal(q.len(), 0);
  });

  it('never hands one key to two workers: a key added while processed waits for done()', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    const first = await q.get();
    assert.equal(first, 'a');
    q.add('a'); // arrives while 'a' is being processed
    assert.equal(q.len(), 0, 'not queued while processing');
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await flushPromises();
    assert.equal(second, undefined, 'a second worker must not get the key yet');
    q.done('a');
    await flushPromises();
    assert.equal(second, 'a', 're-queued once the first worker is done');
  });

  it('a key added twice while processed runs only once more', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    await q.get();
    q.add('a');
    q.add('a');
    q.done('a');
    assert.equal(q.len(), 1);
    await q.get();
    q.done('a');
    assert.equal(q.len(), 0);
  });

  it('hands waiting workers keys in the order added', async () => {
    const q = new WorkQueue({ name: 't' });
    const got: (string | undefined)[] = [];
    const w1 = q.get().then((k) => got.push(k));
    const w2 = q.get().then((k) => got.push(k));
    q.add('x');
    q.add('y');
    await Promise.all([w1, w2]);
    assert.deepEqual(got, ['x', 'y']);
  });

  it('addAfter queues the key only when the delay has passed', async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ name: 't', clock });
    q.addAfter('a', 1000);
    assert.equal(q.len(), 0);
    clock.advance(999);
    assert.equal(q.len(), 0);
    clock.advance(1);
    assert.equal(q.len(), 1);
    assert.equal(await q.get(), 'a');
  });

  it('addAfter keeps the earlier of two schedules for one key', () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ name: 't', clock });
    q.addAfter('a', 5000);
    q.addAfter('a', 1000);
    q.addAfter('a', 3000);
    clock.advance(1000);
    assert.equal(q.len(), 1);
    assert.equal(clock.pending(), 0, 'the later schedules were dropped');
  });

  it("cancelAfter drops a key's delayed add", () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ name: 't', clock });
    q.addAfter('a', 1000);
    q.addAfter('b', 1000);
    q.cancelAfter('a');
    clock.advance(1000);
    assert.equal(q.len(), 1, 'only b');
  });

  it('backs off exponentially per key on failure and resets on forget', () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ name: 't', clock, backoff: { baseMs: 10, maxMs: 100 } });
    assert.deepEqual(
      [
        q.addRateLimited('a'),
        q.addRateLimited('a'),
        q.addRateLimited('a'),
        q.addRateLimited('a'),
        q.addRateLimited('a'),
      ],
      [10, 20, 40, 80, 100],
    );
    assert.equal(q.numRequeues('a'), 5);
    assert.equal(q.addRateLimited('b'), 10, 'each key has its own backoff');
    q.forget('a');
    assert.equal(q.numRequeues('a'), 0);
    assert.equal(q.addRateLimited('a'), 10, 'reset after forget');
  });

  it('the rate limiter caps delays at the maximum', () => {
    const limiter = new ItemExponentialRateLimiter({ baseMs: 5, maxMs: 1_000_000 });
    let last = 0;
    for (let i = 0; i < 40; i++) last = limiter.when('k');
    assert.equal(last, 1_000_000);
  });

  it('shutDown releases waiting workers and ignores new keys', async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ name: 't', clock });
    const waiting = q.get();
    q.addAfter('later', 100);
    q.shutDown();
    assert.equal(await waiting, undefined);
    q.add('a');
    assert.equal(q.len(), 0);
    clock.advance(1000);
    assert.equal(q.len(), 0, 'delayed adds are cancelled');
  });

  it('reports depth, adds and retries as metrics', async () => {
    const registry = createRegistry(false);
    const clock = new ManualClock();
    const q = new WorkQueue({ name: 'm', clock, registry });
    q.add('a');
    q.add('b');
    q.addRateLimited('c');
    const text = await registry.metrics();
    assert.match(text, /workqueue_depth\{name="m"\} 2/);
    assert.match(text, /workqueue_adds_total\{name="m"\} 2/);
    assert.match(text, /workqueue_retries_total\{name="m"\} 1/);
  });
});

describe('Controller', () => {
  function controllerWith(reconciler: Reconciler, workers = 1): Controller {
    return new Controller({
      name: 'test',
      reconciler,
      workers,
      logger: silentLogger(),
      backoff: { baseMs: 1, maxMs: 5 },
    });
  }

  it('retries a failing key with backoff until it succeeds, then forgets its failures', async () => {
    let calls = 0;
    const c = controllerWith({
      reconcile() {
        calls++;
        if (calls < 3) return Promise.reject(new Error('boom'));
        return Promise.resolve({});
      },
    });
    c.enqueue('ns/a');
    c.start();
    await waitFor(() => calls === 3 && !c.queue.isProcessing('ns/a'), 'third attempt');
    assert.equal(c.queue.numRequeues('ns/a'), 0);
    await c.stop();
  });

  it('does not retry a TerminalError', async () => {
    let calls = 0;
    const c = controllerWith({
      reconcile() {
        calls++;
        return Promise.reject(new TerminalError('bad spec'));
      },
    });
    c.enqueue('ns/a');
    c.start();
    await waitFor(() => calls === 1 && !c.queue.isProcessing('ns/a'), 'first attempt');
    assert.equal(c.queue.numRequeues('ns/a'), 0);
    assert.equal(c.queue.len(), 0);
    await c.stop();
  });

  it('honours requeueAfter', async () => {
    const seen: number[] = [];
    const c = controllerWith({
      reconcile() {
        seen.push(Date.now());
        return Promise.resolve(seen.length < 2 ? { requeueAfterMs: 30 } : {});
      },
    });
    c.enqueue('ns/a');
    c.start();
    await waitFor(() => seen.length === 2, 'the requeued run');
    assert.ok(seen[1]! - seen[0]! >= 25, `second run ${seen[1]! - seen[0]!}ms after the first`);
    await c.stop();
  });

  it('a reconcile that settles drops the look an earlier one scheduled (no stale timer fires)', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const c = new Controller({
      name: 'test',
      workers: 1,
      logger: silentLogger(),
      queue: new WorkQueue({ name: 'test', clock }),
      reconciler: {
        reconcile() {
          calls++;
          // The first look asks to come back in a minute; the second (woken by an event) settles.
          return Promise.resolve(calls === 1 ? { requeueAfterMs: 60_000 } : {});
        },
      },
    });
    c.start();
    c.enqueue('ns/a');
    await waitFor(() => calls === 1 && !c.queue.isProcessing('ns/a'), 'first look');
    c.enqueue('ns/a');
    await waitFor(() => calls === 2 && !c.queue.isProcessing('ns/a'), 'second look');
    clock.advance(60_000);
    await flushPromises();
    assert.equal(calls, 2, 'the minute-old timer did not fire');
    await c.stop();
  });

  it('runs at most `workers` reconciles at once, and never one key twice at once', async () => {
    let running = 0;
    let maxRunning = 0;
    const perKey = new Map<string, number>();
    let maxPerKey = 0;
    let completed = 0;
    const c = controllerWith(
      {
        async reconcile(key) {
          const k = `${key.namespace}/${key.name}`;
          running++;
          perKey.set(k, (perKey.get(k) ?? 0) + 1);
          maxRunning = Math.max(maxRunning, running);
          maxPerKey = Math.max(maxPerKey, perKey.get(k)!);
          await new Promise((resolve) => setTimeout(resolve, 2));
          perKey.set(k, perKey.get(k)! - 1);
          running--;
          completed++;
          return {};
        },
      },
      3,
    );
    c.start();
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 10; i++) c.enqueue(`ns/k${i}`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await waitFor(() => c.queue.len() === 0 && running === 0, 'queue drained');
    assert.equal(maxRunning, 3);
    assert.equal(maxPerKey, 1);
    assert.ok(completed >= 10);
    await c.stop();
  });

  it('stop() aborts the running reconcile signal and waits for the workers', async () => {
    let aborted = false;
    let started = false;
    const c = controllerWith({
      async reconcile(_key, ctx) {
        started = true;
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
        aborted = true;
        return {};
      },
    });
    c.enqueue('ns/a');
    c.start();
    await waitFor(() => started, 'reconcile started');
    await c.stop();
    assert.ok(aborted);
  });
});
