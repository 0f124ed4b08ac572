// The end-to-end suite runs its files in a listed order (later files rely on what earlier ones
// exercised, such as the least-privilege check): a test file missing from the list would
// never run in CI, silently. Every e2e test file is listed, and every listed file exists.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/fixtures.ts';

describe('test suites', () => {
  it('lists every end-to-end test file in the order the suite runs, and nothing else', () => {
    const config = JSON.parse(readFileSync(join(ROOT, 'test', 'e2e', '.mocharc.json'), 'utf8')) as { spec: string[] };
    const files = readdirSync(join(ROOT, 'test', 'e2e'))
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => `test/e2e/${f}`)
      .sort();
    assert.deepEqual([...config.spec].sort(), files);
  });
});
