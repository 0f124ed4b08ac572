// The patchline.dev/v1alpha1 API: resource types, the types generated from the CRDs, and
// the names (annotations, condition types, reasons) that users and tools rely on.
import type { ResourceType } from '../../runtime/kube-types.ts';

export type { ImagePolicy, ImagePolicySpec, ImagePolicyStatus } from './imagepolicy.generated.ts';
export type { RebuildTrigger, RebuildTriggerSpec, RebuildTriggerStatus } from './rebuildtrigger.generated.ts';
export type { GitWriteBack, GitWriteBackSpec, GitWriteBackStatus } from './gitwriteback.generated.ts';

const GROUP = 'patchline.dev';
const VERSION = 'v1alpha1';

export const ImagePolicyType: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: 'imagepolicies',
  kind: 'ImagePolicy',
  namespaced: true,
};

export const RebuildTriggerType: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: 'rebuildtriggers',
  kind: 'RebuildTrigger',
  namespaced: true,
};

export const GitWriteBackType: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: 'gitwritebacks',
  kind: 'GitWriteBack',
  namespaced: true,
};

/** Setting this annotation to a new value (a timestamp, by convention) requests a reconcile now. */
export const ReconcileRequestedAt = 'patchline.dev/reconcile-requested-at';

/**
 * On an ImagePolicy that pinned workloads (Auto and Manual modes): deleting the policy first
 * releases its pins (the annotations go, the images stay on their digests).
 */
export const PinsFinalizer = 'patchline.dev/pins';

/** reportingController of Patchline's Events. */
export const EVENT_CONTROLLER = 'patchline.dev/operator';

/** Condition types besides kstatus' Ready, Reconciling and Stalled. */
export const ConditionTypes = {
  Building: 'Building',
  UpToDate: 'UpToDate',
  Compliant: 'Compliant',
  RolloutProgressing: 'RolloutProgressing',
  /** False while a registry's request budget checks the resource's images less often than its interval asks. */
  IntervalMet: 'IntervalMet',
} as const;

/** Reasons shared by both kinds. */
export const Reasons = {
  /** The spec passed every check the operator can make and is being acted upon. */
  Accepted: 'Accepted',
  /** The spec is invalid in a way the API server could not detect; fix the spec. */
  InvalidSpec: 'InvalidSpec',
  /** spec.suspend is true. */
  Suspended: 'Suspended',
} as const;
