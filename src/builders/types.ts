// The one interface every build provider implements. A provider starts a build for a
// request, finds a build it may have started before (after a crash or failover), reads a
// build's status, and says how long a just-started build may stay invisible to `find`.
//
// Exactly once: every request carries a correlation id derived from (trigger, base
// revision, attempt). Providers pass it to the build service in the way the service
// supports best: as an object name (Job, PipelineRun, ACR TaskRun: a second create is
// refused), an idempotency token (CodeBuild, the webhook's Idempotency-Key), or an input
// the run can be found by (GitHub, GitLab, Cloud Build).

import { ServiceError } from '../runtime/json-call.ts';

export type ProviderName =
  'acrTask' | 'githubActions' | 'cloudBuild' | 'codeBuild' | 'gitlab' | 'tekton' | 'job' | 'webhook';

export type BuildPhase = 'Queued' | 'Running' | 'Succeeded' | 'Failed' | 'Cancelled' | 'Unknown';

export interface BuildRequest {
  /** Lower-case letters and digits, starting with "pl": safe in object names and labels. */
  correlationId: string;
  attempt: number;
  trigger: { namespace: string; name: string; uid: string };
  base: { image: string; digest: string; ref: string };
  target: { image: string };
  requestedAt: Date;
  /** How long the build may run (spec.build.timeout), in milliseconds. */
  timeoutMs: number;
}

export interface BuildHandle {
  id: string;
  url?: string;
  externalId?: string;
}

export interface BuildStatus {
  phase: BuildPhase;
  url?: string;
  message?: string;
  /** The digest the build pushed, when the provider reports it. */
  outputDigest?: string;
  /** When the provider learned the real id only now (a dispatch without run details). */
  handle?: BuildHandle;
}

/**
 * A failed provider call, classified for the exactly-once protocol:
 *   rejected     the build certainly did not start (bad credentials, unknown pipeline,
 *                invalid input): record the failure, retry with backoff;
 *   unavailable  the call may or may not have started a build (timeout, 5xx): resolve with
 *                `find` before starting anything;
 *   throttled    the service is rate limiting: try again after retryAfterMs.
 */
/** A build service call that failed (the providers' name for a ServiceError). */
export class BuildError extends ServiceError {
  constructor(
    kind: ServiceError['kind'],
    message: string,
    options: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(kind, message, options);
    this.name = 'BuildError';
  }
}

export interface BuildProvider {
  readonly name: ProviderName;
  /** How long after a start `find` may still miss the build (eventually consistent lists). */
  readonly findGraceMs: number;
  start(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle>;
  /** The build started for this request, if the provider can tell; undefined when there is none. */
  find(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle | undefined>;
  status(req: BuildRequest, handle: BuildHandle, signal?: AbortSignal): Promise<BuildStatus>;
}

/** Secret data of spec.build.credentialsRef, decoded; undefined means workload identity. */
export type ProviderCredentials = Readonly<Record<string, string>> | undefined;
