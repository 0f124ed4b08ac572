import assert from 'node:assert/strict';
import { parseLabelSelector } from '../../../src/runtime/label-selector.ts';

describe('label selectors (the API string form)', () => {
  it('reads every requirement the API server accepts', () => {
    assert.deepEqual(parseLabelSelector(''), []);
    assert.deepEqual(parseLabelSelector('patchline.dev/shard=one'), [
      { key: 'patchline.dev/shard', operator: 'in', values: ['one'] },
    ]);
    assert.deepEqual(parseLabelSelector('!patchline.dev/shard'), [
      { key: 'patchline.dev/shard', operator: 'notExists' },
    ]);
    assert.deepEqual(parseLabelSelector(' tier , env != prod, shard in (a, b),x==y, zone notin (eu)'), [
      { key: 'tier', operator: 'exists' },
      { key: 'env', operator: 'notIn', values: ['prod'] },
      { key: 'shard', operator: 'in', values: ['a', 'b'] },
      { key: 'x', operator: 'in', values: ['y'] },
      { key: 'zone', operator: 'notIn', values: ['eu'] },
    ]);
    assert.deepEqual(parseLabelSelector('empty='), [{ key: 'empty', operator: 'in', values: [''] }]);
  });

  for (const [selector, message] of [
    ['a=b,', /empty requirement/],
    ['a in (b', /unbalanced/],
    ['a in ((b))', /unbalanced/],
    ['Bad_Prefix/x=y', /prefix must be a DNS subdomain/],
    ['-a=b', /not a label key/],
    ['a=b c', /not a label key/],
    ['a=-b', /not a label value/],
    [`a=${'v'.repeat(64)}`, /not a label value/],
    ['a>1', /not a label key/],
  ] as const) {
    it(`refuses ${JSON.stringify(selector)}`, () => assert.throws(() => parseLabelSelector(selector), message));
  }
});
