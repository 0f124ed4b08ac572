// The Jobs and Tekton PipelineRuns the operator created for builds, watched so that a build's
// end wakes its RebuildTrigger at once instead of at its next poll. Only Patchline's own
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
}

export function slimBuildObject(received: KubeObject): BuildObject {
  const m = received.metadata ?? {};
  const owner = (m.ownerReferences ?? []).find(
    (o) => o.kind === 'RebuildTrigger' && o.apiVersion.startsWith('patchline.dev/') && o.controller === true,
  );
  return {
    metadata: {
      name: m.name ?? '',
      namespace: m.namespace ?? '',
      ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
      ...(m.uid ? { uid: m.uid } : {}),
    },
    ...(owner ? { trigger: owner.name } : {}),
  };
}

/** The trigger key (namespace/name) a change of a build object wakes; undefined when it has no trigger owner. */
export function triggerKeyOf(o: BuildObject): string | undefined {
  return o.trigger ? `${o.metadata.namespace}/${o.trigger}` : undefined;
}
