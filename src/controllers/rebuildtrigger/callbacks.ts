// Build callbacks: a webhook-provider build service without a statusURL reports its builds
// by POST /callbacks/builds/<build id> on the operator's webhook endpoint, with the body
// {"status", "digest", "url", "message"} signed like the start request
// (X-Patchline-Signature: sha256=<HMAC-SHA256 of the body with the trigger's hmacKey>).
//
// The build id is the correlation id the operator sent; it names the trigger (found in the
// informer cache) and the build attempt, so a late callback for an earlier attempt changes
// nothing. The outcome is committed like a polled status (applyOutcome on a fresh read) and
// the trigger is queued to carry on at once.
import { timingSafeEqual } from 'node:crypto';
import { RebuildTriggerType, type RebuildTrigger, type RebuildTriggerStatus } from '../../api/v1alpha1/index.ts';
import type { BuildStatus } from '../../builders/types.ts';
import { parseReportedStatus, sign } from '../../builders/webhook.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { StatusWriter } from '../../runtime/status.ts';
import type { CredentialResolver } from '../credentials.ts';
import { withKind, type DecidedEvent } from '../lifecycle.ts';
import { applyOutcome } from './build-outcome.ts';

export interface CallbackAnswer {
  status: number;
  message: string;
}

export interface BuildCallbackSink {
  receive(buildId: string, body: Buffer, signature: string | undefined): Promise<CallbackAnswer>;
  check(buildId: string, body: Buffer, signature: string | undefined): Promise<CallbackAnswer | undefined>;
}

/** An authentic, well-formed callback: the trigger it is for and what it reports. */
interface Authentic {
  trigger: RebuildTrigger;
  reported: BuildStatus;
}

export interface BuildCallbacksDeps {
  list(): RebuildTrigger[];
  credentials: Pick<CredentialResolver, 'buildCredentials'>;
  status: StatusWriter;
  events: EventRecorder;
  enqueue(key: string): void;
  logger: Logger;
  now?: () => Date;
}

const BUILD_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

function signatureMatches(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export class BuildCallbacks implements BuildCallbackSink {
  private readonly deps: BuildCallbacksDeps;

  constructor(deps: BuildCallbacksDeps) {
    this.deps = deps;
  }

  /**
   * What a replica that is not the leader checks before passing a callback on (from its own
   * informer cache and Secret reads): a forged or malformed callback is refused there too.
   */
  async check(buildId: string, body: Buffer, signature: string | undefined): Promise<CallbackAnswer | undefined> {
    const authentic = await this.authenticate(buildId, body, signature);
    return 'status' in authentic ? authentic : undefined;
  }

  async receive(buildId: string, body: Buffer, signature: string | undefined): Promise<CallbackAnswer> {
    const authentic = await this.authenticate(buildId, body, signature);
    if ('status' in authentic) return authentic;
    return this.record(buildId, authentic);
  }

  private async authenticate(
    buildId: string,
    body: Buffer,
    signature: string | undefined,
  ): Promise<Authentic | CallbackAnswer> {
    if (!BUILD_ID.test(buildId)) return { status: 404, message: 'unknown build' };
    const trigger = this.deps.list().find((t) => t.spec.build.webhook && t.status?.build?.correlationId === buildId);
    // The same answer for "no such build" and "not a webhook build": nothing to probe.
    if (!trigger) return { status: 404, message: 'unknown build' };
    const namespace = trigger.metadata?.namespace ?? '';
    const name = trigger.metadata?.name ?? '';
    let key: string | undefined;
    try {
      key = (await this.deps.credentials.buildCredentials(namespace, trigger.spec.build.credentialsRef))?.hmacKey;
    } catch (err) {
      this.deps.logger.warn('cannot read the build credentials for a callback', {
        resource: `${namespace}/${name}`,
        error: err instanceof Error ? err.message : String(err),
      });
      return { status: 503, message: 'cannot verify the callback now; retry' };
    }
    if (!key) return { status: 403, message: 'callbacks need an hmacKey in the build credentials Secret' };
    if (!signatureMatches(signature, sign(key, body.toString('utf8')))) {
      return { status: 401, message: 'bad signature' };
    }
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      return { status: 400, message: 'the body is not JSON' };
    }
    const reported = parseReportedStatus(json);
    if (!reported) return { status: 400, message: 'no known "status" (queued, running, succeeded, failed, cancelled)' };
    return { trigger, reported };
  }

  private async record(buildId: string, { trigger, reported }: Authentic): Promise<CallbackAnswer> {
    const namespace = trigger.metadata?.namespace ?? '';
    const name = trigger.metadata?.name ?? '';
    const now = (this.deps.now ?? (() => new Date()))();
    const retries = trigger.spec.build.retries ?? 2;
    let events: DecidedEvent[] = [];
    const written = await this.deps.status.commit<RebuildTrigger, RebuildTriggerStatus>(
      RebuildTriggerType,
      { namespace, name },
      (current) => {
        const applied = applyOutcome(current.status ?? {}, buildId, { status: reported }, now, retries);
        events = applied?.events ?? [];
        return applied?.status;
      },
    );
    if (written) {
      const regarding = withKind(trigger, 'RebuildTrigger');
      for (const e of events) this.deps.events.record(regarding, e.type, e.reason, e.action, e.note, e.details);
    }
    this.deps.logger.info('build callback', {
      resource: `${namespace}/${name}`,
      build: buildId,
      phase: reported.phase,
    });
    this.deps.enqueue(`${namespace}/${name}`);
    return { status: 202, message: 'recorded' };
  }
}
