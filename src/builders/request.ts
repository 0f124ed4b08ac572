// Pieces every provider uses: the correlation id, substitutions into user templates, and
// JSON calls to build services with their errors classified.
import { createHash } from 'node:crypto';
import { BodyTooLarge, header, httpRequest, type HttpResponse } from '../runtime/http.ts';
import { parseRetryAfter } from '../registry/client.ts';
import { BuildError, type BuildRequest, type ProviderCredentials } from './types.ts';

/** pl + 16 hex digits of sha256(trigger uid, revision, attempt): the same for every retry of one attempt. */
export function correlationId(triggerUid: string, revision: string, attempt: number): string {
  return `pl${createHash('sha256').update(`${triggerUid}\u0000${revision}\u0000${attempt}`).digest('hex').slice(0, 16)}`;
}

export function variables(req: BuildRequest, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'base.image': req.base.image,
    'base.digest': req.base.digest,
    'base.ref': req.base.ref,
    'target.image': req.target.image,
    'build.id': req.correlationId,
    'build.attempt': String(req.attempt),
    'trigger.name': req.trigger.name,
    'trigger.namespace': req.trigger.namespace,
    ...extra,
  };
}

/**
 * Replaces $(name) for the known variables only: other $(...) are left as they are, since
 * they may belong to the build system (Tekton's $(params.x), a shell's $(cmd)).
 */
export function substitute(template: string, vars: Record<string, string>): string {
  return template.replace(/\$\(([a-zA-Z][a-zA-Z0-9.]*)\)/g, (whole, name: string) => vars[name] ?? whole);
}

/** Substitutes inside every string of a JSON value, keeping its structure (so values need no escaping). */
export function substituteJson(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === 'string') return substitute(value, vars);
  if (Array.isArray(value)) return value.map((v) => substituteJson(v, vars));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteJson(v, vars)]));
  }
  return value;
}

export function substituteMap(
  map: Readonly<Record<string, string>> | undefined,
  vars: Record<string, string>,
): Record<string, string> {
  return Object.fromEntries(Object.entries(map ?? {}).map(([k, v]) => [k, substitute(v, vars)]));
}

export interface JsonResponse {
  status: number;
  headers: HttpResponse['headers'];
  body: unknown;
}

export interface JsonCall {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  body?: unknown;
  /** A raw body, sent as is (form bodies, or JSON that was signed). */
  rawBody?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Which service this is, for messages: "GitHub", "Cloud Build"... */
  service: string;
}

const RESPONSE_LIMIT = 2 * 1024 * 1024;

/**
 * One call to a build service. Network failures and 5xx are `unavailable` (the call may have
 * had its effect), 429 is `throttled`, 401 and 403 are `rejected` with a hint to check the
 * credentials. Other 4xx are returned for the provider to interpret.
 */
export async function callJson(url: string, call: JsonCall): Promise<JsonResponse> {
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'patchline', ...call.headers };
  let body = call.rawBody;
  if (call.body !== undefined && body === undefined) {
    body = JSON.stringify(call.body);
    headers['content-type'] ??= 'application/json';
  }
  let res: HttpResponse;
  try {
    res = await httpRequest(url, {
      method: call.method,
      headers,
      ...(body !== undefined ? { body } : {}),
      limit: RESPONSE_LIMIT,
      timeoutMs: call.timeoutMs ?? 30_000,
      ...(call.signal ? { signal: call.signal } : {}),
    });
  } catch (err) {
    if (err instanceof BodyTooLarge)
      throw new BuildError('unavailable', `${call.service} sent a response larger than ${RESPONSE_LIMIT} bytes`);
    throw new BuildError(
      'unavailable',
      `${call.service} unreachable: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  let parsed: unknown;
  const text = res.body.toString('utf8');
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text.slice(0, 500);
  }
  // GitHub (and others) say "rate limited" with a 403 and rate-limit headers.
  const limited =
    res.status === 403 &&
    (header(res.headers, 'x-ratelimit-remaining') === '0' || header(res.headers, 'retry-after') !== undefined);
  if (res.status === 429 || limited) {
    const reset = Number(header(res.headers, 'x-ratelimit-reset') ?? NaN);
    const retryAfterMs =
      parseRetryAfter(header(res.headers, 'retry-after'), Date.now()) ??
      (Number.isFinite(reset) ? Math.max(0, reset * 1000 - Date.now()) : undefined);
    throw new BuildError('throttled', `${call.service} is rate limiting (HTTP ${res.status})`, {
      status: res.status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  if (res.status >= 500) {
    throw new BuildError('unavailable', `${call.service} answered HTTP ${res.status}${describe(parsed)}`, {
      status: res.status,
    });
  }
  if (res.status === 401 || res.status === 403) {
    throw new BuildError(
      'rejected',
      `${call.service} refused the credentials (HTTP ${res.status})${describe(parsed)}; check the credentials Secret or the workload identity's permissions`,
      {
        status: res.status,
      },
    );
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** A short, safe summary of a service's error body. */
export function describe(body: unknown): string {
  if (body === undefined || body === null || body === '') return '';
  if (typeof body === 'string') return `: ${body.slice(0, 300)}`;
  if (typeof body === 'object') {
    const b = body as Record<string, unknown>;
    const error = b.error;
    const message =
      (typeof b.message === 'string' && b.message) ||
      (typeof error === 'object' &&
        error !== null &&
        typeof (error as { message?: unknown }).message === 'string' &&
        (error as { message: string }).message) ||
      (typeof error === 'string' && error) ||
      undefined;
    if (message) return `: ${message.slice(0, 300)}`;
  }
  return '';
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** A key the provider cannot work without, from the credentials Secret; a refusal naming it otherwise. */
export function requiredCredential(credentials: ProviderCredentials, key: string, provider: string): string {
  const value = credentials?.[key];
  if (!value) throw new BuildError('rejected', `${provider} needs a ${key} in the credentials Secret (key "${key}")`);
  return value;
}
