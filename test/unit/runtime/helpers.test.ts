import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { applyConditions, findCondition, setCondition, timestamp } from '../../../src/runtime/conditions.ts';
import { formatDuration, parseDuration } from '../../../src/runtime/duration.ts';
import { KubeApiError, isConflict, isGone, isNotFound, toKubeError } from '../../../src/runtime/errors.ts';
import { collectionPath, formatMicroTime, keyOf, parseKey, type KubeObject } from '../../../src/runtime/kube-types.ts';
import { AuditedEventRecorder, MemoryEventRecorder } from '../../../src/runtime/events.ts';
import { REDACTED, createLogger, redact } from '../../../src/runtime/logger.ts';
import { statusEqual } from '../../../src/runtime/status.ts';
import { backoffDelay } from '../../../src/runtime/clock.ts';
import { specOrMetadataChanged } from '../../../src/runtime/manager.ts';

const t0 = new Date('2026-11-22T10:00:00.123Z');
const t1 = new Date('2026-11-22T11:00:00Z');

describe('conditions', () => {
  it('stamps lastTransitionTime when a condition is added, at second precision', () => {
    const list = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'Ok', message: 'fine' }, t0);
    assert.equal(list[0]?.lastTransitionTime, '2026-11-22T10:00:00Z');
  });

  it('keeps lastTransitionTime when only reason, message or generation change', () => {
    let list = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'A', message: 'a', observedGeneration: 1 },
      t0,
    );
    list = setCondition(list, { type: 'Ready', status: 'False', reason: 'B', message: 'b', observedGeneration: 2 }, t1);
    assert.deepEqual(list, [
      {
        type: 'Ready',
        status: 'False',
        reason: 'B',
        message: 'b',
        observedGeneration: 2,
        lastTransitionTime: timestamp(t0),
      },
    ]);
  });

  it('moves lastTransitionTime when the status changes', () => {
    let list = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, t0);
    list = setCondition(list, { type: 'Ready', status: 'True', reason: 'A', message: 'a' }, t1);
    assert.equal(list[0]?.lastTransitionTime, timestamp(t1));
  });

  it('does not mutate its input', () => {
    const input = Object.freeze([
      Object.freeze({ type: 'Ready', status: 'True' as const, reason: 'A', message: 'a', lastTransitionTime: 'x' }),
    ]);
    const out = setCondition(input, { type: 'Ready', status: 'False', reason: 'B', message: 'b' }, t1);
    assert.equal(input[0]?.status, 'True');
    assert.equal(out[0]?.status, 'False');
  });

  it('applies sets and removals in order', () => {
    const base = setCondition(undefined, { type: 'Stalled', status: 'True', reason: 'X', message: 'x' }, t0);
    const out = applyConditions(
      base,
      [{ type: 'Ready', status: 'True', reason: 'Ok', message: '' }, { remove: 'Stalled' }],
      t1,
    );
    assert.deepEqual(
      out.map((c) => c.type),
      ['Ready'],
    );
    assert.equal(findCondition(out, 'Stalled'), undefined);
  });

  it('truncates very long messages', () => {
    const list = setCondition(
      undefined,
      { type: 'Ready', status: 'True', reason: 'A', message: 'x'.repeat(40_000) },
      t0,
    );
    assert.equal(list[0]?.message.length, 32_768);
  });
});

describe('durations', () => {
  it('parses Go durations', () => {
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration('10m'), 600_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('720h'), 720 * 3_600_000);
  });

  it('rejects what Go rejects, with a readable message', () => {
    for (const bad of ['', '10', '1d', '10 minutes', 'h', '5m3']) {
      assert.throws(() => parseDuration(bad), /duration/, bad);
    }
  });

  it('formats milliseconds briefly', () => {
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(45_000), '45s');
    assert.equal(formatDuration(250), '250ms');
    assert.equal(formatDuration(0), '0s');
  });
});

describe('errors', () => {
  it('normalises client-node ApiException bodies', () => {
    const e = toKubeError({ code: 404, body: JSON.stringify({ reason: 'NotFound', message: 'leases "x" not found' }) });
    assert.ok(e instanceof KubeApiError);
    assert.equal(e.reason, 'NotFound');
    assert.ok(isNotFound(e));
    assert.match(e.message, /leases "x" not found/);
  });

  it('classifies codes', () => {
    assert.ok(isConflict(new KubeApiError(409, 'Conflict', '')));
    assert.ok(isGone(new KubeApiError(410, 'Expired', '')));
    assert.ok(!isNotFound(new Error('network')));
  });
});

describe('kube types', () => {
  it('builds keys and paths', () => {
    assert.equal(keyOf({ metadata: { namespace: 'ns', name: 'a' } }), 'ns/a');
    assert.deepEqual(parseKey('ns/a'), { namespace: 'ns', name: 'a' });
    assert.deepEqual(parseKey('cluster-scoped'), { namespace: '', name: 'cluster-scoped' });
    const type = {
      group: 'patchline.dev',
      version: 'v1alpha1',
      plural: 'imagepolicies',
      kind: 'ImagePolicy',
      namespaced: true,
    };
    assert.equal(collectionPath(type, 'shop'), '/apis/patchline.dev/v1alpha1/namespaces/shop/imagepolicies');
    assert.equal(collectionPath(type), '/apis/patchline.dev/v1alpha1/imagepolicies');
    assert.equal(
      collectionPath({ ...type, group: '', version: 'v1', plural: 'pods' }, 'x'),
      '/api/v1/namespaces/x/pods',
    );
  });

  it('formats MicroTime with six fractional digits, as the API server parses it', () => {
    assert.equal(formatMicroTime(Date.parse('2026-11-22T09:15:03.365Z')), '2026-11-22T09:15:03.365000Z');
  });
});

describe('status comparison', () => {
  it('ignores undefined fields and key order', () => {
    assert.ok(statusEqual({ a: 1, b: undefined, c: { x: 1, y: 2 } }, { c: { y: 2, x: 1 }, a: 1 }));
    assert.ok(!statusEqual({ a: [1, 2] }, { a: [2, 1] }));
    assert.ok(!statusEqual(undefined, {}));
  });
});

describe('backoff', () => {
  it('doubles from the base, caps at the maximum, and adds bounded jitter', () => {
    const policy = { baseMs: 100, maxMs: 1000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, policy)),
      [100, 200, 400, 800, 1000, 1000],
    );
    assert.equal(
      backoffDelay(1, { ...policy, jitter: 0.5 }, () => 1),
      300,
    );
  });
});

describe('update predicate', () => {
  const base: KubeObject = { metadata: { generation: 1, annotations: { a: '1' }, resourceVersion: '5' } };
  it('ignores status-only updates', () => {
    assert.ok(!specOrMetadataChanged(base, { metadata: { ...base.metadata, resourceVersion: '6' } }));
  });
  it('accepts spec, annotation and deletion changes', () => {
    assert.ok(specOrMetadataChanged(base, { metadata: { ...base.metadata, generation: 2 } }));
    assert.ok(specOrMetadataChanged(base, { metadata: { ...base.metadata, annotations: { a: '2' } } }));
    assert.ok(specOrMetadataChanged(base, { metadata: { ...base.metadata, deletionTimestamp: 'now' } }));
  });
});

describe('logger', () => {
  it('redacts secret-looking fields at any depth', () => {
    assert.deepEqual(
      redact({ user: 'u', password: 'p', nested: { Authorization: 'Bearer x', list: [{ token: 't' }] } }),
      {
        user: 'u',
        password: REDACTED,
        nested: { Authorization: REDACTED, list: [{ token: REDACTED }] },
      },
    );
  });

  it('writes JSON lines without the secret values', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = createLogger({ level: 'info', format: 'json', stream });
    log.info('registry login', {
      registry: 'ghcr.io',
      token: 'ghp_supersecret',
      headers: { authorization: 'Basic abc' },
    });
    await new Promise((resolve) => setImmediate(resolve));
    const text = lines.join('');
    assert.ok(!text.includes('supersecret') && !text.includes('Basic abc'), text);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(entry.message, 'registry login');
    assert.equal(entry.registry, 'ghcr.io');
    assert.equal(entry.level, 'info');
  });

  it('writes every Event as an audit line too, and still records it', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const inner = new MemoryEventRecorder();
    const audited = new AuditedEventRecorder(inner, createLogger({ level: 'info', format: 'json', stream }));
    audited.record(
      { kind: 'ImagePolicy', metadata: { namespace: 'shop', name: 'web', uid: 'u1' } },
      'Warning',
      'RolledBack',
      'Rollout',
      'Deployment/web/app: rollout of sha256:2222 failed; rolled back to sha256:1111',
      {
        workload: 'Deployment/web',
        container: 'app',
        digest: 'sha256:1111',
        failedDigest: 'sha256:2222',
        audit: false,
      },
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(inner.events.length, 1);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.deepEqual(
      [entry.audit, entry.kind, entry.namespace, entry.name, entry.uid, entry.type, entry.reason, entry.action],
      [true, 'ImagePolicy', 'shop', 'web', 'u1', 'Warning', 'RolledBack', 'Rollout'],
    );
    assert.match(String(entry.message), /rolled back to sha256:1111/);
    // The details are fields of the line (they cannot unset the audit mark), not part of the Event.
    assert.deepEqual(
      [entry.workload, entry.container, entry.digest, entry.failedDigest],
      ['Deployment/web', 'app', 'sha256:1111', 'sha256:2222'],
    );
    assert.equal(
      inner.events[0]?.note,
      'Deployment/web/app: rollout of sha256:2222 failed; rolled back to sha256:1111',
    );
  });
});
