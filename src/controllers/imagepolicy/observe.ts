// What each selected container looks like now, for the rollout decision: its spec image,
// what its workload's pods run, how the rollout stands, who owns the image field, and what
// Patchline's pin annotation says. Pure: reads the cached objects.
import { imageFieldOwner, pinAnnotation } from '../../rollout/pin.ts';
import { rolloutProgress } from '../../rollout/progress.ts';
import { runningDigests } from '../../rollout/running.ts';
import type { Pod, Workload } from '../../rollout/workloads.ts';
import type { ObservedContainer } from './rollout.ts';
import type { SelectedContainer } from './select.ts';

/** What Patchline's pin annotation on a container says: the image pinned and the reverts counted then. */
export function pinRecord(workload: Workload, container: string): { image: string; reverts: number } | undefined {
  const raw = workload.metadata.annotations?.[pinAnnotation(container)];
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as { image?: unknown; reverts?: unknown };
    if (typeof parsed.image !== 'string') return undefined;
    return { image: parsed.image, reverts: typeof parsed.reverts === 'number' ? parsed.reverts : 0 };
  } catch {
    return undefined;
  }
}

export function observeContainers(
  selected: readonly SelectedContainer[],
  workloads: readonly Workload[],
  pods: readonly Pod[],
): ObservedContainer[] {
  // Only the selected workloads and their pods are indexed: a namespace may hold thousands of
  // others, and this runs at every reconcile of every policy.
  const wanted = new Set(selected.map((c) => `${c.kind}/${c.name}`));
  const byKey = new Map<string, Workload>();
  for (const w of workloads) {
    const key = `${w.kind}/${w.metadata.name}`;
    if (wanted.has(key)) byKey.set(key, w);
  }
  // The pods of each workload, by their controller reference (old ReplicaSets' pods
  // included: they show a rollout still under way).
  const podsByOwner = new Map<string, Pod[]>();
  for (const p of pods) {
    if (!p.owner || !wanted.has(p.owner)) continue;
    const list = podsByOwner.get(p.owner);
    if (list) list.push(p);
    else podsByOwner.set(p.owner, [p]);
  }
  const runningByWorkload = new Map<string, ReturnType<typeof runningDigests>>();
  const out: ObservedContainer[] = [];
  for (const c of selected) {
    const key = `${c.kind}/${c.name}`;
    const w = byKey.get(key);
    if (!w) continue;
    let running = runningByWorkload.get(key);
    if (!running) runningByWorkload.set(key, (running = runningDigests(podsByOwner.get(key) ?? [])));
    const o: ObservedContainer = {
      kind: c.kind,
      name: c.name,
      container: c.container,
      specImage: c.image,
      progress: rolloutProgress(w),
    };
    const r = running.get(c.container);
    if (r) o.running = r;
    const owner = imageFieldOwner(w.metadata.managedFields, c.container);
    if (owner) o.imageOwner = owner;
    const pinned = pinRecord(w, c.container);
    if (pinned) {
      o.pinnedImage = pinned.image;
      o.pinnedReverts = pinned.reverts;
    }
    out.push(o);
  }
  return out;
}
