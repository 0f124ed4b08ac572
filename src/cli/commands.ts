// The commands of `kubectl patchline`, with the user's kubeconfig and their own permissions:
// reads for get and why; the verbs (reconcile, suspend, resume, approve, retry) write one
// annotation or field with a merge patch, and say which permission is missing when refused.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ImagePolicyType,
  RebuildTriggerType,
  ReconcileRequestedAt,
  type ImagePolicy,
  type RebuildTrigger,
} from '../api/v1alpha1/index.ts';
import { KubeApiError, toKubeError } from '../runtime/errors.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import { collectionPath, objectPath, type ResourceType } from '../runtime/kube-types.ts';
import { structured, table, type OutputFormat, type Terminal } from './render.ts';
import {
  buildChain,
  buildHistory,
  drawChain,
  eventHistory,
  explainWorkload,
  filterInventory,
  inventory,
  inventoryRow,
  policyRow,
  rolloutLines,
  triggerRow,
  type EventObject,
  type Row,
} from './views.ts';

/** Exit codes scripts can rely on (docs/cli.md). */
export const Exit = {
  ok: 0,
  failed: 1,
  usage: 2,
  notFound: 3,
  forbidden: 4,
  /** reconcile --wait: handled, but not Ready (or not handled in time). */
  notReady: 5,
} as const;

export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

export interface Context {
  client: KubeClient;
  namespace: string;
  allNamespaces: boolean;
  output: OutputFormat;
  term: Terminal;
  write: (text: string) => void;
  now: () => Date;
}

type Kind = 'policy' | 'trigger';
const TYPES: Record<Kind, ResourceType> = { policy: ImagePolicyType, trigger: RebuildTriggerType };
const KIND_NAMES: Record<string, Kind> = {
  policy: 'policy',
  policies: 'policy',
  imagepolicy: 'policy',
  imagepolicies: 'policy',
  ip: 'policy',
  trigger: 'trigger',
  triggers: 'trigger',
  rebuildtrigger: 'trigger',
  rebuildtriggers: 'trigger',
  rt: 'trigger',
};

export function kindOf(word: string | undefined): Kind {
  const kind = KIND_NAMES[(word ?? '').toLowerCase()];
  if (!kind) throw new CliError(`"${word ?? ''}" is not policies or triggers`, Exit.usage);
  return kind;
}

const VERBS: Record<string, string> = { GET: 'get', POST: 'create', PATCH: 'patch', DELETE: 'delete' };

/** An API call whose refusal says what the user may not do, and where. */
async function call<T>(
  ctx: Context,
  method: string,
  path: string,
  what: { resource: string; namespace?: string; name?: string },
  body?: unknown,
): Promise<T> {
  try {
    return await withRetry(() =>
      ctx.client.requestJson<T>(method, path, {
        ...(body !== undefined ? { body, contentType: 'application/merge-patch+json' } : {}),
      }),
    );
  } catch (err) {
    const e = toKubeError(err);
    const where = what.namespace ? ` in namespace ${what.namespace}` : ' in any namespace';
    if (e instanceof KubeApiError && e.code === 403)
      throw new CliError(
        `missing permission: ${VERBS[method] ?? method.toLowerCase()} ${what.resource}${where} (${e.message})`,
        Exit.forbidden,
      );
    if (e instanceof KubeApiError && e.code === 404)
      throw new CliError(
        `${what.resource} ${what.name ?? ''}${where.replace(' in any namespace', '')} not found`,
        Exit.notFound,
      );
    throw new CliError(e.message, Exit.failed);
  }
}

/**
 * The API server asks to come back later (429: throttled, or a resource's storage still
 * initialising just after it started): up to five tries, a second apart, as kubectl does.
 */
async function withRetry<T>(request: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (err) {
      const e = toKubeError(err);
      if (!(e instanceof KubeApiError && e.code === 429) || attempt >= 5) throw err;
      await sleep(1_000);
    }
  }
}

const resourceName = (type: ResourceType) => `${type.plural}.${type.group}`;

async function list<T>(ctx: Context, type: ResourceType): Promise<T[]> {
  const ns = ctx.allNamespaces ? undefined : ctx.namespace;
  const res = await call<{ items?: T[] }>(ctx, 'GET', collectionPath(type, ns), {
    resource: resourceName(type),
    ...(ns ? { namespace: ns } : {}),
  });
  return res.items ?? [];
}

async function read<T>(ctx: Context, type: ResourceType, name: string): Promise<T> {
  return call<T>(ctx, 'GET', objectPath(type, { namespace: ctx.namespace, name }), {
    resource: resourceName(type),
    namespace: ctx.namespace,
    name,
  });
}

async function patch(ctx: Context, type: ResourceType, name: string, body: unknown): Promise<void> {
  await call(
    ctx,
    'PATCH',
    objectPath(type, { namespace: ctx.namespace, name }),
    {
      resource: resourceName(type),
      namespace: ctx.namespace,
      name,
    },
    body,
  );
}

function print(ctx: Context, rows: Row[], columns: string[], wide: string[]): void {
  if (ctx.output !== 'table') {
    ctx.write(structured(rows, ctx.output));
    return;
  }
  if (rows.length === 0) {
    ctx.write(`No resources found${ctx.allNamespaces ? '' : ` in ${ctx.namespace} namespace`}.\n`);
    return;
  }
  const shown = ctx.allNamespaces ? ['namespace', ...columns] : columns;
  ctx.write(table(rows, (ctx.term.width ?? 0) >= 160 ? [...shown, ...wide] : shown, ctx.term));
}

/** The rows of `get`, with their columns. */
async function getRows(
  ctx: Context,
  kind: Kind,
  name: string | undefined,
): Promise<{ rows: Row[]; columns: string[]; wide: string[] }> {
  const now = ctx.now();
  if (kind === 'policy') {
    const items = name
      ? [await read<ImagePolicy>(ctx, ImagePolicyType, name)]
      : await list<ImagePolicy>(ctx, ImagePolicyType);
    return {
      rows: items.map((p) => policyRow(p, now)),
      columns: ['name', 'ready', 'reason', 'latest', 'upToDate', 'compliant', 'age'],
      wide: ['mode', 'message'],
    };
  }
  const items = name
    ? [await read<RebuildTrigger>(ctx, RebuildTriggerType, name)]
    : await list<RebuildTrigger>(ctx, RebuildTriggerType);
  return {
    rows: items.map((t) => triggerRow(t, now)),
    columns: ['name', 'ready', 'reason', 'phase', 'build', 'landed', 'age'],
    wide: ['target', 'message'],
  };
}

/**
 * get --watch: the table, then each row again when it changes (every second), as kubectl get -w
 * does; JSON and YAML print each changed row as one document. Until interrupted, or `until`.
 */
export async function watch(ctx: Context, args: string[], until: AbortSignal): Promise<number> {
  const kind = kindOf(args[0]);
  const seen = new Map<string, string>();
  let first = true;
  while (!until.aborted) {
    const { rows, columns, wide } = await getRows(ctx, kind, args[1]);
    // Ages tick by themselves: a row is new when anything else in it changed.
    const changed = rows.filter((r) => {
      const key = `${r.namespace ?? ''}/${r.name ?? ''}`;
      const body = JSON.stringify({ ...r, age: '' });
      if (seen.get(key) === body) return false;
      seen.set(key, body);
      return true;
    });
    if (ctx.output !== 'table')
      for (const r of changed)
        ctx.write(ctx.output === 'json' ? `${JSON.stringify(r)}\n` : `---\n${structured(r, 'yaml')}`);
    else if (changed.length > 0) {
      const shown = ctx.allNamespaces ? ['namespace', ...columns] : columns;
      const text = table(changed, (ctx.term.width ?? 0) >= 160 ? [...shown, ...wide] : shown, ctx.term);
      ctx.write(first ? text : text.slice(text.indexOf('\n') + 1));
      first = false;
    }
    await sleep(1_000, undefined, { signal: until }).catch(() => undefined);
  }
  return Exit.ok;
}

/** get policies|triggers [name] */
export async function get(ctx: Context, args: string[]): Promise<number> {
  const { rows, columns, wide } = await getRows(ctx, kindOf(args[0]), args[1]);
  print(ctx, rows, columns, wide);
  return Exit.ok;
}

/** why <kind>/<name>: the chain that keeps a workload where it is. */
export async function why(ctx: Context, args: string[]): Promise<number> {
  const [kind, name] = (args[0] ?? '').split('/');
  if (!kind || !name) throw new CliError('why needs a workload: kubectl patchline why deployment/web', Exit.usage);
  const canonical = {
    deployment: 'Deployment',
    deploy: 'Deployment',
    statefulset: 'StatefulSet',
    sts: 'StatefulSet',
    daemonset: 'DaemonSet',
    ds: 'DaemonSet',
    cronjob: 'CronJob',
  }[kind.toLowerCase()];
  if (!canonical) throw new CliError(`"${kind}" is not a Deployment, StatefulSet, DaemonSet or CronJob`, Exit.usage);
  const policies = await list<ImagePolicy>({ ...ctx, allNamespaces: false }, ImagePolicyType);
  const explanation = explainWorkload(canonical, name, ctx.namespace, policies);
  if (ctx.output !== 'table') {
    ctx.write(structured(explanation, ctx.output));
    return Exit.ok;
  }
  const lines = [`${explanation.workload} in ${explanation.namespace}`];
  if (explanation.note) lines.push(`  ${explanation.note}`);
  for (const c of explanation.containers) {
    lines.push(
      `  container ${c.container} (ImagePolicy ${c.policy}): ${c.state}${c.upToDate ? ', on the newest acceptable digest' : ''}`,
    );
    if (c.running) lines.push(`    runs    ${c.running}`);
    if (c.newest)
      lines.push(`    newest  ${c.newest.tag}@${c.newest.digest} (${c.newest.verified ? 'accepted' : 'not accepted'})`);
    for (const r of c.reasons) lines.push(`    why     ${r}`);
  }
  ctx.write(`${lines.join('\n')}\n`);
  return Exit.ok;
}

/** tree <base image | trigger/NAME | policy/NAME>: the build chain with each link's state. */
export async function tree(ctx: Context, args: string[]): Promise<number> {
  const arg = args[0];
  if (!arg) throw new CliError('tree needs a base image, trigger/NAME or policy/NAME', Exit.usage);
  const [word, name] = arg.split('/', 2);
  const kind = KIND_NAMES[(word ?? '').toLowerCase()];
  const root = kind && name ? (kind === 'policy' ? { policy: name } : { trigger: name }) : { base: arg };
  const [triggers, policies] = await Promise.all([
    list<RebuildTrigger>(ctx, RebuildTriggerType),
    list<ImagePolicy>(ctx, ImagePolicyType),
  ]);
  const chain = buildChain(root, triggers, policies);
  if ('policy' in root || 'trigger' in root) {
    if (chain.length === 0)
      throw new CliError(
        `${'policy' in root ? 'ImagePolicy' : 'RebuildTrigger'} ${arg.split('/')[1] ?? ''} not found in ${ctx.namespace}`,
        Exit.notFound,
      );
  }
  if (ctx.output !== 'table') ctx.write(structured(chain, ctx.output));
  else ctx.write(`${drawChain(chain).join('\n')}\n`);
  return Exit.ok;
}

/** history policy|trigger NAME: a trigger's builds, and each resource's Events as a timeline with the time each stage took. */
export async function history(ctx: Context, args: string[]): Promise<number> {
  const [word, name] = args.length === 1 ? (args[0] ?? '').split('/', 2) : args;
  const kind = kindOf(word);
  if (!name) throw new CliError('history needs a resource: kubectl patchline history policy/web', Exit.usage);
  const type = TYPES[kind];
  const obj = await read<ImagePolicy | RebuildTrigger>(ctx, type, name);
  const events = await call<{ items?: EventObject[] }>(
    ctx,
    'GET',
    `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(ctx.namespace)}/events?fieldSelector=${encodeURIComponent(`regarding.kind=${type.kind},regarding.name=${name}`)}`,
    { resource: 'events.events.k8s.io', namespace: ctx.namespace },
  );
  const timeline = eventHistory(events.items ?? []);
  const builds = kind === 'trigger' ? buildHistory(obj as RebuildTrigger) : undefined;
  if (ctx.output !== 'table') {
    ctx.write(structured({ ...(builds ? { builds } : {}), events: timeline }, ctx.output));
    return Exit.ok;
  }
  if (builds) {
    ctx.write(
      builds.length > 0
        ? table(builds, ['build', 'base', 'started', 'took', 'result', 'output'], ctx.term)
        : 'No builds yet.\n',
    );
    ctx.write('\n');
  }
  const rows = timeline.map((t) => ({ ...t, after: t.after ?? '', count: t.count ? `×${t.count}` : '' }));
  ctx.write(
    rows.length > 0
      ? table(rows, ['time', 'after', 'reason', 'count', 'note'], ctx.term)
      : 'No Events (they are kept for an hour).\n',
  );
  return Exit.ok;
}

const VULNERABILITY_REPORTS: ResourceType = {
  group: 'aquasecurity.github.io',
  version: 'v1alpha1',
  plural: 'vulnerabilityreports',
  kind: 'VulnerabilityReport',
  namespaced: true,
};

interface TrivyReport {
  report?: { artifact?: { digest?: string }; vulnerabilities?: { vulnerabilityID?: string }[] };
}

/** The CVE ids Trivy Operator found, by the digest it scanned (for --cve). */
async function cvesByDigest(ctx: Context): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const r of await list<TrivyReport>(ctx, VULNERABILITY_REPORTS)) {
    const digest = r.report?.artifact?.digest;
    if (!digest) continue;
    let ids = out.get(digest);
    if (!ids) out.set(digest, (ids = new Set()));
    for (const v of r.report?.vulnerabilities ?? []) if (v.vulnerabilityID) ids.add(v.vulnerabilityID);
  }
  return out;
}

/** inventory [--base IMAGE] [--cve ID] [--older-than 30d]: what runs, by image and digest. */
export async function inventoryCommand(
  ctx: Context,
  filter: { base?: string; cve?: string; olderThanMs?: number },
): Promise<number> {
  const [policies, triggers] = await Promise.all([
    list<ImagePolicy>(ctx, ImagePolicyType),
    list<RebuildTrigger>(ctx, RebuildTriggerType),
  ]);
  let entries = inventory(policies, triggers);
  if (filter.cve) {
    const cves = await cvesByDigest(ctx);
    entries = entries.map((e) => ({ ...e, cves: [...(cves.get(e.digest) ?? [])].sort() }));
  }
  const kept = filterInventory(entries, filter, ctx.now());
  if (ctx.output !== 'table') ctx.write(structured(kept, ctx.output));
  else if (kept.length === 0) ctx.write('Nothing runs that matches.\n');
  else
    ctx.write(
      table(
        kept.map((e) => inventoryRow(e, ctx.now())),
        ['image', 'digest', 'workloads', 'built', 'on', 'vulnerabilities', 'base'],
        ctx.term,
      ),
    );
  return Exit.ok;
}

/** reconcile <kind> <name> [--wait]: asks for a reconcile now, and optionally waits for its result. */
export async function reconcile(ctx: Context, args: string[], wait: boolean, timeoutMs: number): Promise<number> {
  const kind = kindOf(args[0]);
  const name = args[1];
  if (!name) throw new CliError('reconcile needs a name: kubectl patchline reconcile policy web', Exit.usage);
  const type = TYPES[kind];
  const requested = ctx.now().toISOString();
  await patch(ctx, type, name, { metadata: { annotations: { [ReconcileRequestedAt]: requested } } });
  ctx.write(`${kind} ${ctx.namespace}/${name}: reconcile requested at ${requested}\n`);
  if (!wait) return Exit.ok;
  const deadline = Date.now() + timeoutMs;
  const live = new LiveFrame(ctx);
  let last = '';
  while (Date.now() < deadline) {
    const obj = await read<ImagePolicy | RebuildTrigger>(ctx, type, name);
    const st = obj.status as WaitedStatus | undefined;
    const ready = st?.conditions?.find((c) => c.type === 'Ready');
    last = ready ? `${ready.status} ${ready.reason ?? ''}: ${ready.message ?? ''}` : 'no Ready condition yet';
    // On a terminal: Ready and each workload moving to the digest, redrawn in place.
    live.show([`  ${last}`, ...(kind === 'policy' ? rolloutLines(obj as ImagePolicy) : [])]);
    const reconciling = st?.conditions?.find((c) => c.type === 'Reconciling')?.status === 'True';
    if (st?.lastHandledReconcileAt === requested && !reconciling) {
      ctx.write(`${kind} ${ctx.namespace}/${name}: Ready ${last}\n`);
      return ready?.status === 'True' ? Exit.ok : Exit.notReady;
    }
    await sleep(500);
  }
  ctx.write(`${kind} ${ctx.namespace}/${name}: not settled after ${Math.round(timeoutMs / 1000)} s (last: ${last})\n`);
  return Exit.notReady;
}

interface WaitedStatus {
  lastHandledReconcileAt?: string;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
}

/** Lines redrawn in place on a terminal (cursor up, clear below); nothing when not a terminal. */
class LiveFrame {
  private lines = 0;
  private previous = '';
  private readonly ctx: Context;

  constructor(ctx: Context) {
    this.ctx = ctx;
  }

  show(lines: readonly string[]): void {
    if (this.ctx.term.width === undefined) return;
    const width = this.ctx.term.width;
    const fitted = lines.map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
    const text = fitted.join('\n');
    if (text === this.previous) return;
    const erase = this.lines > 0 ? `\x1b[${this.lines}A\x1b[J` : '';
    this.ctx.write(`${erase}${text}\n`);
    this.previous = text;
    this.lines = fitted.length;
  }
}

/** suspend / resume <kind> <name> */
export async function suspend(ctx: Context, args: string[], suspended: boolean): Promise<number> {
  const kind = kindOf(args[0]);
  const name = args[1];
  if (!name) throw new CliError(`${suspended ? 'suspend' : 'resume'} needs a name`, Exit.usage);
  await patch(ctx, TYPES[kind], name, { spec: { suspend: suspended } });
  ctx.write(`${kind} ${ctx.namespace}/${name} ${suspended ? 'suspended' : 'resumed'}\n`);
  return Exit.ok;
}

/** approve <policy> [--digest D]: Manual mode's approval of the newest accepted digest (or the one given). */
export async function approve(ctx: Context, args: string[], digest: string | undefined): Promise<number> {
  const name = args[0];
  if (!name) throw new CliError('approve needs a policy name', Exit.usage);
  const policy = await read<ImagePolicy>(ctx, ImagePolicyType, name);
  const chosen = digest ?? (policy.status?.latest?.verified ? policy.status.latest.digest : undefined);
  if (!chosen)
    throw new CliError(
      `${ctx.namespace}/${name} has no accepted digest to approve; name one with --digest`,
      Exit.failed,
    );
  if (!/^sha256:[a-f0-9]{64}$/.test(chosen)) throw new CliError(`"${chosen}" is not a sha256 digest`, Exit.usage);
  await patch(ctx, ImagePolicyType, name, { metadata: { annotations: { 'patchline.dev/approve-digest': chosen } } });
  ctx.write(`policy ${ctx.namespace}/${name}: approved ${chosen}\n`);
  return Exit.ok;
}

/** retry <trigger>: a stalled build is tried again (the reconcile annotation). */
export function retry(ctx: Context, args: string[]): Promise<number> {
  return reconcile(ctx, ['trigger', ...args], false, 0);
}
