// The Jobs and Tekton PipelineRuns the operator created for builds (and on-demand scans), watched
// so that a build's end wakes its RebuildTrigger (a scan's, its ImagePolicy) at once instead of at
// its next poll. Only Patchline's own
// (label app.kubernetes.io/managed-by=patchline, set on every build object it creates), cached
// as a name and an owner: the status itself is read by the provider when the trigger looks.
import type { KubeObject, ResourceType } from '../../runtime/kube-types.ts';

export const JobType: ResourceType = { group: 'batch', version: 'v1', plural: 'jobs', kind: 'Job', namespaced: true };

export const PipelineRunType: ResourceType = {
  group: 'tekton.dev',
  version: 'v1',
  plural: 'pipelineruns',
  kind: 'PipelineRun',
  namespaced: true,
};

/** What the informers list and watch: the build objects Patchline made. */
export const BUILD_OBJECTS_SELECTOR = 'app.kubernetes.io/managed-by=patchline';

export interface BuildObject extends KubeObject {
  metadata: { name: string; namespace: string; resourceVersion?: string; uid?: string };
  /** The RebuildTrigger that owns it (its controller owner reference), by name. */
  trigger?: string;
  /** The ImagePolicy that owns it (an on-demand scan Job), by name. */
  policy?: string;
}

export function slimBuildObject(received: KubeObject): BuildObject {
  const m = received.metadata ?? {};
  const ownedBy = (kind: string) =>
    (m.ownerReferences ?? []).find(
      (o) => o.kind === kind && o.apiVersion.startsWith('patchline.dev/') && o.controller === true,
    );
  const owner = ownedBy('RebuildTrigger');
  const policy = ownedBy('ImagePolicy');
  return {
    metadata: {
      name: m.name ?? '',
      namespace: m.namespace ?? '',
      ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
      ...(m.uid ? { uid: m.uid } : {}),
    },
    ...(owner ? { trigger: owner.name } : {}),
    ...(policy ? { policy: policy.name } : {}),
  };
}

/** The policy key (namespace/name) a change of a scan Job wakes; undefined when no policy owns it. */
export function policyKeyOf(o: BuildObject): string | undefined {
  return o.policy ? `${o.metadata.namespace}/${o.policy}` : undefined;
}

/** The trigger key (namespace/name) a change of a build object wakes; undefined when it has no trigger owner. */
export function triggerKeyOf(o: BuildObject): string | undefined {
  return o.trigger ? `${o.metadata.namespace}/${o.trigger}` : undefined;
}
