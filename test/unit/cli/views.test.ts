// The CLI's pure parts: rows, explanations, tables fitted to a terminal, words for kinds.
import assert from 'node:assert/strict';
import type { ImagePolicy, RebuildTrigger } from '../../../src/api/v1alpha1/index.ts';
import { CliError, get, kindOf } from '../../../src/cli/commands.ts';
import { KubeApiError } from '../../../src/runtime/errors.ts';
import { table } from '../../../src/cli/render.ts';
import {
  age,
  buildHistory,
  eventHistory,
  explainWorkload,
  filterInventory,
  inventory,
  inventoryRow,
  policyRow,
  span,
} from '../../../src/cli/views.ts';

const now = new Date('2026-12-06T12:00:00Z');
const D = `sha256:${'a'.repeat(64)}`;
const E = `sha256:${'e'.repeat(64)}`;

function policy(status: ImagePolicy['status'], spec: Partial<ImagePolicy['spec']> = {}): ImagePolicy {
  return {
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name: 'web', namespace: 'shop', creationTimestamp: '2026-12-06T10:00:00Z' },
    spec: { image: 'registry.example.com/shop/web', ...spec },
    ...(status ? { status } : {}),
  } as ImagePolicy;
}

describe('kubectl patchline views', () => {
  it('says how long ago in the largest sensible unit', () => {
    assert.equal(age('2026-12-06T11:59:30Z', now), '30s');
    assert.equal(age('2026-12-06T11:00:00Z', now), '60m');
    assert.equal(age('2026-12-06T00:00:00Z', now), '12h');
    assert.equal(age('2026-11-06T12:00:00Z', now), '30d');
    assert.equal(age(undefined, now), '');
  });

  it('rows a policy: Suspended and Stalled win over Ready', () => {
    const status = {
      conditions: [
        { type: 'Ready', status: 'False', reason: 'RevertLoop', message: 'm', lastTransitionTime: '' },
        { type: 'Stalled', status: 'True', reason: 'RevertLoop', message: 'm', lastTransitionTime: '' },
      ],
      latest: { tag: '1.4', digest: D, verified: true },
      upToDate: '0/1',
    } as ImagePolicy['status'];
    const row = policyRow(policy(status), now);
    assert.deepEqual(
      [row.ready, row.reason, row.latest, row.verified, row.age],
      ['Stalled', 'RevertLoop', `1.4@${'a'.repeat(12)}`, 'true', '2h'],
    );
    assert.equal(policyRow(policy(status, { suspend: true }), now).ready, 'Suspended');
  });

  it('explains a container held back by a check, one on a GitOps commit, and one up to date', () => {
    const refused = policy({
      latest: {
        tag: '1.4',
        digest: D,
        verified: false,
        checks: [{ name: 'signature', passed: false, message: 'no cosign signature found' }],
      },
      workloads: [
        { kind: 'Deployment', name: 'web', container: 'app', state: 'Blocked', runningDigest: E, message: 'held' },
      ],
    });
    const why = explainWorkload('Deployment', 'web', 'shop', [refused]);
    assert.deepEqual(why.containers[0]?.reasons, [
      `the newest candidate 1.4@${'a'.repeat(12)} is refused: signature: no cosign signature found`,
    ]);
    const gitops = policy({
      latest: { tag: '1.4', digest: D, verified: true },
      gitOps: { desired: { digest: D }, commit: 'c0ffee1234567890' },
      workloads: [
        { kind: 'Deployment', name: 'web', container: 'app', state: 'Rolling', runningDigest: E, message: 'waiting' },
      ],
    });
    assert.ok(
      explainWorkload('deployment', 'web', 'shop', [gitops]).containers[0]?.reasons.some((r) =>
        r.startsWith(`GitOps: ${'a'.repeat(12)} committed as c0ffee123456, waiting for the GitOps engine`),
      ),
    );
    const done = policy({
      latest: { tag: '1.4', digest: D, verified: true },
      workloads: [{ kind: 'Deployment', name: 'web', container: 'app', state: 'UpToDate', runningDigest: D }],
    });
    assert.deepEqual(explainWorkload('Deployment', 'web', 'shop', [done]).containers[0]?.reasons, []);
    assert.match(
      explainWorkload('Deployment', 'api', 'shop', [done]).note ?? '',
      /no ImagePolicy in shop governs Deployment\/api/,
    );
  });

  it('fits a table to the terminal, cutting the last column, colouring states only when asked', () => {
    const rows = [
      {
        name: 'web',
        ready: 'True',
        message: 'Following registry.example.com/shop/web:1.4: accepted and rolled out everywhere',
      },
    ];
    const narrow = table(rows, ['name', 'ready', 'message'], { width: 40, color: false });
    for (const line of narrow.trimEnd().split('\n')) assert.ok(line.length <= 40, line);
    assert.match(narrow, /…$/m);
    const wide = table(rows, ['name', 'ready', 'message'], { width: 200, color: true });
    assert.ok(wide.includes('\x1b[32mTrue'), 'Ready True in green on a colour terminal');
    assert.ok(wide.includes('accepted and rolled out everywhere'));
    assert.ok(!table(rows, ['name', 'ready'], { color: false }).includes('\x1b['));
  });

  it('reads the words for kinds, and refuses others as a usage error', () => {
    assert.equal(kindOf('policies'), 'policy');
    assert.equal(kindOf('RT'), 'trigger');
    assert.throws(
      () => kindOf('pods'),
      (err: unknown) => err instanceof CliError && err.exitCode === 2,
    );
  });
});

describe('kubectl patchline history', () => {
  it('orders Events, counts series, and says how long each stage took', () => {
    const entries = eventHistory([
      { reason: 'RolledOut', type: 'Normal', note: 'done', eventTime: '2026-12-06T10:03:04.000000Z' },
      { reason: 'CandidateAccepted', type: 'Normal', note: 'ok', eventTime: '2026-12-06T10:00:00.000000Z' },
      {
        reason: 'RolloutStarted',
        type: 'Normal',
        note: 'go',
        eventTime: '2026-12-06T09:00:00.000000Z',
        series: { count: 3, lastObservedTime: '2026-12-06T10:00:01.500000Z' },
      },
      { reason: 'NoTime', note: 'ignored' },
    ]);
    assert.deepEqual(
      entries.map((e) => [e.reason, e.after, e.count]),
      [
        ['CandidateAccepted', undefined, undefined],
        ['RolloutStarted', '1.5s', 3],
        ['RolledOut', '3m03s', undefined],
      ],
    );
    assert.equal(span(2 * 3600_000 + 10 * 60_000), '2h10m');
  });

  it("rows a trigger's builds with the time each took", () => {
    const t = {
      metadata: { name: 'web', namespace: 'shop' },
      spec: { baseImages: [], target: { image: 'r/web' } },
      status: {
        history: [
          {
            id: 'b1',
            baseDigest: D,
            startedAt: '2026-12-06T10:00:00Z',
            finishedAt: '2026-12-06T10:04:30Z',
            phase: 'Succeeded',
            outputDigest: E,
          },
        ],
      },
    } as unknown as RebuildTrigger;
    assert.deepEqual(buildHistory(t), [
      {
        build: 'b1',
        base: 'a'.repeat(12),
        started: '2026-12-06T10:00:00Z',
        took: '4m30s',
        result: 'Succeeded',
        output: 'e'.repeat(12),
        message: '',
      },
    ]);
  });
});

describe('kubectl patchline inventory', () => {
  it('groups what runs by digest, with the base a trigger built it on, and filters it', () => {
    const running = policy({
      workloads: [
        {
          kind: 'Deployment',
          name: 'web',
          container: 'app',
          state: 'UpToDate',
          runningDigest: D,
          since: '2026-11-01T00:00:00Z',
          builtAt: '2026-10-30T00:00:00Z',
        },
        {
          kind: 'StatefulSet',
          name: 'db',
          container: 'app',
          state: 'UpToDate',
          runningDigest: D,
          since: '2026-12-01T00:00:00Z',
        },
        {
          kind: 'Deployment',
          name: 'api',
          container: 'app',
          state: 'Blocked',
          runningDigest: E,
          since: '2026-12-06T11:00:00Z',
          vulnerabilities: { critical: 2, high: 1 },
        },
      ],
    });
    const trigger = {
      metadata: { name: 'web', namespace: 'shop' },
      spec: {
        baseImages: [{ image: 'registry.example.com/base/debian:12' }],
        target: { image: 'registry.example.com/shop/web:1.4' },
      },
      status: { history: [{ id: 'b1', baseDigest: E, outputDigest: D, phase: 'Succeeded' }] },
    } as unknown as RebuildTrigger;
    const entries = inventory([running], [trigger]);
    assert.deepEqual(
      entries.map((x) => [x.digest, x.workloads, x.runningSince, x.base?.image]),
      [
        [
          D,
          ['shop/Deployment/web/app', 'shop/StatefulSet/db/app'],
          '2026-11-01T00:00:00Z',
          'registry.example.com/base/debian',
        ],
        [E, ['shop/Deployment/api/app'], '2026-12-06T11:00:00Z', undefined],
      ],
    );
    assert.equal(inventoryRow(entries[1]!, now).vulnerabilities, '2C 1H 0M 0L');
    assert.deepEqual(
      filterInventory(entries, { base: 'registry.example.com/base/debian:12' }, now).map((x) => x.digest),
      [D],
    );
    assert.deepEqual(
      filterInventory(entries, { olderThanMs: 30 * 86_400_000 }, now).map((x) => x.digest),
      [D],
    );
    assert.deepEqual(
      filterInventory([{ ...entries[1]!, cves: ['CVE-1'] }, entries[0]!], { cve: 'CVE-1' }, now).map((x) => x.digest),
      [E],
    );

    // Age is the build time's (D was built 37.5 days ago, first ran 35.5 days ago) or, when the config
    // has none, at least the time it has run (E: an hour).
    assert.deepEqual([inventoryRow(entries[0]!, now).built, inventoryRow(entries[0]!, now).on], ['38d', '36d']);
    assert.equal(inventoryRow(entries[1]!, now).built, '');
    assert.deepEqual(
      filterInventory(entries, { olderThanMs: 36 * 86_400_000 }, now).map((x) => x.digest),
      [D],
    );
    assert.deepEqual(
      filterInventory(entries, { olderThanMs: 30 * 60_000 }, now).map((x) => x.digest),
      [D, E],
    );
  });
});

describe('kubectl patchline against a busy API server', () => {
  it('tries a 429 again, a second later, and names a 403 as the missing permission', async () => {
    let calls = 0;
    const out: string[] = [];
    const client = {
      server: 'https://example.test',
      requestJson: <T>(): Promise<T> => {
        calls++;
        if (calls === 1) return Promise.reject(new KubeApiError(429, 'TooManyRequests', 'storage is (re)initializing'));
        return Promise.resolve({ items: [] } as T);
      },
      stream: () => Promise.reject(new Error('unused')),
      close: () => Promise.resolve(),
    };
    const ctx = {
      client,
      namespace: 'shop',
      allNamespaces: false,
      output: 'json' as const,
      term: { color: false },
      write: (t: string) => void out.push(t),
      now: () => now,
    };
    assert.equal(await get(ctx, ['policies']), 0);
    assert.equal(calls, 2);
    assert.equal(out.join(''), '[]\n');
    const forbidden = { ...client, requestJson: () => Promise.reject(new KubeApiError(403, 'Forbidden', 'no')) };
    await assert.rejects(
      get({ ...ctx, client: forbidden }, ['policies']),
      (err: unknown) =>
        err instanceof CliError &&
        err.exitCode === 4 &&
        /missing permission: get imagepolicies.patchline.dev in namespace shop/.test(err.message),
    );
  });
});
