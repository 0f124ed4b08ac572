// Functions of src/ stay short enough to read on one screen (docs/architecture.md): one over 80
// lines says why in a `long-function:` comment right above it.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { functionLengths } from '../../scripts/function-lengths.ts';
import { ROOT } from '../support/fixtures.ts';

const body = (lines: number): string => Array.from({ length: lines }, (_, i) => `  const v${i} = ${i};`).join('\n');

describe('function lengths', () => {
  it('no function of src/ is over 80 lines without saying why', () => {
    const long = functionLengths(ROOT).filter((f) => f.lines > 80 && !f.explained);
    assert.deepEqual(
      long.map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`),
      [],
      'split these into named steps (npm run lengths lists them)',
    );
  });

  it('measures functions, methods and closures by name, and sees a long-function: comment', () => {
    const root = mkdtempSync(join(tmpdir(), 'patchline-lengths-'));
    mkdirSync(join(root, 'src'));
    writeFileSync(
      join(root, 'src', 'a.ts'),
      [
        `export function plain(): void {\n${body(3)}\n}`,
        `// long-function: a table reads better whole\nexport function table(): void {\n${body(90)}\n}`,
        `class Box {\n  method(): void {\n${body(5)}\n  }\n}`,
        `export const arrow = (): void => {\n${body(2)}\n};`,
      ].join('\n'),
    );
    const found = functionLengths(root);
    assert.deepEqual(
      found.map((f) => [f.name, f.lines, f.explained]),
      [
        ['table', 92, true],
        ['Box.method', 7, false],
        ['plain', 5, false],
        ['arrow', 4, false],
      ],
    );
  });
});
