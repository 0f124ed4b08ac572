import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT } from '../support/fixtures.ts';

const pages = [
  join(ROOT, 'README.md'),
  ...readdirSync(join(ROOT, 'docs'), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(ROOT, 'docs', f)),
];

describe('documentation links', () => {
  it('every relative link of README.md and docs/ points to a file that exists, and every anchor to a heading', () => {
    const broken: string[] = [];
    for (const page of pages) {
      // Code spans are not links (a name pattern such as `[a-z]([-a-z]*)` looks like one).
      const text = readFileSync(page, 'utf8').replace(/`[^`\n]*`/g, '``');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^(https?:|mailto:)/.test(target)) continue;
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const file = path ? join(dirname(page), path) : page;
        if (!existsSync(file)) {
          broken.push(`${page.slice(ROOT.length + 1)}: ${target}`);
          continue;
        }
        if (anchor && file.endsWith('.md')) {
          const slugs = [...readFileSync(file, 'utf8').matchAll(/^#+ (.+)$/gm)].map((h) =>
            h[1]!
              .toLowerCase()
              .replace(/[^a-z0-9 -]/g, '')
              .replace(/ /g, '-'),
          );
          if (!slugs.includes(anchor)) broken.push(`${page.slice(ROOT.length + 1)}: ${target} (no such heading)`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });
});
