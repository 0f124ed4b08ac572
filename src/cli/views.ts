// What `kubectl patchline` shows, as pure functions of the objects it read: the rows of `get`
// and the explanation of `why`. No I/O: commands.ts reads, render.ts prints.
import type { ImagePolicy, RebuildTrigger } from '../api/v1alpha1/index.ts';
import type { Condition } from '../runtime/conditions.ts';

/** One row of a table: column name → value; the JSON output is the same rows. */
export type Row = Record<string, string>;

const short = (digest: string | undefined): string => (digest ? digest.replace(/^sha256:/, '').slice(0, 12) : '');

function condition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** "3m", "2h", "5d": how long ago, for tables. */
export function age(since: string | undefined, now: Date): string {
  const t = since ? Date.parse(since) : NaN;
  if (!Number.isFinite(t)) return '';
  const s = Math.max(0, Math.round((now.getTime() - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

/** Ready's status, or Suspended / Stalled when that is what matters. */
function readiness(suspended: boolean | undefined, conditions: readonly Condition[] | undefined): string {
  if (suspended) return 'Suspended';
  if (condition(conditions, 'Stalled')?.status === 'True') return 'Stalled';
  return condition(conditions, 'Ready')?.status ?? 'Unknown';
}

/** The columns of `get policies`. */
export function policyRow(p: ImagePolicy, now: Date): Row {
  const st = p.status;
  const ready = condition(st?.conditions, 'Ready');
  return {
    namespace: p.metadata?.namespace ?? '',
    name: p.metadata?.name ?? '',
    ready: readiness(p.spec.suspend, st?.conditions),
    reason: ready?.reason ?? '',
    latest: st?.latest?.digest ? `${st.latest.tag ?? ''}@${short(st.latest.digest)}` : '',
    verified: st?.latest ? String(st.latest.verified === true) : '',
    upToDate: st?.upToDate ?? '',
    compliant: condition(st?.conditions, 'Compliant')?.status ?? '',
    mode: p.spec.rollout?.mode ?? 'Auto',
    age: age(p.metadata?.creationTimestamp, now),
    message: ready?.message ?? '',
  };
}

/** The columns of `get triggers`. */
export function triggerRow(t: RebuildTrigger, now: Date): Row {
  const st = t.status;
  const ready = condition(st?.conditions, 'Ready');
  return {
    namespace: t.metadata?.namespace ?? '',
    name: t.metadata?.name ?? '',
    ready: readiness(t.spec.suspend, st?.conditions),
    reason: ready?.reason ?? '',
    phase: st?.phase ?? '',
    build: st?.build?.phase ? `${st.build.phase}${st.build.id ? ` ${st.build.id}` : ''}` : '',
    landed: short(st?.landed?.digest),
    target: t.spec.target.image,
    age: age(t.metadata?.creationTimestamp, now),
    message: ready?.message ?? '',
  };
}

/** One container of a workload, as one policy that governs it sees it. */
export interface ContainerExplanation {
  container: string;
  policy: string;
  state: string;
  running?: string;
  desired?: string;
  newest?: { tag: string; digest: string; verified: boolean };
  upToDate: boolean;
  /** Why it is where it is, each step of the chain that holds it back. */
  reasons: string[];
}

export interface WorkloadExplanation {
  workload: string;
  namespace: string;
  containers: ContainerExplanation[];
  /** When no policy governs it: what that means. */
  note?: string;
}

/** Why a workload is, or is not, on the newest acceptable digest, from the policies of its namespace. */
export function explainWorkload(
  kind: string,
  name: string,
  namespace: string,
  policies: readonly ImagePolicy[],
): WorkloadExplanation {
  const containers: ContainerExplanation[] = [];
  for (const p of policies) {
    const st = p.status;
    for (const w of st?.workloads ?? []) {
      if (w.kind.toLowerCase() !== kind.toLowerCase() || w.name !== name) continue;
      containers.push(explainContainer(p, w));
    }
  }
  return {
    workload: `${kind}/${name}`,
    namespace,
    containers,
    ...(containers.length === 0
      ? {
          note: `no ImagePolicy in ${namespace} governs ${kind}/${name}: nothing keeps it patched (select it with spec.workloads, and see kubectl patchline get policies -n ${namespace})`,
        }
      : {}),
  };
}

type WorkloadStatus = NonNullable<NonNullable<ImagePolicy['status']>['workloads']>[number];

function explainContainer(p: ImagePolicy, w: WorkloadStatus): ContainerExplanation {
  const st = p.status;
  const latest = st?.latest;
  const reasons: string[] = [];
  const ready = condition(st?.conditions, 'Ready');
  const stalled = condition(st?.conditions, 'Stalled');
  if (p.spec.suspend) reasons.push('the policy is suspended (spec.suspend): nothing is checked or rolled out');
  if (!latest?.digest) reasons.push(`no candidate yet: ${ready?.message ?? 'the followed tag has not been read'}`);
  else if (latest.verified !== true) {
    const held = latest.checks?.find((c) => !c.passed && !c.pending);
    const waiting = latest.checks?.find((c) => c.pending);
    if (held)
      reasons.push(
        `the newest candidate ${latest.tag ?? ''}@${short(latest.digest)} is refused: ${held.name}: ${held.message ?? ''}`,
      );
    else if (waiting) reasons.push(`the newest candidate waits: ${waiting.name}: ${waiting.message ?? ''}`);
    else reasons.push(`the newest candidate is not checked yet: ${ready?.message ?? ''}`);
  }
  const upToDate = w.state === 'UpToDate' && !!latest?.verified && w.runningDigest === latest.digest;
  switch (w.state) {
    case 'PendingApproval':
      reasons.push(
        `Manual mode: waiting for approval (kubectl patchline approve ${p.metadata?.name ?? ''} -n ${p.metadata?.namespace ?? ''})`,
      );
      break;
    case 'Rolling':
      reasons.push(`rolling out: ${w.message ?? ''}`);
      break;
    case 'Failed':
      reasons.push(`the rollout failed and was rolled back: ${w.message ?? ''}`);
      break;
    case 'Blocked':
      if (w.revertedBy)
        reasons.push(`another field manager (${w.revertedBy}) keeps setting the image back: ${w.message ?? ''}`);
      else if (latest?.verified) reasons.push(`held back: ${w.message ?? ''}`);
      break;
    case 'Pending':
      reasons.push(`pending: ${w.message ?? ''}`);
      break;
    default:
      break;
  }
  if (st?.gitOps && !upToDate) {
    const g = st.gitOps;
    if (g.commit)
      reasons.push(
        `GitOps: ${short(g.desired?.digest)} committed as ${g.commit.slice(0, 12)}${g.pullRequest ? ` (${g.pullRequest})` : ''}, waiting for the GitOps engine to apply it`,
      );
    else if (g.desired?.digest)
      reasons.push(`GitOps: ${short(g.desired.digest)} is not in git yet${g.message ? `: ${g.message}` : ''}`);
  }
  if (stalled?.status === 'True' && !reasons.some((r) => r.includes(stalled.message ?? '')))
    reasons.push(`stalled: ${stalled.message ?? ''}`);
  return {
    container: w.container,
    policy: `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`,
    state: w.state ?? '',
    ...(w.runningDigest ? { running: w.runningDigest } : {}),
    ...(w.desiredDigest ? { desired: w.desiredDigest } : {}),
    ...(latest?.digest
      ? { newest: { tag: latest.tag ?? '', digest: latest.digest, verified: latest.verified === true } }
      : {}),
    upToDate,
    reasons: upToDate ? [] : reasons,
  };
}

/** A node of the build chain: what it is, its state, and what follows from it. */
export interface ChainNode {
  kind: 'BaseImage' | 'RebuildTrigger' | 'Image' | 'ImagePolicy' | 'Container';
  name: string;
  state: string;
  digest?: string;
  children: ChainNode[];
}

const repoOf = (image: string): string => image.replace(/@sha256:[a-f0-9]{64}$/, '').replace(/:[^/:]+$/, '');

function policyNode(p: ImagePolicy): ChainNode {
  const st = p.status;
  const latest = st?.latest;
  const state = p.spec.suspend
    ? 'suspended'
    : latest?.digest
      ? `${latest.tag ?? ''}@${short(latest.digest)} ${latest.verified ? 'accepted' : 'refused'}`
      : (condition(st?.conditions, 'Ready')?.reason ?? 'not looked at yet');
  return {
    kind: 'ImagePolicy',
    name: `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`,
    state,
    ...(latest?.digest ? { digest: latest.digest } : {}),
    children: (st?.workloads ?? []).map((w) => ({
      kind: 'Container' as const,
      name: `${w.kind}/${w.name}/${w.container}`,
      state: w.state ?? '',
      ...(w.runningDigest ? { digest: w.runningDigest } : {}),
      children: [],
    })),
  };
}

function triggerNode(t: RebuildTrigger, policies: readonly ImagePolicy[]): ChainNode {
  const st = t.status;
  const ready = condition(st?.conditions, 'Ready');
  const target = repoOf(t.spec.target.image);
  return {
    kind: 'RebuildTrigger',
    name: `${t.metadata?.namespace ?? ''}/${t.metadata?.name ?? ''}`,
    state: t.spec.suspend
      ? 'suspended'
      : `${st?.phase ?? ready?.reason ?? 'unknown'}${st?.build?.phase ? `, build ${st.build.phase}` : ''}`,
    ...(st?.landed?.digest ? { digest: st.landed.digest } : {}),
    children: [
      {
        kind: 'Image',
        name: target,
        state: st?.landed?.digest ? `landed ${short(st.landed.digest)}` : 'nothing landed yet',
        ...(st?.landed?.digest ? { digest: st.landed.digest } : {}),
        children: policies.filter((p) => repoOf(p.spec.image) === target).map(policyNode),
      },
    ],
  };
}

/**
 * The build chain from a base image, a trigger or a policy: base → RebuildTriggers → the images
 * they rebuild → the ImagePolicies that follow those images → their workloads' containers.
 */
export function buildChain(
  root: { base: string } | { trigger: string } | { policy: string },
  triggers: readonly RebuildTrigger[],
  policies: readonly ImagePolicy[],
): ChainNode[] {
  const named = (o: { metadata?: { name?: string } }, name: string) => o.metadata?.name === name;
  if ('policy' in root) {
    const p = policies.find((x) => named(x, root.policy));
    if (!p) return [];
    // The triggers that build what the policy follows, above it.
    const builders = triggers.filter((t) => repoOf(t.spec.target.image) === repoOf(p.spec.image));
    return builders.length > 0 ? builders.map((t) => triggerNode(t, [p])) : [policyNode(p)];
  }
  if ('trigger' in root) {
    const t = triggers.find((x) => named(x, root.trigger));
    return t ? [triggerNode(t, policies)] : [];
  }
  const base = repoOf(root.base);
  const following = triggers.filter((t) => t.spec.baseImages.some((b) => repoOf(b.image) === base));
  const known = following.flatMap((t) => t.status?.bases ?? []).find((b) => repoOf(b.image) === base);
  return [
    {
      kind: 'BaseImage',
      name: base,
      state: known?.digest ? `at ${short(known.digest)}` : 'not read yet',
      ...(known?.digest ? { digest: known.digest } : {}),
      children: following.map((t) => triggerNode(t, policies)),
    },
  ];
}

/** The chain drawn as a tree: roots flush left, their descendants on branches. */
export function drawChain(nodes: readonly ChainNode[], prefix = '', top = true): string[] {
  return nodes.flatMap((n, i) => {
    const last = i === nodes.length - 1;
    const branch = top ? '' : last ? '└─ ' : '├─ ';
    const digest = n.digest && !n.state.includes(short(n.digest)) ? ` (${short(n.digest)})` : '';
    const line = `${prefix}${branch}${n.kind} ${n.name}: ${n.state}${digest}`;
    const next = top ? prefix : prefix + (last ? '   ' : '│  ');
    return [line, ...drawChain(n.children, next, false)];
  });
}

/** An Event as history shows it. */
export interface HistoryEntry {
  time: string;
  reason: string;
  type: string;
  note: string;
  /** How many times it happened (an Event series), when more than once. */
  count?: number;
  /** Since the entry before it: the time each stage took. */
  after?: string;
}

export interface EventObject {
  eventTime?: string;
  deprecatedLastTimestamp?: string;
  metadata?: { creationTimestamp?: string };
  series?: { count?: number; lastObservedTime?: string };
  reason?: string;
  type?: string;
  note?: string;
}

/** "1.2s", "3m04s", "2h10m": a duration for the stage column. */
export function span(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  const m = Math.floor(ms / 60_000);
  if (m < 60) return `${m}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Events oldest first, each with the time since the one before it. */
export function eventHistory(events: readonly EventObject[]): HistoryEntry[] {
  const timed = events
    .map((e) => ({
      e,
      at: e.series?.lastObservedTime ?? e.eventTime ?? e.deprecatedLastTimestamp ?? e.metadata?.creationTimestamp ?? '',
    }))
    .filter((x) => Number.isFinite(Date.parse(x.at)))
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return timed.map(({ e, at }, i) => {
    const previous = timed[i - 1];
    const count = e.series?.count;
    return {
      time: new Date(at).toISOString(),
      reason: e.reason ?? '',
      type: e.type ?? '',
      note: e.note ?? '',
      ...(count && count > 1 ? { count } : {}),
      ...(previous ? { after: span(Date.parse(at) - Date.parse(previous.at)) } : {}),
    };
  });
}

/** A trigger's builds, newest last: what was built on which base, when, how long it took, what it gave. */
export function buildHistory(t: RebuildTrigger): Row[] {
  return (t.status?.history ?? []).map((b) => {
    const started = b.startedAt ? Date.parse(b.startedAt) : NaN;
    const finished = b.finishedAt ? Date.parse(b.finishedAt) : NaN;
    return {
      build: b.id ?? '',
      base: short(b.baseDigest),
      started: b.startedAt ?? '',
      took: Number.isFinite(started) && Number.isFinite(finished) ? span(finished - started) : '',
      result: b.phase ?? '',
      output: short(b.outputDigest),
      message: b.message ?? '',
    };
  });
}

/** One image digest that runs, with everything known about it. */
export interface InventoryEntry {
  image: string;
  digest: string;
  workloads: string[];
  /** The earliest time a workload was seen on it (status.workloads[].since). */
  runningSince?: string;
  /** When it was built: the created time in its config, as the operator read it (status.workloads[].builtAt). */
  builtAt?: string;
  vulnerabilities?: { critical: number; high: number; medium: number; low: number; report?: string };
  /** The base it was rebuilt on, when a RebuildTrigger built it. */
  base?: { image: string; digest: string; trigger: string };
  /** CVE ids found in it (from VulnerabilityReports), when asked for. */
  cves?: string[];
}

/** What runs, by image and digest, from the policies' status and the triggers' build history. */
export function inventory(policies: readonly ImagePolicy[], triggers: readonly RebuildTrigger[]): InventoryEntry[] {
  const built = new Map<string, InventoryEntry['base']>();
  for (const t of triggers)
    for (const b of t.status?.history ?? [])
      if (b.outputDigest && b.baseDigest) {
        const base = t.spec.baseImages[0]?.image ?? '';
        built.set(b.outputDigest, {
          image: repoOf(base),
          digest: b.baseDigest,
          trigger: `${t.metadata?.namespace ?? ''}/${t.metadata?.name ?? ''}`,
        });
      }
  const entries = new Map<string, InventoryEntry>();
  for (const p of policies)
    for (const w of p.status?.workloads ?? []) {
      if (!w.runningDigest) continue;
      const image = repoOf(p.spec.image);
      const key = `${image}@${w.runningDigest}`;
      let e = entries.get(key);
      if (!e) {
        const base = built.get(w.runningDigest);
        e = { image, digest: w.runningDigest, workloads: [], ...(base ? { base } : {}) };
        entries.set(key, e);
      }
      e.workloads.push(`${p.metadata?.namespace ?? ''}/${w.kind}/${w.name}/${w.container}`);
      if (w.since && (!e.runningSince || Date.parse(w.since) < Date.parse(e.runningSince))) e.runningSince = w.since;
      if (w.builtAt && !e.builtAt) e.builtAt = w.builtAt;
      const v = w.vulnerabilities;
      if (v && !e.vulnerabilities)
        e.vulnerabilities = {
          critical: v.critical ?? 0,
          high: v.high ?? 0,
          medium: v.medium ?? 0,
          low: v.low ?? 0,
          ...(v.report ? { report: v.report } : {}),
        };
    }
  return [...entries.values()].sort((a, b) => a.image.localeCompare(b.image) || a.digest.localeCompare(b.digest));
}

/**
 * How old a digest is at least: since it was built, else since workloads first ran it (an image
 * runs only after it is built, so that is a lower bound when the config has no created time).
 */
function ageAtLeastMs(e: InventoryEntry, now: Date): number | undefined {
  const since = Date.parse(e.builtAt ?? e.runningSince ?? '');
  return Number.isFinite(since) ? now.getTime() - since : undefined;
}

/** The inventory entries a report's filters keep: built on a base, running a CVE, or older than a duration. */
export function filterInventory(
  entries: readonly InventoryEntry[],
  filter: { base?: string; cve?: string; olderThanMs?: number },
  now: Date,
): InventoryEntry[] {
  return entries.filter(
    (e) =>
      (!filter.base || e.base?.image === repoOf(filter.base)) &&
      (!filter.cve || (e.cves ?? []).includes(filter.cve)) &&
      (filter.olderThanMs === undefined || (ageAtLeastMs(e, now) ?? -Infinity) > filter.olderThanMs),
  );
}

/** Inventory entries as table rows. */
export function inventoryRow(e: InventoryEntry, now: Date): Row {
  const v = e.vulnerabilities;
  return {
    image: e.image,
    digest: short(e.digest),
    workloads: String(e.workloads.length),
    built: age(e.builtAt, now),
    on: age(e.runningSince, now),
    vulnerabilities: v ? `${v.critical}C ${v.high}H ${v.medium}M ${v.low}L` : '',
    base: e.base ? `${e.base.image}@${short(e.base.digest)}` : '',
  };
}

/** Each workload container of a policy on its way to the digest: state, running → desired. */
export function rolloutLines(p: ImagePolicy): string[] {
  return (p.status?.workloads ?? []).map((w) => {
    const moving = w.desiredDigest && w.runningDigest !== w.desiredDigest ? ` → ${short(w.desiredDigest)}` : '';
    return `    ${w.kind}/${w.name} ${w.container}  ${(w.state ?? '').padEnd(15)} ${short(w.runningDigest)}${moving}${w.message && w.state !== 'UpToDate' ? `  ${w.message}` : ''}`;
  });
}
