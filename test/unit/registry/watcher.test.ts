import assert from 'node:assert/strict';
import type { CredentialSource } from '../../../src/registry/auth/credentials.ts';
import { anonymousSource } from '../../../src/registry/auth/credentials.ts';
import type { ManifestHead } from '../../../src/registry/client.ts';
import { RegistryError } from '../../../src/registry/errors.ts';
import { parseReference, type ImageReference } from '../../../src/registry/reference.ts';
import { DigestWatcher, type DigestEvent, type DigestSource } from '../../../src/registry/watcher.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';
import { ManualClock, flushPromises } from '../../support/manual-clock.ts';

const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;

/** A registry in memory that counts what it is asked. */
class FakeRegistry implements DigestSource {
  heads: string[] = [];
  prefetches: string[] = [];
  digests = new Map<string, string>();
  failures = new Map<string, RegistryError>();

  head(ref: ImageReference, source: CredentialSource): Promise<ManifestHead> {
    const key = `${ref.registry}/${ref.repository}:${ref.tag}`;
    this.heads.push(`${key}|${source.id}`);
    const failure = this.failures.get(key);
    if (failure) return Promise.reject(failure);
    return Promise.resolve({
      digest: this.digests.get(key) ?? digest(0),
      mediaType: 'application/vnd.oci.image.index.v1+json',
      size: 100,
    });
  }

  prefetchTokens(registry: string, repositories: string[]): Promise<void> {
    this.prefetches.push(`${registry}:${repositories.length}`);
    return Promise.resolve();
  }
}

const MINUTE = 60_000;

describe('DigestWatcher', () => {
  let clock: ManualClock;
  let registry: FakeRegistry;
  let watcher: DigestWatcher;

  beforeEach(() => {
    clock = new ManualClock();
    registry = new FakeRegistry();
    watcher = new DigestWatcher({ client: registry, logger: silentLogger(), clock });
    watcher.start();
  });

  afterEach(() => watcher.stop());

  async function advance(ms: number): Promise<void> {
    await flushPromises();
    clock.advance(ms);
    await flushPromises();
  }

  it('checks a thousand subscriptions on fifty references with fifty HEADs per cycle', async () => {
    const events: DigestEvent[] = [];
    for (let i = 0; i < 1000; i++) {
      watcher.subscribe(
        {
          reference: parseReference(`registry.example.com/team/app${i % 50}:1.0`),
          source: anonymousSource,
          intervalMs: 5 * MINUTE,
        },
        (e) => events.push(e),
      );
    }
    await flushPromises();
    assert.equal(registry.heads.length, 50, 'first cycle');
    assert.equal(events.length, 1000, 'every subscriber learns the digest');
    assert.deepEqual(registry.prefetches, ['registry.example.com:50'], 'one token request for the registry');
    await advance(5 * MINUTE);
    assert.equal(registry.heads.length, 100, 'second cycle: 50 more');
    assert.equal(events.length, 1000, 'no change, no event');
    assert.equal(watcher.states().length, 50);
  });

  it('tells every subscriber of a new digest, with the previous one', async () => {
    const seen: DigestEvent[][] = [[], []];
    for (const list of seen) {
      watcher.subscribe({ reference: parseReference('node:22'), source: anonymousSource, intervalMs: MINUTE }, (e) =>
        list.push(e),
      );
    }
    await flushPromises();
    registry.digests.set('docker.io/library/node:22', digest(7));
    await advance(1.5 * MINUTE);
    for (const list of seen) {
      assert.equal(list.length, 2);
      assert.equal(list[1]?.digest, digest(7));
      assert.equal(list[1]?.previousDigest, digest(0));
      assert.equal(list[1]?.reference, 'docker.io/library/node:22');
    }
  });

  it('gives a late subscriber the known digest without asking the registry', async () => {
    watcher.subscribe(
      { reference: parseReference('node:22'), source: anonymousSource, intervalMs: MINUTE },
      () => undefined,
    );
    await flushPromises();
    const late: DigestEvent[] = [];
    watcher.subscribe(
      { reference: parseReference('docker.io/library/node:22'), source: anonymousSource, intervalMs: MINUTE },
      (e) => late.push(e),
    );
    await flushPromises();
    assert.equal(registry.heads.length, 1);
    assert.equal(late[0]?.digest, digest(0));
  });

  it('checks at the shortest interval of its subscribers, and relaxes when that one leaves', async () => {
    watcher.subscribe(
      { reference: parseReference('node:22'), source: anonymousSource, intervalMs: 10 * MINUTE },
      () => undefined,
    );
    const fast = watcher.subscribe(
      { reference: parseReference('node:22'), source: anonymousSource, intervalMs: MINUTE },
      () => undefined,
    );
    await flushPromises();
    for (let i = 0; i < 6; i++) await advance(MINUTE);
    assert.ok(
      registry.heads.length >= 6 && registry.heads.length <= 7,
      `${registry.heads.length} checks in six minutes`,
    );
    fast.unsubscribe();
    const before = registry.heads.length;
    for (let i = 0; i < 4; i++) await advance(MINUTE);
    assert.equal(registry.heads.length, before, 'no check within half of the ten-minute interval');
    for (let i = 0; i < 11; i++) await advance(MINUTE);
    assert.equal(registry.heads.length, before + 1, 'one check in the next ten minutes');
  });

  it('keeps references with different credentials apart', async () => {
    const a: CredentialSource = { id: 'secret:ns/a', credentialFor: () => Promise.resolve({ kind: 'anonymous' }) };
    watcher.subscribe(
      { reference: parseReference('ghcr.io/acme/app:1'), source: a, intervalMs: MINUTE },
      () => undefined,
    );
    watcher.subscribe(
      { reference: parseReference('ghcr.io/acme/app:1'), source: anonymousSource, intervalMs: MINUTE },
      () => undefined,
    );
    await flushPromises();
    assert.deepEqual(registry.heads.sort(), ['ghcr.io/acme/app:1|anonymous', 'ghcr.io/acme/app:1|secret:ns/a']);
  });

  it('spreads groups over the interval, and keeps each group checked together at one interval', async () => {
    const refs = ['ghcr.io/acme/a:1', 'ghcr.io/acme/b:1', 'quay.io/acme/c:1', 'registry.example.com/x:1'];
    const subs = refs.map((r) =>
      watcher.subscribe(
        { reference: parseReference(r), source: anonymousSource, intervalMs: 10 * MINUTE },
        () => undefined,
      ),
    );
    await flushPromises();
    const next = () => subs.map((x) => x.state()!.nextCheckAt);
    const [a, b, c, d] = next();
    assert.equal(a, b, 'same registry and credentials: same slot');
    assert.ok(new Set([a, c, d]).size === 3, 'other registries: other slots');
    for (const n of next()) {
      const wait = n - clock.now();
      assert.ok(wait >= 5 * MINUTE && wait < 15 * MINUTE, `first wait ${wait}`);
    }
    const slots: number[][] = [next()];
    for (let cycle = 0; cycle < 3; cycle++) {
      await advance(Math.max(...slots.at(-1)!) - clock.now());
      slots.push(next());
    }
    for (let i = 0; i < subs.length; i++) {
      const gaps = slots.slice(1).map((cycle, k) => cycle[i]! - slots[k]![i]!);
      assert.deepEqual(gaps, [10 * MINUTE, 10 * MINUTE, 10 * MINUTE], 'steady state: exactly the interval');
    }
  });

  it('backs off a failing reference, never beyond its interval, records the error, and recovers', async () => {
    registry.failures.set('docker.io/library/node:22', new RegistryError('UNAVAILABLE', 'docker.io', 'HTTP 503'));
    let health = 0;
    let digests = 0;
    const s = watcher.subscribe(
      { reference: parseReference('node:22'), source: anonymousSource, intervalMs: MINUTE },
      () => digests++,
      () => health++,
    );
    await flushPromises();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const st = s.state()!;
      delays.push(st.nextCheckAt - st.checkedAt!);
      await advance(st.nextCheckAt - clock.now());
    }
    assert.equal(s.state()?.errorCode, 'UNAVAILABLE');
    assert.match(s.state()?.error ?? '', /HTTP 503/);
    assert.ok(delays[0]! >= 5_000 && delays[0]! <= 6_000, `first retry after ${delays[0]}`);
    assert.ok(delays[1]! > delays[0]!, 'grows');
    assert.ok(
      delays.every((d) => d <= MINUTE),
      'capped at the interval',
    );
    assert.equal(health, 1, 'told once that checks started failing, not at every retry');
    registry.failures.clear();
    await advance(MINUTE);
    assert.equal(s.state()?.error, undefined);
    assert.equal(s.state()?.failures, 0);
    assert.equal(digests, 1, 'the recovery delivers the digest learned');
    // Failing again and recovering with the same digest: told both times.
    // (to the next check exactly: its phase in the interval is hashed)
    const nextCheck = async (): Promise<void> => advance(s.state()!.nextCheckAt - clock.now());
    registry.failures.set('docker.io/library/node:22', new RegistryError('UNAVAILABLE', 'docker.io', 'HTTP 503'));
    await nextCheck();
    assert.equal(health, 2);
    registry.failures.clear();
    await nextCheck();
    assert.equal(health, 3);
    assert.equal(digests, 1);
  });

  it('pauses a registry that answers 429 for its Retry-After', async () => {
    registry.failures.set(
      'ghcr.io/acme/a:1',
      new RegistryError('RATE_LIMITED', 'ghcr.io', 'rate limited', { retryAfterMs: 10 * MINUTE }),
    );
    watcher.subscribe(
      { reference: parseReference('ghcr.io/acme/a:1'), source: anonymousSource, intervalMs: MINUTE },
      () => undefined,
    );
    watcher.subscribe(
      { reference: parseReference('ghcr.io/acme/b:1'), source: anonymousSource, intervalMs: MINUTE },
      () => undefined,
    );
    watcher.subscribe(
      { reference: parseReference('quay.io/acme/c:1'), source: anonymousSource, intervalMs: MINUTE },
      () => undefined,
    );
    await flushPromises();
    assert.equal(registry.heads.length, 3);
    registry.heads.length = 0;
    for (let i = 0; i < 5; i++) await advance(MINUTE);
    assert.ok(
      registry.heads.every((h) => h.startsWith('quay.io')),
      `only the other registry: ${registry.heads.join(', ')}`,
    );
    await advance(6 * MINUTE);
    assert.ok(
      registry.heads.some((h) => h.startsWith('ghcr.io/acme/b')),
      'resumed after Retry-After',
    );
  });

  function follow(tag: string): DigestEvent[] {
    const events: DigestEvent[] = [];
    watcher.subscribe(
      {
        reference: parseReference(`registry.example.com/team/app:${tag}`),
        source: anonymousSource,
        intervalMs: 60 * MINUTE,
      },
      (e) => events.push(e),
    );
    return events;
  }

  it('checks at once on a webhook notice, at most once per reference within the gap', async () => {
    follow('1.4');
    follow('1.5');
    await flushPromises();
    await advance(10_000);
    registry.heads.length = 0;
    assert.equal(watcher.checkNow({ registry: 'registry.example.com', repository: 'team/app', tag: '1.4' }), 1);
    await flushPromises();
    assert.deepEqual(registry.heads, ['registry.example.com/team/app:1.4|anonymous']);
    for (let i = 0; i < 20; i++)
      watcher.checkNow({ registry: 'registry.example.com', repository: 'team/app', tag: '1.4' });
    await flushPromises();
    assert.equal(registry.heads.length, 1, 'a flood of notices waits for the gap');
    // The follow-up looks of the first notice (50, 100, 200, 400 ms) are all the flood adds.
    for (const step of [50, 100, 200, 400, 800, 450]) await advance(step);
    assert.equal(registry.heads.length, 5, 'the triggered check and its four follow-up looks');
    await advance(60_000);
    assert.equal(registry.heads.length, 5, 'then nothing until the interval');
    assert.equal(
      watcher.checkNow({ registry: 'registry.example.com', repository: 'team/app' }),
      2,
      'no tag: every tag',
    );
    assert.equal(watcher.checkNow({ registry: 'other.example.com', repository: 'team/app' }), 0);
    assert.equal(watcher.checkNow({ repository: 'team/other' }), 0);
  });

  it('after a webhook that announces no digest, looks again at 50 ms, doubling, for 1.5 s, and stops at news', async () => {
    const events = follow('1');
    await flushPromises();
    await advance(10_000);
    registry.heads.length = 0;
    const at = clock.now();
    const times: number[] = [];
    const head = registry.head.bind(registry);
    registry.head = (ref, source) => {
      times.push(clock.now() - at);
      return head(ref, source);
    };
    watcher.checkNow({ repository: 'team/app', tag: '1' });
    await flushPromises();
    for (const step of [50, 100, 200, 400, 800]) await advance(step);
    assert.deepEqual(times, [0, 50, 150, 350, 750], 'no look beyond 1.5 s');
    await advance(10 * MINUTE);
    assert.equal(times.length, 5);

    // News on the second look ends the looks.
    times.length = 0;
    watcher.checkNow({ repository: 'team/app', tag: '1' });
    await flushPromises();
    registry.digests.set('registry.example.com/team/app:1', digest(9));
    await advance(50);
    await advance(100);
    assert.equal(times.length, 2);
    assert.equal(events.at(-1)?.digest, digest(9));
  });

  it('after a webhook that announces a digest, looks until the tag shows it, without waiting for the gap', async () => {
    const events = follow('1');
    await flushPromises();
    await advance(10_000);
    registry.heads.length = 0;
    assert.equal(watcher.checkNow({ repository: 'team/app', tag: '1', digest: digest(0) }), 1);
    await flushPromises();
    assert.equal(registry.heads.length, 0, 'a notice of the digest already known costs no request');

    watcher.checkNow({ repository: 'team/app', tag: '1', digest: digest(5) });
    await flushPromises();
    assert.equal(registry.heads.length, 1, 'news: looked at once');
    // Another push 10 ms later, within the gap: news again, looked at once too.
    await advance(10);
    watcher.checkNow({ repository: 'team/app', tag: '1', digest: digest(6) });
    await flushPromises();
    assert.equal(registry.heads.length, 2);
    // The tag moves to the first push, then to the second: the looks go on until the second.
    registry.digests.set('registry.example.com/team/app:1', digest(5));
    await advance(50);
    assert.equal(events.at(-1)?.digest, digest(5));
    registry.digests.set('registry.example.com/team/app:1', digest(6));
    await advance(100);
    assert.equal(events.at(-1)?.digest, digest(6));
    const looks = registry.heads.length;
    await advance(10 * MINUTE);
    assert.equal(registry.heads.length, looks, 'found: no more looks');

    // An announced digest the tag never shows: looks stop after 10 s (at most 2 s apart).
    watcher.checkNow({ repository: 'team/app', tag: '1', digest: digest(7) });
    await flushPromises();
    const before = registry.heads.length;
    for (let i = 0; i < 20; i++) await advance(500);
    const spent = registry.heads.length - before;
    assert.ok(spent >= 7 && spent <= 9, `${spent} looks in 10 s`);
    await advance(10 * MINUTE);
    assert.equal(registry.heads.length - before, spent);
  });

  it('stops checking a reference when its last subscriber leaves', async () => {
    const s = watcher.subscribe(
      { reference: parseReference('node:22'), source: anonymousSource, intervalMs: MINUTE },
      () => undefined,
    );
    await flushPromises();
    s.unsubscribe();
    await advance(10 * MINUTE);
    assert.equal(registry.heads.length, 1);
    assert.equal(watcher.states().length, 0);
    assert.equal(s.state(), undefined);
  });

  it('refuses to watch a reference pinned to a digest', () => {
    assert.throws(
      () =>
        watcher.subscribe(
          { reference: parseReference(`node@${digest(1)}`), source: anonymousSource, intervalMs: MINUTE },
          () => undefined,
        ),
      /pinned to a digest/,
    );
  });

  it('a listener that throws does not stop the others', async () => {
    const got: string[] = [];
    watcher.subscribe({ reference: parseReference('node:22'), source: anonymousSource, intervalMs: MINUTE }, () => {
      throw new Error('bad listener');
    });
    watcher.subscribe({ reference: parseReference('node:22'), source: anonymousSource, intervalMs: MINUTE }, (e) =>
      got.push(e.digest),
    );
    await flushPromises();
    assert.deepEqual(got, [digest(0)]);
  });

  describe('a registry whose request budget cannot meet the intervals', () => {
    const ref = (i: number) => parseReference(`budget.example.com/team/app${i}:1`);
    let health: number;
    const subscribeMany = (n: number, from = 0) =>
      Array.from({ length: n }, (_, i) =>
        watcher.subscribe(
          { reference: ref(from + i), source: anonymousSource, intervalMs: MINUTE },
          () => undefined,
          () => health++,
        ),
      );

    beforeEach(() => {
      health = 0;
      watcher.stop();
      const budgeted = Object.assign(registry, {
        budget: (r: string) => (r === 'budget.example.com' ? 60 : undefined),
      });
      watcher = new DigestWatcher({ client: budgeted, logger: silentLogger(), clock });
      watcher.start();
    });

    it('stretches every interval by the same factor and says so in each state', async () => {
      const subs = subscribeMany(120);
      await flushPromises();
      assert.equal(registry.heads.length, 120, 'the first look at each');
      assert.deepEqual(subs[0]!.state()?.budget, {
        registry: 'budget.example.com',
        neededPerMinute: 120,
        allowedPerMinute: 60,
        intervalMs: MINUTE,
        effectiveIntervalMs: 2 * MINUTE,
      });
      assert.equal(health, 120, 'every subscriber heard that its interval is stretched');
      const times: number[] = [];
      const head = registry.head.bind(registry);
      registry.head = (r, source) => {
        if (r.repository === 'team/app0') times.push(clock.now());
        return head(r, source);
      };
      for (let i = 0; i < 56; i++) await advance(MINUTE / 4);
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      assert.ok(gaps.length >= 5, `${gaps.length + 1} checks in 14 minutes`);
      assert.deepEqual(new Set(gaps), new Set([2 * MINUTE]), 'every 2 minutes instead of every minute');

      // Half of them leave: the other half fit the budget again.
      for (const s of subs.slice(60)) s.unsubscribe();
      await flushPromises();
      assert.equal(subs[0]!.state()?.budget, undefined);
      assert.equal(health, 180, 'and heard that the interval is met again');
    });

    it('a registry without a budget is never stretched', async () => {
      const subs = Array.from({ length: 200 }, (_, i) =>
        watcher.subscribe(
          { reference: parseReference(`free.example.com/team/app${i}:1`), source: anonymousSource, intervalMs: MINUTE },
          () => undefined,
        ),
      );
      await flushPromises();
      assert.equal(subs[0]!.state()?.budget, undefined);
    });
  });
});
