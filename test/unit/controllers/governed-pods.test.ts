import assert from 'node:assert/strict';
import { selectorQuery } from '../../../src/controllers/governed-pods.ts';

describe('the labelSelector a newly governed workload lists its pods with', () => {
  it('says every term of the workload selector as the API reads it', () => {
    assert.equal(selectorQuery({ matchLabels: { app: 'web', tier: 'front' } }), 'app=web,tier=front');
    assert.equal(
      selectorQuery({
        matchLabels: { app: 'web' },
        matchExpressions: [
          { key: 'track', operator: 'In', values: ['stable', 'canary'] },
          { key: 'env', operator: 'NotIn', values: ['dev'] },
          { key: 'team', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      }),
      'app=web,track in (stable,canary),env notin (dev),team,!legacy',
    );
  });

  it('lists nothing rather than a whole namespace for an empty or missing selector', () => {
    assert.equal(selectorQuery(undefined), undefined);
    assert.equal(selectorQuery({}), undefined);
  });
});
