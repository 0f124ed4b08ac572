import assert from 'node:assert/strict';
import { RegistryLimiter } from '../../../src/registry/limiter.ts';
import { flushPromises } from '../../support/manual-clock.ts';

describe('RegistryLimiter', () => {
  it('holds at most maxConcurrency requests in flight', async () => {
    const l = new RegistryLimiter({ maxConcurrency: 2, requestsPerMinute: 10_000 });
    const r1 = await l.acquire();
    const r2 = await l.acquire();
    let third = false;
    const p3 = l.acquire().then((r) => {
      third = true;
      return r;
    });
    await flushPromises();
    assert.equal(third, false, 'the third waits');
    r1();
    r1(); // releasing twice frees one slot only
    const r3 = await p3;
    assert.equal(third, true);
    let fourth = false;
    void l.acquire().then(() => (fourth = true));
    await flushPromises();
    assert.equal(fourth, false, 'a double release did not free a second slot');
    r2();
    r3();
  });

  it('refills its request budget continuously, up to a minute of requests', () => {
    let now = 0;
    const l = new RegistryLimiter({ maxConcurrency: 100, requestsPerMinute: 600, now: () => now });
    assert.equal(l.available(), 600);
    for (let i = 0; i < 600; i++) l.count();
    assert.equal(l.available(), 0);
    now += 1_000;
    assert.equal(l.available(), 10, 'ten per second');
    now += 3_600_000;
    assert.equal(l.available(), 600, 'never more than a minute of requests');
  });

  it('makes a request wait for budget rather than exceed it', async () => {
    const l = new RegistryLimiter({ maxConcurrency: 10, requestsPerMinute: 1_200 });
    for (let i = 0; i < 1_200; i++) l.count();
    const started = Date.now();
    const release = await l.acquire();
    release();
    assert.ok(Date.now() - started >= 40, 'waited for the bucket to refill (50 ms per request)');
  });

  it('gives up waiting when aborted', async () => {
    const l = new RegistryLimiter({ maxConcurrency: 10, requestsPerMinute: 1 });
    l.count();
    const abort = new AbortController();
    const waiting = l.acquire(abort.signal);
    abort.abort(new Error('shutdown'));
    await assert.rejects(waiting, /shutdown/);
  });

  it('without a per-minute cap, only the concurrency limit holds', async () => {
    let now = 0;
    const l = new RegistryLimiter({ maxConcurrency: 2, requestsPerMinute: Infinity, now: () => now });
    for (let i = 0; i < 10_000; i++) (await l.acquire())();
    now += 1;
    for (let i = 0; i < 10_000; i++) (await l.acquire())();
    assert.equal(l.available(), Infinity);
  });
});
