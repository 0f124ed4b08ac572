// The title and body of a write-back's pull request: what a reviewer needs to approve from the
// pull request page alone. Per image: the old and new digest, why (a rollout, or the revert
// of a failed one), every check the digest passed (the signer, the base it was built on, its
// age), the vulnerabilities of the new digest next to those of the one it replaces, the
// rebuild that produced it (RebuildTrigger, base image change, build link), the workloads it
// will reach and the lines edited. Markdown, with every value from outside escaped so that
// it cannot break the tables or inject links.
import type { ValueChange } from './edit.ts';
import {
  changedContexts,
  fill,
  placeholders,
  short,
  type ChangeContext,
  type Findings,
  type MessageData,
} from './message.ts';

/** GitHub's limits are 256 and 65 536 characters; the others are as large or larger (Azure: 4000, cut there). */
const TITLE_LIMIT = 256;
const BODY_LIMIT = 60_000;
const FILES_SHOWN = 20;

/** A value inside a Markdown table cell or inline code: one line, no pipes, no backticks. */
function cell(value: string): string {
  return value
    .replace(/[\r\n]+/g, ' ')
    .replace(/\|/g, '\\|')
    .replace(/`/g, "'");
}

const code = (value: string): string => `\`${cell(value)}\``;

function link(text: string, url: string | undefined): string {
  if (!url || !/^https?:\/\/[^\s()<>]+$/.test(url)) return cell(text);
  return `[${cell(text).replace(/[[\]]/g, '')}](${url})`;
}

function fromDigest(changes: readonly ValueChange[]): string | undefined {
  return changes.map((c) => /(sha\d+:[0-9a-f]+)/.exec(c.from)?.[1]).find((d) => d !== undefined);
}

function vulnerabilityTable(context: ChangeContext): string[] {
  const now = context.checks.find((c) => c.findings)?.findings;
  if (!now) return [];
  const before = context.replaced?.findings;
  const rows: [string, keyof Findings][] = [
    ['Critical', 'critical'],
    ['High', 'high'],
    ['Medium', 'medium'],
    ['Low', 'low'],
    ['Unknown', 'unknown'],
  ];
  const head = before
    ? [
        `| Severity | new ${code(short(context.digest))} | replaced ${code(short(context.replaced?.digest ?? ''))} |`,
        '|---|---:|---:|',
      ]
    : [`| Severity | new ${code(short(context.digest))} |`, '|---|---:|'];
  return [
    '',
    '**Vulnerabilities**',
    '',
    ...head,
    ...rows.map(([label, key]) => `| ${label} | ${now[key]} |${before ? ` ${before[key]} |` : ''}`),
  ];
}

function section(context: ChangeContext, changes: readonly ValueChange[]): string {
  const from = fromDigest(changes);
  const image = `${context.image}${context.tag ? `:${context.tag}` : ''}`;
  const rows: string[] = [
    `| Image | ${code(image)} |`,
    `| Digest | ${from ? `${code(short(from))} → ` : ''}${code(context.digest)} |`,
    `| Why | ${context.reason === 'Revert' ? `revert: ${cell(context.why ?? 'the rollout failed')}` : 'a newly accepted digest that passed every check'} |`,
  ];
  const r = context.rebuild;
  if (r) {
    const base = `${r.fromBase ? `${code(short(r.fromBase))} → ` : ''}${code(short(r.toBase))}`;
    const build = r.buildId ? `, build ${link(r.buildId, r.buildUrl)}` : '';
    rows.push(`| Rebuilt by | RebuildTrigger ${code(r.trigger)}: base ${code(r.baseImage)} ${base}${build} |`);
  }
  if (context.workloads?.length) rows.push(`| Reaches | ${context.workloads.map(cell).join(', ')} |`);
  const lines = [`### ${cell(context.policy)}`, '', '| | |', '|---|---|', ...rows];
  if (context.checks.length > 0) {
    lines.push('', '**Checks passed**', '', '| Check | Result |', '|---|---|');
    for (const c of context.checks) lines.push(`| ${cell(c.name)} | ${cell(c.message)} |`);
  } else if (context.reason === 'Rollout') {
    lines.push('', '_No checks are configured for this image (spec.verify is empty)._');
  }
  lines.push(...vulnerabilityTable(context));
  lines.push('', '**Lines edited**', '');
  for (const x of changes.slice(0, FILES_SHOWN))
    lines.push(`- ${code(`${x.file}:${x.line}`)}: ${code(x.from || '(added)')} → ${code(x.to || '(removed)')}`);
  if (changes.length > FILES_SHOWN) lines.push(`- … and ${changes.length - FILES_SHOWN} more`);
  return lines.join('\n');
}

/** The {{evidence}} placeholder: one section per image changed, and how to act on the request. */
function evidence(data: MessageData): string {
  const sections = changedContexts(data).map((c) =>
    section(
      c,
      data.changes.filter((x) => x.policy === c.policy),
    ),
  );
  return [
    ...sections,
    '---',
    `Proposed by Patchline (GitWriteBack ${code(data.writeBack)}). Merging rolls these digests out through the GitOps engine, and Patchline follows the workloads until every pod runs them. Closing without merging declines them: they are not proposed again until a newer digest is accepted or a reconcile is requested.`,
  ].join('\n\n');
}

export interface PullRequestTemplates {
  title?: string;
  body?: string;
}

/** Title and body; the body ends with the change id in a comment, as commits carry it in a trailer. */
export function pullRequestContent(
  templates: PullRequestTemplates,
  data: MessageData,
): { title: string; body: string } {
  const values = { ...placeholders(data), evidence: evidence(data) };
  const title = fill(templates.title ?? '{{summary}}', values)
    .split('\n')[0]!
    .trim();
  let body = fill(templates.body ?? '{{evidence}}', values).trimEnd();
  const marker = `\n\n<!-- Patchline-Change: ${data.changeId} -->\n`;
  if (body.length + marker.length > BODY_LIMIT)
    body = `${body.slice(0, BODY_LIMIT - marker.length - 40)}\n\n… (cut to fit the forge's limit)`;
  return {
    title: title.length > TITLE_LIMIT ? `${title.slice(0, TITLE_LIMIT - 1)}…` : title,
    body: `${body}${marker}`,
  };
}
