// RebuildTrigger reconciler: gather (the resource from the cache), decide (pure), act
// (write status when it changed, record Events for transitions), report.
import { RebuildTriggerType, type RebuildTrigger } from '../../api/v1alpha1/index.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { ObjectKey } from '../../runtime/kube-types.ts';
import { done, type ReconcileContext, type ReconcileResult, type Reconciler } from '../../runtime/reconciler.ts';
import type { StatusWriter } from '../../runtime/status.ts';
import { decideRebuildTrigger } from './decide.ts';

export interface RebuildTriggerReconcilerDeps {
  get(key: ObjectKey): RebuildTrigger | undefined;
  status: StatusWriter;
  events: EventRecorder;
  now?: () => Date;
}

export class RebuildTriggerReconciler implements Reconciler {
  private readonly deps: RebuildTriggerReconcilerDeps;

  constructor(deps: RebuildTriggerReconcilerDeps) {
    this.deps = deps;
  }

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<ReconcileResult> {
    const trigger = this.deps.get(key);
    if (!trigger || trigger.metadata?.deletionTimestamp) return done;
    const decision = decideRebuildTrigger(trigger, (this.deps.now ?? (() => new Date()))());
    const wrote = await this.deps.status.write(RebuildTriggerType, trigger, decision.status);
    if (wrote) {
      const regarding = {
        ...trigger,
        apiVersion: trigger.apiVersion ?? 'patchline.dev/v1alpha1',
        kind: trigger.kind ?? 'RebuildTrigger',
      };
      for (const e of decision.events) this.deps.events.record(regarding, e.type, e.reason, e.action, e.note);
      ctx.log.info('status updated', { ready: decision.status.conditions?.find((c) => c.type === 'Ready')?.reason });
    }
    return done;
  }
}
