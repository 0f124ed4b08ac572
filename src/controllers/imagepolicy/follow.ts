// Which tag an ImagePolicy follows: one fixed tag, the highest tag in a semver range, or the
// highest tag matching a pattern, ordered by a captured part. Pure: the tag list comes from
// the registry (one listing per check), and only the chosen tag is then resolved to a digest
// with a HEAD — never a manifest per tag.
import semver from 'semver';
import type { ImagePolicy } from '../../api/v1alpha1/index.ts';

export type FollowSpec = ImagePolicy['spec']['follow'];

export type TagChoice =
  | { tag: string; considered: number }
  /** No tag qualifies: the reason says why (and how many tags were looked at). */
  | { tag?: undefined; considered: number; reason: string };

/** Tags like 1.4.2 or v1.4.2 (a leading v is common); anything else is not a version. */
function versionOf(tag: string): semver.SemVer | null {
  return semver.parse(tag.startsWith('v') ? tag.slice(1) : tag);
}

/**
 * Translates the Go/Python named-group syntax (?P<name>…) users copy from Flux and Argo CD
 * into JavaScript's (?<name>…). Throws on an invalid expression.
 */
export function compilePattern(regex: string): RegExp {
  return new RegExp(regex.replace(/\(\?P</g, '(?<'));
}

/** The value a pattern orders by: `$name`, `${name}` or `$1` replaced from the match; empty means the whole tag. */
function extracted(match: RegExpExecArray, extract: string | undefined): string {
  if (!extract) return match[0];
  return extract.replace(/\$(?:\{(\w+)\}|(\w+))/g, (_, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    const value = /^\d+$/.test(name) ? match[Number(name)] : match.groups?.[name];
    return value ?? '';
  });
}

/** Numbers compared exactly, however long (build timestamps, run numbers). */
function compareNumeric(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  return x.length !== y.length ? x.length - y.length : x < y ? -1 : x > y ? 1 : 0;
}

export function chooseTag(follow: FollowSpec, tags: readonly string[]): TagChoice {
  const considered = tags.length;
  if (follow.tag !== undefined) {
    return tags.includes(follow.tag)
      ? { tag: follow.tag, considered }
      : { considered, reason: `the tag ${follow.tag} does not exist` };
  }
  if (follow.semver) {
    const { range, includePrerelease } = follow.semver;
    let best: { tag: string; version: semver.SemVer } | undefined;
    for (const tag of tags) {
      const version = versionOf(tag);
      if (!version || !semver.satisfies(version, range, { includePrerelease: includePrerelease === true })) continue;
      // Equal versions (1.4.2 and v1.4.2): the tag without the v wins, for a stable choice.
      if (!best || semver.gt(version, best.version) || (semver.eq(version, best.version) && tag < best.tag)) {
        best = { tag, version };
      }
    }
    return best ? { tag: best.tag, considered } : { considered, reason: `no tag satisfies the semver range ${range}` };
  }
  if (follow.pattern) {
    const { regex, extract, order } = follow.pattern;
    const re = compilePattern(regex);
    const numeric = order === 'Numerical';
    let best: { tag: string; key: string } | undefined;
    for (const tag of tags) {
      const match = re.exec(tag);
      if (!match) continue;
      const key = extracted(match, extract);
      if (numeric && !/^\d+$/.test(key)) continue;
      const cmp =
        best === undefined ? 1 : numeric ? compareNumeric(key, best.key) : key < best.key ? -1 : key > best.key ? 1 : 0;
      if (cmp > 0 || (cmp === 0 && best !== undefined && tag > best.tag)) best = { tag, key };
    }
    return best
      ? { tag: best.tag, considered }
      : { considered, reason: `no tag matches ${regex}${numeric ? ' with a numerical value to order by' : ''}` };
  }
  return { considered, reason: 'spec.follow sets none of tag, semver or pattern' };
}
