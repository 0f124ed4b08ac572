import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CRD_DOCS, formattedCrdDocs } from '../../scripts/generate-crd-docs.ts';

describe('CRD reference (docs/reference/crds.md)', () => {
  it('is what the generator makes of the CRDs now (run `npm run docs:crds` after changing crds/)', async () => {
    assert.equal(readFileSync(CRD_DOCS, 'utf8'), await formattedCrdDocs());
  });

  it('lists every field with its limits and rules', async () => {
    const text = await formattedCrdDocs();
    for (const expected of [
      '`verify.signature.keys[].ignoreTlog`',
      '`verify.vulnerabilities.requireScan`',
      '`workloads[].vulnerabilities.blocking`',
      'one of `CRITICAL`, `HIGH`, `MEDIUM`, `LOW`, `NONE`',
      'rule: set exactly one of issuer or issuerRegExp',
      '`build.webhook.url`',
    ])
      assert.ok(text.includes(expected), expected);
  });
});
