// Spec checks that the API server's schema and CEL rules cannot make: a cron expression
// the scheduler accepts, a real IANA time zone, a regular expression that compiles, a
// semver range that parses. Pure functions; each problem names its field.
import { validateCronExpression } from 'cron';
import semver from 'semver';
import { ReferenceError, parseReference } from '../registry/reference.ts';
import { parseDuration } from '../runtime/duration.ts';

export interface SpecProblem {
  field: string;
  message: string;
}

export interface WindowSpec {
  schedule: string;
  duration?: string;
  timeZone?: string;
}

function checkTimeZone(field: string, timeZone: string): SpecProblem[] {
  try {
    new Intl.DateTimeFormat('en', { timeZone });
    return [];
  } catch {
    return [{ field, message: `unknown time zone "${timeZone}"; use an IANA name such as UTC or Europe/Berlin` }];
  }
}

export function checkDuration(
  field: string,
  value: string | undefined,
  limits: { minMs?: number; maxMs?: number } = {},
): SpecProblem[] {
  if (value === undefined) return [];
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (err) {
    return [{ field, message: err instanceof Error ? err.message : String(err) }];
  }
  if (limits.minMs !== undefined && ms < limits.minMs)
    return [{ field, message: `"${value}" is shorter than allowed` }];
  if (limits.maxMs !== undefined && ms > limits.maxMs) return [{ field, message: `"${value}" is longer than allowed` }];
  return [];
}

export function checkWindow(field: string, window: WindowSpec | undefined): SpecProblem[] {
  if (!window) return [];
  const problems: SpecProblem[] = [];
  const cron = validateCronExpression(window.schedule);
  if (!cron.valid) {
    problems.push({
      field: `${field}.schedule`,
      message: `"${window.schedule}" is not a valid cron expression: ${cron.error?.message ?? 'unknown error'}`,
    });
  }
  if (window.timeZone) problems.push(...checkTimeZone(`${field}.timeZone`, window.timeZone));
  problems.push(...checkDuration(`${field}.duration`, window.duration, { minMs: 60_000 }));
  return problems;
}

/**
 * Compiles a regular expression written in RE2/Go syntax, as users of Flux and Kubernetes
 * write them: the Go named group (?P<name>...) becomes JavaScript's (?<name>...).
 */
function compileRegex(pattern: string): RegExp {
  return new RegExp(pattern.replace(/\(\?P</g, '(?<'));
}

export function checkRegex(field: string, pattern: string | undefined): SpecProblem[] {
  if (pattern === undefined) return [];
  try {
    compileRegex(pattern);
    return [];
  } catch (err) {
    return [{ field, message: `invalid regular expression: ${err instanceof Error ? err.message : String(err)}` }];
  }
}

export function checkSemverRange(field: string, range: string | undefined): SpecProblem[] {
  if (range === undefined) return [];
  return semver.validRange(range) === null
    ? [{ field, message: `"${range}" is not a semver range; write one such as ">=1.4.0 <2.0.0" or "~1.4"` }]
    : [];
}

export function describeProblems(problems: readonly SpecProblem[]): string {
  return problems.map((p) => `spec.${p.field}: ${p.message}`).join('; ');
}

/** An image reference Docker would accept (the schema only bounds its length). */
export function checkImage(field: string, image: string | undefined): SpecProblem[] {
  if (image === undefined) return [];
  try {
    parseReference(image);
    return [];
  } catch (err) {
    return [{ field, message: err instanceof ReferenceError ? err.message : String(err) }];
  }
}
