// Events that teams want to hear about become notices: an EventRecorder that records as
// usual, and for the events a GitWriteBack's spec.notify asks for — about the write-back
// itself, or about an ImagePolicy that writes through it — queues a notice to each target.
// Events are decided once per occurrence, so each notice is sent once (at most, across a
// restart: a delivery in flight when the process stops is lost, and logged as not sent).
import type { GitWriteBack, ImagePolicy } from '../api/v1alpha1/index.ts';
import type { AuditDetails, EventRecorder, EventType } from '../runtime/events.ts';
import type { KubeObject, ObjectKey } from '../runtime/kube-types.ts';
import { isNoticeEvent, notice } from './notices.ts';
import type { Notifier } from './notifier.ts';

export interface NoticeRecorderDeps {
  writeBack(key: ObjectKey): GitWriteBack | undefined;
  policy(key: ObjectKey): ImagePolicy | undefined;
  notifier: Notifier;
  now?: () => Date;
}

export class NoticeRecorder implements EventRecorder {
  private readonly inner: EventRecorder;
  private readonly deps: NoticeRecorderDeps;

  constructor(inner: EventRecorder, deps: NoticeRecorderDeps) {
    this.inner = inner;
    this.deps = deps;
  }

  record(
    regarding: KubeObject,
    type: EventType,
    reason: string,
    action: string,
    note: string,
    details?: AuditDetails,
  ): void {
    this.inner.record(regarding, type, reason, action, note, details);
    if (!isNoticeEvent(reason)) return;
    const wb = this.writeBackOf(regarding);
    if (!wb?.spec.notify?.length) return;
    const namespace = wb.metadata?.namespace ?? '';
    const n = notice(
      reason,
      type === 'Warning',
      `${namespace}/${wb.metadata?.name ?? ''}`,
      {
        kind: regarding.kind ?? '',
        namespace: regarding.metadata?.namespace ?? '',
        name: regarding.metadata?.name ?? '',
      },
      note,
      details,
      (this.deps.now ?? (() => new Date()))(),
    );
    for (const target of wb.spec.notify)
      if (!target.events?.length || target.events.includes(reason)) this.deps.notifier.send(namespace, target, n);
  }

  /** The GitWriteBack itself, or the one a GitOps ImagePolicy writes through. */
  private writeBackOf(regarding: KubeObject): GitWriteBack | undefined {
    const namespace = regarding.metadata?.namespace ?? '';
    const name = regarding.metadata?.name ?? '';
    if (regarding.kind === 'GitWriteBack') return this.deps.writeBack({ namespace, name });
    if (regarding.kind !== 'ImagePolicy') return undefined;
    const policy = this.deps.policy({ namespace, name });
    const ref = policy?.spec.rollout?.mode === 'GitOps' ? policy.spec.rollout.gitOps?.writeBackRef.name : undefined;
    return ref ? this.deps.writeBack({ namespace, name: ref }) : undefined;
  }
}
