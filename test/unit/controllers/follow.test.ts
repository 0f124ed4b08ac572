import assert from 'node:assert/strict';
import { chooseTag, compilePattern } from '../../../src/controllers/imagepolicy/follow.ts';

describe('ImagePolicy: choosing the tag to follow', () => {
  const tags = ['1.4.0', '1.4.2', 'v1.4.3', '1.5.0-rc.1', '1.10.0', '2.0.0', 'latest', 'main-abc123-1700000000'];

  it('a fixed tag, when it exists', () => {
    assert.deepEqual(chooseTag({ tag: 'latest' }, tags), { tag: 'latest', considered: 8 });
    assert.deepEqual(chooseTag({ tag: '9.9' }, tags), { considered: 8, reason: 'the tag 9.9 does not exist' });
  });

  it('the highest version in a semver range, with or without a leading v, numerically ordered', () => {
    assert.equal(chooseTag({ semver: { range: '~1.4' } }, tags).tag, 'v1.4.3');
    assert.equal(chooseTag({ semver: { range: '>=1.4.0 <2.0.0' } }, tags).tag, '1.10.0', '1.10 is above 1.5 and 1.4');
    assert.equal(chooseTag({ semver: { range: '^2' } }, tags).tag, '2.0.0');
    assert.equal(
      chooseTag({ semver: { range: '~1.5.0-0' } }, tags).tag,
      '1.5.0-rc.1',
      'a pre-release range admits its own pre-releases',
    );
    assert.equal(chooseTag({ semver: { range: '>=1.5.0-0 <1.6.0' } }, ['1.5.0-rc.1', '1.5.0-rc.2']).tag, '1.5.0-rc.2');
    assert.equal(
      chooseTag({ semver: { range: '^1.4.0', includePrerelease: true } }, ['1.4.0', '1.99.0-rc.1']).tag,
      '1.99.0-rc.1',
    );
    assert.equal(
      chooseTag({ semver: { range: '^1.4.0' } }, ['1.4.0', '1.99.0-rc.1']).tag,
      '1.4.0',
      'pre-releases excluded by default',
    );
    assert.equal(
      chooseTag({ semver: { range: '^1.4.0' } }, ['v1.4.0', '1.4.0']).tag,
      '1.4.0',
      'same version: a stable choice',
    );
    assert.deepEqual(chooseTag({ semver: { range: '^3' } }, tags), {
      considered: 8,
      reason: 'no tag satisfies the semver range ^3',
    });
  });

  it('the highest tag matching a pattern, ordered by a named or numbered group', () => {
    const build = [
      'main-aaa-1700000000',
      'main-bbb-999999999',
      'main-ccc-1700000100',
      'feature-ddd-1800000000',
      'main-eee-x',
    ];
    assert.equal(
      chooseTag({ pattern: { regex: '^main-[a-z]+-(?P<ts>[0-9]+)$', extract: '$ts', order: 'Numerical' } }, build).tag,
      'main-ccc-1700000100',
      'numerically, not alphabetically (999999999 sorts last as text)',
    );
    assert.equal(
      chooseTag({ pattern: { regex: '^main-([a-z]+)-', extract: '$1', order: 'Alphabetical' } }, build).tag,
      'main-eee-x',
    );
    assert.equal(
      chooseTag({ pattern: { regex: '^main-', order: 'Alphabetical' } }, build).tag,
      'main-eee-x',
      'the whole tag by default',
    );
    assert.equal(
      chooseTag({ pattern: { regex: '^r(?<n>\\d+)$', extract: '${n}', order: 'Numerical' } }, [
        'r9',
        'r10',
        'r0010',
        'rx',
      ]).tag,
      'r10',
      'equal numbers (10 and 0010): the higher tag wins, for a stable choice',
    );
    assert.deepEqual(chooseTag({ pattern: { regex: '^nothing$', order: 'Numerical' } }, build), {
      considered: 5,
      reason: 'no tag matches ^nothing$ with a numerical value to order by',
    });
  });

  it('compiles the (?P<name>) syntax of other tools and refuses invalid expressions', () => {
    assert.equal(compilePattern('^(?P<v>\\d+)$').exec('42')?.groups?.v, '42');
    assert.throws(() => compilePattern('(unclosed'));
  });
});
