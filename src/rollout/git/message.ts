// The commit message of a write-back: what changed (image, old → new value, tag) and why (the
// checks the digest passed; the base change and build when a RebuildTrigger produced it), from a
// template with a few placeholders. The trailer that finds a commit again after a crash is
// always appended, whatever the template says.
import type { ValueChange } from './edit.ts';

/** Why one policy's digest is written, for the reader of the commit. */
export interface ChangeContext {
  /** namespace/name of the ImagePolicy. */
  policy: string;
  image: string;
  tag?: string;
  digest: string;
  /** Rollout (an accepted digest) or Revert (a failed rollout undone). */
  reason: 'Rollout' | 'Revert';
  /** Checks the digest passed, as `name: message`. */
  checks: string[];
  /** The rebuild that produced it: trigger, base change, build link. */
  rebuild?: string;
  /** Why a revert: the failed rollout. */
  why?: string;
}

const DEFAULT_TEMPLATE = '{{summary}}\n\n{{changes}}';
export const CHANGE_TRAILER = 'Patchline-Change';

const short = (digest: string): string => digest.replace(/^(sha\d+:[0-9a-f]{12})[0-9a-f]*$/, '$1');

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
      if (c.checks.length > 0) lines.push(`  passed: ${c.checks.join('; ')}`);
      if (c.rebuild) lines.push(`  rebuilt: ${c.rebuild}`);
      return lines.join('\n');
    })
    .join('\n\n');
}

/** The message: the template with its placeholders filled, then the trailer. */
export function commitMessage(
  template: string | undefined,
  data: { writeBack: string; changeId: string; contexts: readonly ChangeContext[]; changes: readonly ValueChange[] },
): string {
  const changed = data.contexts.filter((c) => data.changes.some((x) => x.policy === c.policy));
  const values: Record<string, string> = {
    summary: summary(changed, data.changes),
    changes: details(changed, data.changes),
    count: String(changed.length),
    writeBack: data.writeBack,
  };
  const body = (template ?? DEFAULT_TEMPLATE).replace(/\{\{\s*(\w+)\s*\}\}/g, (all, key: string) => values[key] ?? all);
  return `${body.trimEnd()}\n\n${CHANGE_TRAILER}: ${data.changeId}\n`;
}
