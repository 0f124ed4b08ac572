// A generic build service over HTTP.
//
// Start: POST spec.url with a JSON body (spec.body as a template, or a default describing the
// trigger, base and target), and headers
//   X-Patchline-Build-Id and Idempotency-Key   the correlation id: the service must treat a
//                                              repeated request with the same key as the same
//                                              build (this is what makes a restart safe)
//   X-Patchline-Signature: sha256=<hex>        HMAC-SHA256 of the body with the Secret's hmacKey
//   Authorization: Bearer <token>              the Secret's token, when it has one
// The service may answer {"id", "url", "status"}.
//
// Status: GET spec.statusURL (with $(build.id) and $(build.externalId) substituted), which
// answers {"status": "queued|running|succeeded|failed|cancelled", "digest", "url", "message"};
// or, without a statusURL, the service calls back (POST /callbacks/builds/<build id> on the
// operator's webhook endpoint, signed the same way), and the callback is recorded in status.
// When the operator knows how services reach it (webhooks.buildCallbackURL), the start says
// where to call back: X-Patchline-Callback-URL and $(build.callbackURL) — with shards, the
// instance that started the build.
import { createHmac } from 'node:crypto';
import type {
  BuildHandle,
  BuildPhase,
  BuildProvider,
  BuildRequest,
  BuildStatus,
  ProviderCredentials,
} from './types.ts';
import { BuildError } from './types.ts';
import { callJson, describe, isObject, str, substitute, substituteJson, variables } from './request.ts';

export interface WebhookSpec {
  url: string;
  body?: string;
  statusURL?: string;
}

const SIGNATURE_HEADER = 'x-patchline-signature';

export function sign(key: string, body: string): string {
  return `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
}

/** Reads the phase words build services use. */
export function parsePhase(value: unknown): BuildPhase | undefined {
  const v = typeof value === 'string' ? value.toLowerCase() : '';
  if (['queued', 'pending', 'waiting', 'created', 'accepted'].includes(v)) return 'Queued';
  if (['running', 'in_progress', 'building', 'started', 'working'].includes(v)) return 'Running';
  if (['succeeded', 'success', 'successful', 'completed', 'done', 'passed'].includes(v)) return 'Succeeded';
  if (['failed', 'failure', 'error', 'errored', 'timeout', 'timed_out'].includes(v)) return 'Failed';
  if (['cancelled', 'canceled', 'aborted', 'stopped'].includes(v)) return 'Cancelled';
  return undefined;
}

/** A build status as a service reports it, in a status answer or a callback. */
export function parseReportedStatus(body: unknown): BuildStatus | undefined {
  if (!isObject(body)) return undefined;
  const phase = parsePhase(body.status ?? body.phase ?? body.state);
  if (!phase) return undefined;
  const status: BuildStatus = { phase };
  const url = str(body.url);
  if (url) status.url = url;
  const message = str(body.message);
  if (message) status.message = message.slice(0, 1024);
  const digest = str(body.digest);
  if (digest && /^sha256:[a-f0-9]{64}$/.test(digest)) status.outputDigest = digest;
  return status;
}

export class WebhookProvider implements BuildProvider {
  readonly name = 'webhook' as const;
  // No lookup: the correlation id is the idempotency key, so starting again is the lookup.
  readonly findGraceMs = 0;
  private readonly spec: WebhookSpec;
  private readonly credentials: ProviderCredentials;
  private readonly callbackBase: string | undefined;

  /** callbackBase: this instance's webhook endpoint as the build service reaches it. */
  constructor(spec: WebhookSpec, credentials: ProviderCredentials, callbackBase?: string) {
    this.spec = spec;
    this.credentials = credentials;
    this.callbackBase = callbackBase;
  }

  /** Where the service reports this build, when it is to call back and the operator knows its address. */
  private callbackURL(req: BuildRequest): string | undefined {
    if (this.spec.statusURL || !this.callbackBase) return undefined;
    return `${this.callbackBase}/callbacks/builds/${req.correlationId}`;
  }

  private headers(req: BuildRequest, body: string): Record<string, string> {
    const headers: Record<string, string> = {
      'x-patchline-build-id': req.correlationId,
      'idempotency-key': req.correlationId,
    };
    if (this.credentials?.hmacKey) headers[SIGNATURE_HEADER] = sign(this.credentials.hmacKey, body);
    if (this.credentials?.token) headers.authorization = `Bearer ${this.credentials.token}`;
    const callback = this.callbackURL(req);
    if (callback) headers['x-patchline-callback-url'] = callback;
    return headers;
  }

  body(req: BuildRequest): string {
    const callback = this.callbackURL(req);
    const vars = variables(req, callback ? { 'build.callbackURL': callback } : {});
    if (this.spec.body) {
      let template: unknown;
      try {
        template = JSON.parse(this.spec.body);
      } catch {
        throw new BuildError('rejected', 'spec.build.webhook.body is not valid JSON');
      }
      return JSON.stringify(substituteJson(template, vars));
    }
    return JSON.stringify({
      buildId: req.correlationId,
      attempt: req.attempt,
      trigger: req.trigger,
      base: req.base,
      target: req.target,
      ...(callback ? { callbackURL: callback } : {}),
    });
  }

  async start(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle> {
    const body = this.body(req);
    const res = await callJson(this.spec.url, {
      method: 'POST',
      headers: { ...this.headers(req, body), 'content-type': 'application/json' },
      rawBody: body,
      service: 'the build service',
      ...(signal ? { signal } : {}),
    });
    if (res.status >= 400)
      throw new BuildError(
        'rejected',
        `the build service refused the build (HTTP ${res.status})${describe(res.body)}`,
        { status: res.status },
      );
    const handle: BuildHandle = { id: req.correlationId };
    if (isObject(res.body)) {
      const external = res.body.id ?? res.body.buildId;
      if (typeof external === 'string' || typeof external === 'number') handle.externalId = String(external);
      const url = str(res.body.url);
      if (url) handle.url = url;
    }
    return handle;
  }

  find(): Promise<BuildHandle | undefined> {
    return Promise.resolve(undefined);
  }

  async status(req: BuildRequest, handle: BuildHandle, signal?: AbortSignal): Promise<BuildStatus> {
    if (!this.spec.statusURL) return { phase: 'Running', message: 'waiting for the build service to call back' };
    const url = substitute(this.spec.statusURL, variables(req, { 'build.externalId': handle.externalId ?? '' }));
    const res = await callJson(url, {
      method: 'GET',
      headers: this.headers(req, ''),
      service: 'the build service',
      ...(signal ? { signal } : {}),
    });
    if (res.status === 404)
      return { phase: 'Unknown', message: `the build service does not know build ${handle.externalId ?? handle.id}` };
    if (res.status >= 400)
      throw new BuildError(
        'rejected',
        `the build service refused the status request (HTTP ${res.status})${describe(res.body)}`,
        { status: res.status },
      );
    const status = parseReportedStatus(res.body);
    if (!status)
      throw new BuildError(
        'unavailable',
        `the build service sent a status without a known "status" field${describe(res.body)}`,
      );
    if (!status.url && handle.url) status.url = handle.url;
    return status;
  }
}
