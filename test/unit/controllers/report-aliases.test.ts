import assert from 'node:assert/strict';
import { ReportAliasWatch } from '../../../src/controllers/report-aliases.ts';

describe('report alias watch', () => {
  it('names the policies a digest concerns, replacing what a policy waited on before', () => {
    const watch = new ReportAliasWatch();
    watch.set('shop/web', ['sha256:a', 'sha256:b']);
    watch.set('shop/api', ['sha256:b']);
    assert.deepEqual(watch.policiesFor('sha256:b').sort(), ['shop/api', 'shop/web']);
    watch.set('shop/web', ['sha256:c']);
    assert.deepEqual(watch.policiesFor('sha256:a'), []);
    assert.deepEqual(watch.policiesFor('sha256:b'), ['shop/api']);
    assert.deepEqual(watch.policiesFor('sha256:c'), ['shop/web']);
    watch.set('shop/api', []);
    assert.deepEqual(watch.policiesFor('sha256:b'), []);
  });
});
