import assert from 'node:assert/strict';
import { intern, internDeep } from '../../../src/runtime/intern.ts';

describe('intern', () => {
  it('returns what it is given: short, long and undefined', () => {
    assert.equal(intern('Running'), 'Running');
    assert.equal(intern(undefined), undefined);
    const long = 'x'.repeat(600);
    assert.equal(intern(long), long);
  });

  it('keeps working past its bound (the pool starts afresh)', () => {
    for (let i = 0; i < 120_000; i++) assert.equal(intern(`unique-${i}`), `unique-${i}`);
    assert.equal(intern('after'), 'after');
  });

  it('internDeep leaves a parsed value equal to what it was, nested arrays and objects included', () => {
    const text = JSON.stringify({
      conditions: [{ type: 'Ready', status: 'True', message: 'up to date', observedGeneration: 3 }],
      workloads: [{ kind: 'Deployment', containers: ['app', 'sidecar'], pinned: true, none: null }],
    });
    const value = internDeep(JSON.parse(text) as unknown);
    assert.deepEqual(value, JSON.parse(text));
    assert.equal(internDeep(undefined), undefined);
    assert.equal(internDeep(7), 7);
  });
});
