// Pinning a container to a digest with server-side apply: the applied object holds only the
// container's name (the list-map key) and image, plus an annotation saying why and from what,
// so the field manager `patchline` owns exactly those fields and nothing else. Other managers
// (kubectl, Argo CD, Flux, a Helm release) keep everything they own; GitOps tools are told to
// ignore this manager's field (docs), and a manager that takes the field back shows up in
// managedFields, which is how a revert loop is detected.
import type { KubeClient } from '../runtime/kube-client.ts';

export const FIELD_MANAGER = 'patchline';
const KINDS: Record<string, string> = {
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  DaemonSet: 'daemonsets',
};

export interface PinRequest {
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  namespace: string;
  name: string;
  container: string;
  /** repo@sha256:… */
  image: string;
  /** Why, for the annotation: the policy and the image before. */
  policy: string;
  previousImage?: string;
  /** How many times another manager set the image back before this pin (revert-loop detection). */
  reverts?: number;
  /**
   * The other containers Patchline pins on this workload, as they are: every pin shares the
   * field manager, and an apply that left one out would drop its annotation and image.
   */
  others?: KeptPin[];
}

/** A pin on another container of the workload, kept as it is. */
export interface KeptPin {
  container: string;
  image: string;
  annotation: string;
}

/** The pins Patchline holds on a workload's containers (from their annotations), but `except`. */
export function keptPins(w: Pick<PinnedWorkload, 'annotations' | 'containers'>, except: string): KeptPin[] {
  return w.containers.flatMap((c) => {
    const annotation = w.annotations[pinAnnotation(c.name)];
    return c.name !== except && annotation !== undefined && c.image
      ? [{ container: c.name, image: c.image, annotation }]
      : [];
  });
}

/** The annotation key for one container (a workload may carry several pinned containers). */
export function pinAnnotation(container: string): string {
  return `patchline.dev/pinned.${container}`.slice(0, 'patchline.dev/'.length + 63);
}

/** The apply configuration: only what Patchline owns. */
function pinBody(req: PinRequest): Record<string, unknown> {
  const why = JSON.stringify({
    policy: req.policy,
    image: req.image,
    ...(req.previousImage ? { previous: req.previousImage } : {}),
    ...(req.reverts ? { reverts: req.reverts } : {}),
  });
  const others = req.others ?? [];
  return {
    apiVersion: 'apps/v1',
    kind: req.kind,
    metadata: {
      name: req.name,
      namespace: req.namespace,
      annotations: {
        ...Object.fromEntries(others.map((o) => [pinAnnotation(o.container), o.annotation])),
        [pinAnnotation(req.container)]: why,
      },
    },
    spec: {
      template: {
        spec: {
          containers: [
            ...others.map((o) => ({ name: o.container, image: o.image })),
            { name: req.container, image: req.image },
          ],
        },
      },
    },
  };
}

function workloadPath(kind: PinRequest['kind'], namespace: string, name: string): string {
  return `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${KINDS[kind]}/${encodeURIComponent(name)}`;
}

/** The annotation a pin writes, to keep it in later applies to the same workload. */
export function pinAnnotationValue(req: PinRequest): string {
  return (pinBody(req).metadata as { annotations: Record<string, string> }).annotations[pinAnnotation(req.container)]!;
}

/** Applies the pin. force: Patchline takes the image field even when another manager set it last. */
export async function applyPin(client: KubeClient, req: PinRequest, signal?: AbortSignal): Promise<void> {
  await client.requestJson('PATCH', workloadPath(req.kind, req.namespace, req.name), {
    body: pinBody(req),
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: FIELD_MANAGER, force: 'true' },
    ...(signal ? { signal } : {}),
  });
}

/** The policy a pin annotation names (namespace/name); undefined when unreadable. */
export function pinPolicy(annotation: string | undefined): string | undefined {
  if (!annotation) return undefined;
  try {
    const parsed = JSON.parse(annotation) as { policy?: unknown };
    return typeof parsed.policy === 'string' ? parsed.policy : undefined;
  } catch {
    return undefined;
  }
}

/** A workload as the release reads it: its pin annotations and its containers' images. */
export interface PinnedWorkload {
  kind: PinRequest['kind'];
  namespace: string;
  name: string;
  annotations: Record<string, string>;
  containers: { name: string; image?: string }[];
}

/**
 * The apply that releases `policy`'s pins: every field Patchline owns stays as it is (all
 * pinned containers' images, and the other policies' pin annotations), but `policy`'s
 * annotations are left out, so they are removed. Every pin shares the field manager
 * `patchline`, so an apply must state all of them. Undefined when the policy pins nothing here.
 */
export function releaseBody(w: PinnedWorkload, policy: string): Record<string, unknown> | undefined {
  const pinned = w.containers.filter((c) => w.annotations[pinAnnotation(c.name)] !== undefined);
  const mine = pinned.filter((c) => pinPolicy(w.annotations[pinAnnotation(c.name)]) === policy);
  if (mine.length === 0) return undefined;
  const kept = Object.fromEntries(
    pinned.filter((c) => !mine.includes(c)).map((c) => [pinAnnotation(c.name), w.annotations[pinAnnotation(c.name)]!]),
  );
  return {
    apiVersion: 'apps/v1',
    kind: w.kind,
    metadata: { name: w.name, namespace: w.namespace, annotations: kept },
    spec: {
      template: {
        spec: { containers: pinned.map((c) => ({ name: c.name, ...(c.image ? { image: c.image } : {}) })) },
      },
    },
  };
}

/**
 * Releases a deleted policy's pins on a workload: the pin annotations go, the images stay on
 * the digests they were pinned to (a tag is not restored: a rollout to an image nobody checked
 * now would be a change without a policy). Returns whether there was anything to release.
 */
export async function releasePins(
  client: KubeClient,
  w: PinnedWorkload,
  policy: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const body = releaseBody(w, policy);
  if (!body) return false;
  await client.requestJson('PATCH', workloadPath(w.kind, w.namespace, w.name), {
    body,
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: FIELD_MANAGER, force: 'true' },
    ...(signal ? { signal } : {}),
  });
  return true;
}

interface ManagedField {
  manager?: string;
  operation?: string;
  fieldsV1?: unknown;
  time?: string;
}

/**
 * Which manager owns a container's image field now, from managedFields: Patchline after its
 * apply, or another manager that changed it since (a GitOps tool reverting the pin).
 */
export function imageFieldOwner(
  managedFields: readonly ManagedField[] | undefined,
  container: string,
): string | undefined {
  const key = `k:{"name":"${container}"}`;
  for (const mf of managedFields ?? []) {
    const f = mf.fieldsV1 as
      | Record<string, Record<string, Record<string, Record<string, Record<string, Record<string, unknown>>>>>>
      | undefined;
    const owned = f?.['f:spec']?.['f:template']?.['f:spec']?.['f:containers']?.[key]?.['f:image'];
    if (owned !== undefined) return mf.manager;
  }
  return undefined;
}
