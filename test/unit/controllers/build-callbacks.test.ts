// Build callbacks through the real webhook server: signed with the trigger's own key,
// matched to the build in flight by its id, committed like a polled status.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { RebuildTrigger } from '../../../src/api/v1alpha1/index.ts';
import { BuildCallbacks } from '../../../src/controllers/rebuildtrigger/callbacks.ts';
import { WebhookServer } from '../../../src/registry/webhooks/server.ts';
import type { InboxEntry } from '../../../src/registry/webhooks/inbox.ts';
import { MemoryEventRecorder } from '../../../src/runtime/events.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';
import type { StatusWriter } from '../../../src/runtime/status.ts';

const ID = 'plaaaabbbbccccdddd';
const DIGEST = `sha256:${'e'.repeat(64)}`;

function trigger(): RebuildTrigger {
  return {
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'RebuildTrigger',
    metadata: { name: 'app', namespace: 'shop', uid: 'u' },
    spec: {
      baseImages: [{ image: 'r.example/base:1' }],
      target: { image: 'r.example/app:1' },
      build: { webhook: { url: 'https://b.example/builds' }, credentialsRef: { name: 'creds' } },
    },
    status: {
      build: {
        provider: 'webhook',
        phase: 'Running',
        correlationId: ID,
        id: ID,
        attempt: 1,
        startedAt: '2026-11-22T10:00:00Z',
      },
    },
  };
}

describe('Build callbacks', () => {
  let server: WebhookServer;
  let base = '';
  let current: RebuildTrigger;
  let key: string | undefined;
  let leader = true;
  let callbacks: BuildCallbacks;
  const stored: InboxEntry[] = [];
  const enqueued: string[] = [];
  const events = new MemoryEventRecorder();
  const status: StatusWriter = {
    write: () => Promise.reject(new Error('not used')),
    commit: <T, S>(_type: unknown, _key: unknown, mutate: (c: T) => S | undefined) => {
      const next = mutate(current as T);
      if (next !== undefined) current = { ...current, status: next as RebuildTrigger['status'] };
      return Promise.resolve(next);
    },
  } as StatusWriter;

  before(async () => {
    server = new WebhookServer({
      host: '127.0.0.1',
      port: 0,
      receivers: [],
      sink: { checkNow: () => 0 },
      callbacks: (callbacks = new BuildCallbacks({
        list: () => [current],
        credentials: {
          buildCredentials: (): Promise<Record<string, string>> => {
            const data: Record<string, string> = {};
            if (key !== undefined) data.hmacKey = key;
            return Promise.resolve(data);
          },
        },
        status,
        events,
        enqueue: (k) => enqueued.push(k),
        logger: silentLogger(),
        now: () => new Date('2026-11-22T10:05:00Z'),
      })),
      logger: silentLogger(),
      maxBodyBytes: 4096,
      isLeader: () => leader,
      inbox: { put: (entry: InboxEntry) => Promise.resolve(void stored.push(entry)) },
    });
    base = `http://127.0.0.1:${(await server.start()).port}`;
  });
  after(() => server.stop());
  beforeEach(() => {
    current = trigger();
    key = 'callback-key';
    leader = true;
    enqueued.length = 0;
    stored.length = 0;
    events.events.length = 0;
  });

  const post = (id: string, body: string, signWith: string | undefined = key) =>
    fetch(`${base}/callbacks/builds/${id}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(signWith
          ? { 'x-patchline-signature': `sha256=${createHmac('sha256', signWith).update(body).digest('hex')}` }
          : {}),
      },
      body,
    });

  it('records a signed callback for the build in flight and wakes the trigger', async () => {
    const res = await post(ID, JSON.stringify({ status: 'succeeded', digest: DIGEST, url: 'https://b.example/r/1' }));
    assert.equal(res.status, 202);
    assert.equal(current.status?.build?.phase, 'Succeeded');
    assert.equal(current.status?.build?.outputDigest, DIGEST);
    assert.equal(current.status?.build?.url, 'https://b.example/r/1');
    assert.equal(current.status?.build?.finishedAt, '2026-11-22T10:05:00Z');
    assert.deepEqual(enqueued, ['shop/app']);
    assert.deepEqual(
      events.events.map((e) => e.reason),
      ['BuildSucceeded'],
    );
  });

  it('refuses a wrong or missing signature, and changes nothing', async () => {
    const body = JSON.stringify({ status: 'failed' });
    assert.equal((await post(ID, body, 'wrong-key')).status, 401);
    assert.equal((await post(ID, body, '')).status, 401);
    assert.equal(current.status?.build?.phase, 'Running');
    assert.deepEqual(enqueued, []);
  });

  it('off the leader: checks the callback, stores it for the leader, refuses a forged one', async () => {
    leader = false;
    const body = JSON.stringify({ status: 'succeeded', digest: DIGEST });
    assert.equal((await post(ID, body, 'wrong-key')).status, 401);
    assert.equal((await post('plunknown', body)).status, 404);
    assert.equal((await post(ID, JSON.stringify({ status: 'exploded' }))).status, 400);
    assert.equal(stored.length, 0, 'nothing forged or malformed is stored');
    const res = await post(ID, body);
    assert.equal(res.status, 202);
    assert.equal(current.status?.build?.phase, 'Running', 'a follower records nothing itself');
    assert.equal(stored.length, 1);
    const entry = stored[0]!;
    assert.ok(entry.kind === 'callback');
    // The leader receives the stored callback as if it had come directly.
    const answer = await callbacks.receive(entry.buildId, Buffer.from(entry.body, 'base64'), entry.signature);
    assert.equal(answer.status, 202);
    assert.equal(current.status?.build?.phase, 'Succeeded');
    assert.equal(current.status?.build?.outputDigest, DIGEST);
  });

  it('answers 404 for an unknown build, 400 for a body it cannot read, 403 without a key', async () => {
    assert.equal((await post('plunknown', JSON.stringify({ status: 'failed' }))).status, 404);
    assert.equal((await post('../etc', '{}')).status, 404);
    assert.equal((await post(ID, 'not json')).status, 400);
    assert.equal((await post(ID, JSON.stringify({ status: 'exploded' }))).status, 400);
    leader = true;
    key = undefined;
    assert.equal((await post(ID, JSON.stringify({ status: 'failed' }), 'x')).status, 403);
    assert.equal(current.status?.build?.phase, 'Running');
  });

  it('ignores a late callback for a build that already ended', async () => {
    current.status!.build!.phase = 'Failed';
    const res = await post(ID, JSON.stringify({ status: 'succeeded', digest: DIGEST }));
    assert.equal(res.status, 202);
    assert.equal(current.status?.build?.phase, 'Failed');
    assert.deepEqual(events.events, []);
  });
});
