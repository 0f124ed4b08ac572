import assert from 'node:assert/strict';
import { Informer } from '../../../src/runtime/informer.ts';
import { createKubeClient, type KubeClient } from '../../../src/runtime/kube-client.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';
import { createRegistry, type Registry } from '../../../src/runtime/metrics.ts';
import { FakeApiServer, type FakeObject } from '../../support/fake-apiserver.ts';
import { waitFor } from '../../support/manual-clock.ts';

describe('Informer (against a fake API server over HTTP)', () => {
  let server: FakeApiServer;
  let client: KubeClient;
  let informer: Informer<FakeObject>;
  let registry: Registry;
  const seen: string[] = [];

  beforeEach(async () => {
    server = new FakeApiServer();
    await server.start();
    client = await createKubeClient(server.kubeConfig());
    registry = createRegistry(false);
    seen.length = 0;
  });

  afterEach(async () => {
    await informer?.stop();
    await client.close();
    await server.stop();
  });

  function newInformer(pageSize = 500): Informer<FakeObject> {
    informer = new Informer<FakeObject>(client, {
      name: 'widgets',
      path: server.path,
      logger: silentLogger(),
      registry,
      backoff: { baseMs: 5, maxMs: 40 },
      pageSize,
    });
    informer.addHandlers({
      onAdd: (o) => seen.push(`add ${o.metadata.name}`),
      onUpdate: (a, b) =>
        seen.push(`update ${b.metadata.name} ${a.metadata.resourceVersion}->${b.metadata.resourceVersion}`),
      onDelete: (o) => seen.push(`delete ${o.metadata.name}`),
    });
    return informer;
  }

  it('lists in pages, fills the cache and reports synced', async () => {
    for (let i = 0; i < 7; i++) server.upsert(`w${i}`);
    await newInformer(3).start();
    assert.ok(informer.hasSynced());
    assert.equal(informer.list().length, 7);
    assert.equal(server.lists().length, 3, 'three pages of at most three');
    assert.deepEqual(
      server.lists().map((r) => r.query.continue ?? ''),
      ['', '3', '6'],
    );
    assert.equal(seen.filter((s) => s.startsWith('add')).length, 7);
  });

  it('shapes each list page as it arrives: no page waits raw for the next one', async () => {
    for (let i = 0; i < 7; i++) server.upsert(`w${i}`, { big: 'x'.repeat(1000) });
    const shapedBeforePage: number[] = [];
    let shaped = 0;
    informer = new Informer<FakeObject>(client, {
      name: 'widgets',
      path: server.path,
      logger: silentLogger(),
      pageSize: 3,
      transform: (o) => {
        shaped++;
        return { ...(o as FakeObject), spec: {} };
      },
    });
    const fetch = client.requestJson.bind(client);
    client.requestJson = <T>(method: string, path: string, options?: Parameters<KubeClient['requestJson']>[2]) => {
      shapedBeforePage.push(shaped);
      return fetch<T>(method, path, options);
    };
    await informer.start();
    assert.deepEqual(shapedBeforePage, [0, 3, 6], 'every item of a page is shaped before the next page is asked for');
    assert.ok(informer.list().every((o) => JSON.stringify(o.spec) === '{}'));
  });

  it('keeps nothing of what the transform refuses, and forgets an object once it refuses it', async () => {
    server.upsert('kept', { keep: true });
    server.upsert('refused', { keep: false });
    const events: string[] = [];
    informer = new Informer<FakeObject>(client, {
      name: 'widgets',
      path: server.path,
      logger: silentLogger(),
      transform: (o) => (((o as FakeObject).spec as { keep: boolean }).keep ? (o as FakeObject) : undefined),
    });
    informer.addHandlers({
      onAdd: (o) => events.push(`add ${o.metadata.name}`),
      onDelete: (o) => events.push(`delete ${o.metadata.name}`),
    });
    await informer.start();
    await waitFor(() => server.openWatches() === 1, 'watch open');
    assert.deepEqual(informer.keys(), ['default/kept']);
    server.upsert('kept', { keep: false });
    await waitFor(() => informer.keys().length === 0, 'kept is refused now');
    assert.deepEqual(events, ['add kept', 'delete kept']);
  });

  it('insertIfAbsent: takes an object read outside the watch unless cached or just deleted', async () => {
    server.upsert('cached', { v: 1 });
    server.upsert('doomed', { v: 1 });
    const added: string[] = [];
    newInformer();
    informer.addHandlers({ onAdd: (o) => added.push(o.metadata.name) });
    await informer.start();
    await waitFor(() => server.openWatches() === 1, 'watch open');
    const doomed = informer.get('default/doomed')!;
    server.remove('doomed');
    await waitFor(() => informer.get('default/doomed') === undefined, 'doomed deleted');
    added.length = 0;
    const read = (name: string, v: number): FakeObject => ({
      metadata: { name, namespace: 'default', resourceVersion: '1' },
      spec: { v },
    });
    assert.equal(informer.insertIfAbsent(read('fresh', 7)), true);
    assert.deepEqual(informer.get('default/fresh')?.spec, { v: 7 });
    assert.equal(informer.insertIfAbsent(read('cached', 0)), false, 'what the watch gave is at least as new');
    assert.deepEqual(informer.get('default/cached')?.spec, { v: 1 });
    assert.equal(informer.insertIfAbsent(doomed), false, 'a read older than the deletion does not bring it back');
    assert.deepEqual(added, ['fresh']);
  });

  it('delivers watch events as add, update (with the old object) and delete', async () => {
    server.upsert('a');
    await newInformer().start();
    await waitFor(() => server.openWatches() === 1, 'watch open');
    server.upsert('b');
    const a2 = server.upsert('a', { size: 2 });
    server.remove('b');
    await waitFor(() => seen.length === 4, 'four events');
    assert.deepEqual(seen, ['add a', 'add b', `update a 101->${a2.metadata.resourceVersion}`, 'delete b']);
    assert.deepEqual(informer.get('default/a')?.spec, { size: 2 });
    assert.equal(informer.get('default/b'), undefined);
  });

  it('caches what the transform keeps, indexed by namespace, through lists, watches and deletes', async () => {
    server.upsert('a', { size: 1, big: 'x'.repeat(100) }, 'one');
    server.upsert('b', { size: 2 }, 'two');
    informer = new Informer<FakeObject>(client, {
      name: 'widgets',
      path: server.path,
      logger: silentLogger(),
      transform: (o) => {
        const w = o as FakeObject;
        return { ...w, spec: { size: (w.spec as { size: number }).size } };
      },
    });
    await informer.start();
    await waitFor(() => server.openWatches() === 1, 'watch open');
    assert.deepEqual(informer.get('one/a')?.spec, { size: 1 }, 'only the kept fields');
    server.upsert('c', { size: 3, big: 'y' }, 'one');
    await waitFor(() => informer.listNamespace('one').length === 2, 'c added to its namespace');
    assert.deepEqual(
      informer
        .listNamespace('one')
        .map((o) => [o.metadata.name, o.spec])
        .sort(),
      [
        ['a', { size: 1 }],
        ['c', { size: 3 }],
      ],
    );
    server.remove('b', 'two');
    await waitFor(() => informer.listNamespace('two').length === 0, 'b gone from its namespace');
    assert.deepEqual(informer.listNamespace('nowhere'), []);
  });

  it('asks for bookmarks and resumes from the last resourceVersion when a watch ends', async () => {
    server.upsert('a');
    await newInformer().start();
    await waitFor(() => server.openWatches() === 1, 'watch open');
    assert.equal(server.watchRequests()[0]?.query.allowWatchBookmarks, 'true');
    server.upsert('a', { v: 2 });
    await waitFor(() => informer.latestResourceVersion() === String(server.resourceVersion), 'event seen');
    server.endWatches();
    await waitFor(() => server.watchRequests().length === 2 && server.openWatches() === 1, 'second watch');
    assert.equal(server.watchRequests()[1]?.query.resourceVersion, String(server.resourceVersion));
    assert.equal(server.lists().length, 1, 'no relist');
  });

  it('moves its resourceVersion forward on bookmarks', async () => {
    await newInformer().start();
    await waitFor(() => server.openWatches() === 1, 'watch open');
    server.silentlyRemove('nothing'); // advances the server's resourceVersion without an event
    server.bookmark();
    await waitFor(() => informer.latestResourceVersion() === String(server.resourceVersion), 'bookmark applied');
  });

  it('relists when a watch gets a 410 ERROR event, and reports objects deleted meanwhile', async () => {
    server.upsert('a');
    server.upsert('b');
    await newInformer().start();
    await waitFor(() => server.openWatches() === 1, 'watch open');
    server.silentlyRemove('b');
    server.upsert('c'); // delivered on the watch before it expires
    server.compact();
    server.expireWatches();
    await waitFor(() => server.lists().length === 2 && server.openWatches() === 1, 'relist and new watch');
    assert.ok(seen.includes('delete b'), `deletes missed events: ${seen.join(', ')}`);
    assert.deepEqual(informer.keys().sort(), ['default/a', 'default/c']);
  });

  it('relists when resuming a watch is refused with HTTP 410', async () => {
    server.upsert('a');
    await newInformer().start();
    await waitFor(() => server.openWatches() === 1, 'watch open');
    server.upsert('b');
    await waitFor(() => informer.keys().length === 2, 'b seen');
    server.silentlyRemove('a');
    server.compact();
    server.endWatches();
    await waitFor(() => server.lists().length === 2 && server.openWatches() === 1, 'relist after 410');
    assert.deepEqual(informer.keys(), ['default/b']);
    assert.ok(seen.includes('delete a'));
  });

  it('restarts with backoff after a failed list, and syncs when the server recovers', async () => {
    server.upsert('a');
    server.failNext('list', 503, 'ServiceUnavailable');
    server.failNext('list', 500);
    await newInformer().start();
    assert.equal(server.lists().length, 3);
    assert.equal(informer.keys().length, 1);
    assert.match(await registry.metrics(), /patchline_informer_errors_total\{informer="widgets"\} 2/);
  });

  it('keeps going after watch errors other than 410 (500, 403, broken connections)', async () => {
    server.upsert('a');
    await newInformer().start();
    await waitFor(() => server.openWatches() === 1, 'watch open');
    server.failNext('watch', 500);
    server.failNext('watch', 403, 'Forbidden');
    server.endWatches();
    await waitFor(() => server.watchRequests().length === 4 && server.openWatches() === 1, 'watching again');
    assert.equal(server.lists().length, 1, 'resumed from resourceVersion, no relist');
    server.upsert('late');
    await waitFor(() => informer.get('default/late') !== undefined, 'event after recovery');
  });

  it('holds one watch at a time across many reconnects, and none after stop()', async () => {
    await newInformer().start();
    for (let i = 0; i < 10; i++) {
      await waitFor(() => server.openWatches() === 1, `watch ${i} open`);
      server.endWatches();
    }
    await waitFor(() => server.openWatches() === 1, 'last watch open');
    assert.equal(server.openWatches(), 1);
    await informer.stop();
    await waitFor(() => server.openWatches() === 0, 'watch closed');
  });

  it('treats a resource that is not served as empty and synced when optional, and picks it up once served', async () => {
    server.upsert('a');
    server.failNext('list', 404, 'NotFound');
    informer = new Informer<FakeObject>(client, {
      name: 'vulnerabilityreports',
      path: server.path,
      logger: silentLogger(),
      registry,
      optional: true,
      absentRetryMs: 5,
    });
    await informer.start();
    assert.ok(informer.hasSynced());
    await waitFor(() => informer.list().length === 1, 'listed once served');
    assert.equal(server.lists().length, 2);
  });
});
