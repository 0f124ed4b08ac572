// The calm build output of the test tools' Go builds (scripts/stage.sh): one line per stage
// in a log that is not a terminal, the tool's own output kept in a log file, and a failure
// that says where that file is and shows its end.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../support/fixtures.ts';

function stage(command: string): { status: number | null; stdout: string; stderr: string; log: string } {
  const log = join(mkdtempSync(join(tmpdir(), 'patchline-stage-')), 'build.log');
  const r = spawnSync(
    'bash',
    ['-c', `source "${join(ROOT, 'scripts', 'stage.sh')}"; run_stage tool 2/3 "building tool" "${log}" ${command}`],
    { encoding: 'utf8' },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, log: readFileSync(log, 'utf8') };
}

describe('build stages (scripts/stage.sh)', () => {
  it('prints one line when a stage starts and one when it ends, and keeps the output in the log', () => {
    const r = stage(`bash -c 'for i in 1 2 3; do echo "go: downloading module $i"; done'`);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^tool: \[2\/3\] building tool…\ntool: \[2\/3\] building tool: done in \d+s\n$/);
    assert.match(r.log, /go: downloading module 3/);
    assert.doesNotMatch(r.stdout, /downloading module/, 'no wall of tool output');
  });

  it('on failure says where the output is, shows its end, and exits with the tool status', () => {
    const r = stage(`bash -c 'echo "go: build failed: undefined: x" >&2; exit 7'`);
    assert.equal(r.status, 7);
    assert.match(
      r.stderr,
      /tool: \[2\/3\] building tool failed after \d+s; the output is in \S+build\.log, ending with:/,
    );
    assert.match(r.stderr, /\| go: build failed: undefined: x/);
  });
});
