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
  return {
    apiVersion: 'apps/v1',
    kind: req.kind,
    metadata: { name: req.name, namespace: req.namespace, annotations: { [pinAnnotation(req.container)]: why } },
    spec: { template: { spec: { containers: [{ name: req.container, image: req.image }] } } },
  };
}

function workloadPath(kind: PinRequest['kind'], namespace: string, name: string): string {
  return `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${KINDS[kind]}/${encodeURIComponent(name)}`;
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
