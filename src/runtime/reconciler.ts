// The reconcile contract, as in controller-runtime: a key in; a result or an error out.
// The request carries only the key, never the event: a reconciler reads the current state
// and works towards the desired one, however many events led to the call.
import type { Logger } from './logger.ts';
import type { ObjectKey } from './kube-types.ts';

export interface ReconcileResult {
  /** Run again after this long (a poll, a settle period, a window opening). */
  requeueAfterMs?: number;
}

export interface ReconcileContext {
  /** Logger carrying the resource and this reconcile's id. */
  log: Logger;
  reconcileId: string;
  /** Aborted when the operator shuts down or loses leadership. */
  signal: AbortSignal;
}

export interface Reconciler {
  reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<ReconcileResult>;
}

/**
 * An error that retrying cannot fix (an invalid spec, a missing permission that the
 * reconciler has already reported in status). It is logged once and not retried; the next
 * change of the resource triggers a new reconcile.
 */
export class TerminalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

export const done: ReconcileResult = {};
export const requeueAfter = (ms: number): ReconcileResult => ({ requeueAfterMs: ms });
