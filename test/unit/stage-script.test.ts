// The calm build output of the test tools' Go builds (scripts/stage.sh): one line per stage
// in a log that is not a terminal, with the time it is expected to take; a progress bar on a
// terminal; the tool's own output kept in a log file; how long each stage took remembered as the
// next build's estimate; and a failure that says where the log is and shows its end.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../support/fixtures.ts';

const STAGE = join(ROOT, 'scripts', 'stage.sh');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  log: string;
  timings: string;
}

/** Runs one stage of `command` with a first-build estimate; `dir` keeps the log and timings between runs. */
function stage(
  command: string,
  options: { expected?: number; dir?: string; env?: Record<string, string>; terminal?: boolean } = {},
): Run {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'patchline-stage-'));
  const log = join(dir, 'tool-build.log');
  const script = `source "${STAGE}"; run_stage tool 2/3 "building tool" "${log}" ${options.expected ?? 0} ${command}`;
  // `script` gives the stage a pseudo-terminal, as a user's shell has.
  const r = options.terminal
    ? spawnSync('script', ['-qefc', `bash -c '${script.replaceAll("'", "'\\''")}'`, '/dev/null'], {
        encoding: 'utf8',
        env: { ...process.env, ...options.env },
      })
    : spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, ...options.env } });
  const timings = join(dir, 'tool-build.timings');
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    log: readFileSync(log, 'utf8'),
    timings: existsSync(timings) ? readFileSync(timings, 'utf8') : '',
  };
}

function shell(expression: string): string {
  return spawnSync('bash', ['-c', `source "${STAGE}"; ${expression}`], { encoding: 'utf8' }).stdout;
}

describe('build stages (scripts/stage.sh)', () => {
  it('prints one line when a stage starts and one when it ends, and keeps the output in the log', () => {
    const r = stage(`bash -c 'for i in 1 2 3; do echo "go: downloading module $i"; done'`);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^tool: \[2\/3\] building tool…\ntool: \[2\/3\] building tool: done in \d+s\n$/);
    assert.match(r.log, /go: downloading module 3/);
    assert.doesNotMatch(r.stdout, /downloading module/, 'no wall of tool output');
  });

  it('says how long a first build takes, and expects what the last build took after that', () => {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-stage-'));
    const first = stage('true', { expected: 330, dir });
    assert.match(first.stdout, /^tool: \[2\/3\] building tool… \(about 6 min\)\n/);
    assert.match(first.timings, /^2\/3 \d+\n$/, 'the stage remembered how long it took');
    writeFileSync(join(dir, 'tool-build.timings'), '1/3 4\n2/3 42\n');
    const next = stage('true', { expected: 330, dir });
    assert.match(next.stdout, /^tool: \[2\/3\] building tool… \(about 42s\)\n/);
    assert.match(next.timings, /^1\/3 4\n2\/3 \d+\n$/, 'other stages kept, this one replaced');
  });

  it('in a CI log, says the stage is still running every so often', () => {
    const r = stage('sleep 2.5', { expected: 200, env: { STAGE_HEARTBEAT_SECONDS: '1' } });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^tool: \[2\/3\] building tool… 1s of about 3 min$/m);
    assert.match(r.stdout, /^tool: \[2\/3\] building tool… 2s of about 3 min$/m);
  });

  it('on a terminal, fills a progress bar in place and clears it when the stage ends', () => {
    const r = stage('sleep 1.5', { expected: 4, terminal: true });
    assert.equal(r.status, 0);
    // Each frame starts at the line's start and clears it (carriage return, erase to end of line).
    const frames = r.stdout.split('\r\x1b[K');
    assert.ok(
      frames.some((f) => /^tool: \[2\/3\] building tool \[#*\.+\] \d+s of about 4s$/.test(f)),
      JSON.stringify(frames),
    );
    assert.match(frames.at(-1) ?? '', /^tool: \[2\/3\] building tool: done in \d+s\r?\n$/);
  });

  it('adds up the stages to the whole build, and rounds estimates as estimates', () => {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-stage-'));
    const log = join(dir, 'x-build.log');
    assert.equal(shell(`stage_expected_total "${log}" 1/3 15 2/3 330 3/3 25`), '370\n');
    writeFileSync(join(dir, 'x-build.timings'), '2/3 200\n');
    assert.equal(shell(`stage_expected_total "${log}" 1/3 15 2/3 330 3/3 25`), '240\n');
    assert.equal(
      shell('for s in 7 74 370; do stage_about $s; echo; done; stage_duration 45; echo; stage_duration 185'),
      'about 7s\nabout 70s\nabout 6 min\n45s\n3m05s',
    );
  });

  it('on failure says where the output is, shows its end, and exits with the tool status', () => {
    const r = stage(`bash -c 'echo "go: build failed: undefined: x" >&2; exit 7'`);
    assert.equal(r.status, 7);
    assert.match(
      r.stderr,
      /tool: \[2\/3\] building tool failed after \d+s; the output is in \S+build\.log, ending with:/,
    );
    assert.match(r.stderr, /\| go: build failed: undefined: x/);
    assert.equal(r.timings, '', 'a failed stage is not an estimate');
  });
});
