import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONFIG_DOCS, configKeys, formattedConfigDocs } from '../../scripts/generate-config-docs.ts';

describe('configuration file reference (docs/reference/config-file.md)', () => {
  it('is what the generator makes of the schema now (run `npm run docs:config` after changing it)', async () => {
    assert.equal(readFileSync(CONFIG_DOCS, 'utf8'), await formattedConfigDocs());
  });

  it('lists every key with its default, from the values the code applies', () => {
    const row = (key: string) => configKeys().find((r) => r.key === key);
    assert.equal(row('registries[].requestsPerMinute')?.default, '', 'no cap unless configured or documented');
    assert.match(row('registries[].requestsPerMinute')?.description ?? '', /docker.io: 1,000/);
    assert.equal(row('registries[].maxConcurrency')?.default, '`8`');
    assert.equal(row('webhooks.maxBodyBytes')?.default, '`1048576`');
    assert.equal(row('webhooks.burst')?.default, '`50`');
    assert.match(row('webhooks.receivers[].auth.type')?.rules ?? '', /one of `bearer`, `basic`/);
    assert.match(row('webhooks.receivers')?.rules ?? '', /`name` unique/);
    assert.match(row('sigstore')?.rules ?? '', /at most one of `trustedRootFile`, `tuf`/);
    assert.deepEqual(
      configKeys()
        .filter((r) => !r.key.includes('.') && !r.key.includes('['))
        .map((r) => r.key),
      ['registries', 'webhooks', 'sigstore'],
    );
  });
});
