// The webhook inbox's logic without the API server: what an entry may hold, and how the
// leader drains entries — each once, handled ones removed, 5xx callbacks tried again.
import assert from 'node:assert/strict';
import { InboxDrainer, parseEntry, type InboxEntry } from '../../../src/registry/webhooks/inbox.ts';
import type { PushNotice } from '../../../src/registry/watcher.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';
import { waitFor } from '../../support/manual-clock.ts';

const notices = (repository: string): InboxEntry => ({
  kind: 'notices',
  receiver: 'reg',
  notices: [{ registry: 'r.example', repository, tag: '1' }],
});

describe('webhook inbox entries', () => {
  it('reads back what a follower stores', () => {
    const n = notices('team/app');
    assert.deepEqual(parseEntry(JSON.stringify(n)), n);
    const c: InboxEntry = {
      kind: 'callback',
      buildId: 'pl123',
      body: Buffer.from('{}').toString('base64'),
      signature: 'sha256=ab',
    };
    assert.deepEqual(parseEntry(JSON.stringify(c)), c);
  });

  it('refuses what is not an entry, field by field', () => {
    for (const bad of [
      'not json',
      'null',
      '[]',
      '{"kind":"other"}',
      '{"kind":"notices","receiver":"r","notices":[{"tag":"1"}]}',
      '{"kind":"notices","receiver":"r","notices":[{"repository":"a","tag":7}]}',
      '{"kind":"notices","receiver":"","notices":[]}',
      '{"kind":"callback","buildId":"x"}',
      `{"kind":"callback","buildId":"${'x'.repeat(64)}","body":"e30="}`,
      '{"kind":"callback","buildId":"x","body":"e30=","signature":5}',
    ]) {
      assert.equal(parseEntry(bad), undefined, bad);
    }
  });
});

describe('webhook inbox drainer', () => {
  function harness(callbackStatus: () => number, retryMs = 5) {
    const handled: PushNotice[][] = [];
    const callbacks: string[] = [];
    const removed: string[][] = [];
    const drainer = new InboxDrainer({
      remove: (keys) => {
        removed.push(keys);
        return Promise.resolve();
      },
      handlers: {
        notices: (_receiver, n) => void handled.push(n),
        callback: (buildId) => {
          callbacks.push(buildId);
          return Promise.resolve({ status: callbackStatus(), message: 'x' });
        },
      },
      log: silentLogger(),
      retryMs,
    });
    return { drainer, handled, callbacks, removed };
  }

  it('hands each entry on once, in order of arrival, and removes it; drops one that is not an entry', async () => {
    const h = harness(() => 202);
    const data = { b: JSON.stringify(notices('two')), a: JSON.stringify(notices('one')), c: 'garbage' };
    h.drainer.drain(data);
    h.drainer.drain(data); // the same entries seen again (another writer's update) before removal
    await waitFor(() => h.removed.length === 1, 'removal');
    assert.deepEqual(
      h.handled.map((n) => n[0]!.repository),
      ['one', 'two'],
    );
    assert.deepEqual(h.removed, [['a', 'b', 'c']]);
    // Once seen removed, a key is forgotten.
    h.drainer.drain({});
    h.drainer.drain({ d: JSON.stringify(notices('three')) });
    await waitFor(() => h.removed.length === 2, 'second removal');
    assert.equal(h.handled.length, 3);
    h.drainer.stop();
  });

  it('tries a callback answered with a 5xx again, then removes it once recorded', async () => {
    let status = 503;
    // Slow enough retries that twelve attempts (a give-up) cannot pass while the test looks.
    const h = harness(() => status, 200);
    const entry: InboxEntry = { kind: 'callback', buildId: 'pl1', body: 'e30=' };
    h.drainer.drain({ k: JSON.stringify(entry) });
    await waitFor(() => h.callbacks.length >= 2, 'a second attempt');
    assert.ok(
      h.removed.every((r) => !r.includes('k')),
      'not removed while the leader cannot record it',
    );
    status = 202;
    await waitFor(() => h.removed.some((r) => r.includes('k')), 'removal once recorded');
    assert.ok(h.callbacks.length >= 3);
    h.drainer.stop();
  });

  it('gives a callback up after twelve attempts, with an error', async () => {
    const h = harness(() => 500);
    h.drainer.drain({ k: JSON.stringify({ kind: 'callback', buildId: 'pl1', body: 'e30=' }) });
    await waitFor(() => h.removed.some((r) => r.includes('k')), 'given up', 5_000);
    assert.equal(h.callbacks.length, 12);
    h.drainer.stop();
  });
});
