// The commit message of a write-back: what changed (image, old → new value, tag) and why (the
// checks the digest passed; the base change and build when a RebuildTrigger produced it), from a
// template with a few placeholders. The trailer that finds a commit again after a crash is
// always appended, whatever the template says.
import type { ValueChange } from './edit.ts';

/** Findings of a scan by severity. */
export interface Findings {
  critical: number;
  high: number;
  medium: number;
  low: number;
  unknown: number;
}

/** A check the digest passed, as ImagePolicy status says it. */
export interface CheckEvidence {
  name: string;
  message: string;
  /** The vulnerabilities check: the scan's findings. */
  findings?: Findings;
}

/** The rebuild that produced a digest: its RebuildTrigger, the base image change, the build. */
export interface RebuildEvidence {
  /** namespace/name of the RebuildTrigger. */
  trigger: string;
  baseImage: string;
  /** The base digest before the change (absent for a first build) and after it. */
  fromBase?: string;
  toBase: string;
  buildId?: string;
  buildUrl?: string;
}

/** Why one policy's digest is written, for the reader of the commit and the reviewer of a pull request. */
export interface ChangeContext {
  /** namespace/name of the ImagePolicy. */
  policy: string;
  image: string;
  tag?: string;
  digest: string;
  /** Rollout (an accepted digest) or Revert (a failed rollout undone). */
  reason: 'Rollout' | 'Revert';
  /** Checks the digest passed. */
  checks: CheckEvidence[];
  rebuild?: RebuildEvidence;
  /** The digest the workloads run now, which this one replaces, and what its scan found. */
  replaced?: { digest: string; findings?: Findings };
  /** The workload containers it will reach, as Kind/name (container). */
  workloads?: string[];
  /** Why a revert: the failed rollout. */
  why?: string;
}

const DEFAULT_TEMPLATE = '{{summary}}\n\n{{changes}}';
export const CHANGE_TRAILER = 'Patchline-Change';

export const short = (digest: string): string => digest.replace(/^(sha\d+:[0-9a-f]{12})[0-9a-f]*$/, '$1');

/** "2 critical, 5 high, 1 medium, 0 low" (unknown only when there are some). */
function findingsText(f: Findings): string {
  const parts = [`${f.critical} critical`, `${f.high} high`, `${f.medium} medium`, `${f.low} low`];
  if (f.unknown > 0) parts.push(`${f.unknown} unknown`);
  return parts.join(', ');
}

/** RebuildTrigger shop/web: base python:3.12 sha256:… → sha256:… (build b-7 https://…) */
export function rebuildText(r: RebuildEvidence): string {
  const change = r.fromBase ? `${short(r.fromBase)} → ${short(r.toBase)}` : short(r.toBase);
  const build = r.buildId ? ` (build ${r.buildId}${r.buildUrl ? ` ${r.buildUrl}` : ''})` : '';
  return `RebuildTrigger ${r.trigger}: base ${r.baseImage} ${change}${build}`;
}

/** The vulnerabilities of the new digest against those of the one it replaces, when scanned. */
function vulnerabilityText(c: ChangeContext): string | undefined {
  const now = c.checks.find((x) => x.findings)?.findings;
  if (!now) return undefined;
  const before = c.replaced?.findings;
  return `${findingsText(now)}${before ? ` (replaces ${short(c.replaced?.digest ?? '')}: ${findingsText(before)})` : ''}`;
}

/** Old and new value of one policy, shortened for a subject line. */
function oneLine(context: ChangeContext, changes: readonly ValueChange[]): string {
  const name = context.policy.split('/')[1] ?? context.policy;
  const fromDigest = changes.map((c) => /(sha\d+:[0-9a-f]+)/.exec(c.from)?.[1]).find((d) => d !== undefined);
  const verb = context.reason === 'Revert' ? 'revert' : '';
  const to = `${context.tag ? `${context.tag}@` : ''}${short(context.digest)}`;
  return `${verb ? `${verb} ` : ''}${name} ${fromDigest ? `${short(fromDigest)} → ` : ''}${to}`;
}

function summary(contexts: readonly ChangeContext[], changes: readonly ValueChange[]): string {
  const parts = contexts.map((c) =>
    oneLine(
      c,
      changes.filter((x) => x.policy === c.policy),
    ),
  );
  const head = contexts.length === 1 ? 'Update image' : `Update ${contexts.length} images`;
  const line = `${head}: ${parts.join(', ')}`;
  return line.length <= 120 ? line : `${line.slice(0, 117)}...`;
}

function details(contexts: readonly ChangeContext[], changes: readonly ValueChange[]): string {
  return contexts
    .map((c) => {
      const mine = changes.filter((x) => x.policy === c.policy);
      const lines = [`${c.policy}: ${c.image}${c.tag ? `:${c.tag}` : ''}@${c.digest}`];
      if (c.reason === 'Revert') lines.push(`  revert: ${c.why ?? 'the rollout failed'}`);
      for (const x of mine.slice(0, 20))
        lines.push(`  ${x.file}:${x.line}: ${x.from || '(added)'} → ${x.to || '(removed)'}`);
      if (mine.length > 20) lines.push(`  … and ${mine.length - 20} more values`);
      if (c.checks.length > 0) lines.push(`  passed: ${c.checks.map((x) => `${x.name}: ${x.message}`).join('; ')}`);
      const vulnerabilities = vulnerabilityText(c);
      if (vulnerabilities) lines.push(`  vulnerabilities: ${vulnerabilities}`);
      if (c.rebuild) lines.push(`  rebuilt: ${rebuildText(c.rebuild)}`);
      if (c.workloads?.length) lines.push(`  reaches: ${c.workloads.join(', ')}`);
      return lines.join('\n');
    })
    .join('\n\n');
}

/** The values of the placeholders a template may use. */
export function placeholders(data: MessageData): Record<string, string> {
  const changed = changedContexts(data);
  return {
    summary: summary(changed, data.changes),
    changes: details(changed, data.changes),
    count: String(changed.length),
    writeBack: data.writeBack,
  };
}

export interface MessageData {
  writeBack: string;
  changeId: string;
  contexts: readonly ChangeContext[];
  changes: readonly ValueChange[];
}

/** The contexts of the policies a change writes. */
export function changedContexts(data: MessageData): ChangeContext[] {
  return data.contexts.filter((c) => data.changes.some((x) => x.policy === c.policy));
}

/** A template with its {{placeholders}} filled; unknown ones are left as they are. */
export function fill(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (all, key: string) => values[key] ?? all);
}

/** The message: the template with its placeholders filled, then the trailer. */
export function commitMessage(template: string | undefined, data: MessageData): string {
  const body = fill(template ?? DEFAULT_TEMPLATE, placeholders(data));
  return `${body.trimEnd()}\n\n${CHANGE_TRAILER}: ${data.changeId}\n`;
}
