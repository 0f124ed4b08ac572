// ImagePolicy reconciler: gather (the resource from the cache), decide (pure), act (write
// status when it changed, record Events for transitions), report.
import { ImagePolicyType, type ImagePolicy } from '../../api/v1alpha1/index.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { ObjectKey } from '../../runtime/kube-types.ts';
import { done, type ReconcileContext, type ReconcileResult, type Reconciler } from '../../runtime/reconciler.ts';
import type { StatusWriter } from '../../runtime/status.ts';
import { withKind } from '../lifecycle.ts';
import { decideImagePolicy } from './decide.ts';

export interface ImagePolicyReconcilerDeps {
  get(key: ObjectKey): ImagePolicy | undefined;
  status: StatusWriter;
  events: EventRecorder;
  now?: () => Date;
}

export class ImagePolicyReconciler implements Reconciler {
  private readonly deps: ImagePolicyReconcilerDeps;

  constructor(deps: ImagePolicyReconcilerDeps) {
    this.deps = deps;
  }

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<ReconcileResult> {
    const policy = this.deps.get(key);
    if (!policy || policy.metadata?.deletionTimestamp) return done;
    const decision = decideImagePolicy(policy, (this.deps.now ?? (() => new Date()))());
    const wrote = await this.deps.status.write(ImagePolicyType, policy, decision.status);
    if (wrote) {
      for (const e of decision.events)
        this.deps.events.record(withKind(policy, 'ImagePolicy'), e.type, e.reason, e.action, e.note);
      ctx.log.info('status updated', { ready: decision.status.conditions?.find((c) => c.type === 'Ready')?.reason });
    }
    return done;
  }
}
