// Writes a generated file, or with --check fails when the file on disk differs: shared by the
// generators of docs/reference/ so that a test and `npm run check:generated` catch stale output.
import { readFileSync, writeFileSync } from 'node:fs';

export function writeOrCheck(path: string, text: string, command: string, what: string): void {
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      // missing: out of date
    }
    if (current !== text) {
      process.stderr.write(`${path} is out of date: run \`${command}\`\n`);
      process.exit(1);
    }
    process.stdout.write(`${what} is up to date\n`);
  } else {
    writeFileSync(path, text);
    process.stdout.write(`wrote ${path}\n`);
  }
}
