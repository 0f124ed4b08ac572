// JSON calls to HTTP services (build services, git forges), their failures classified the
// same way for every caller: what may be retried (unavailable, throttled, with the wait the
// service asked for) and what will not get better by retrying (rejected credentials).
import { BodyTooLarge, header, httpRequest, type HttpResponse } from './http.ts';

/** A service call that failed: `rejected` will not succeed by retrying; the others may. */
export class ServiceError extends Error {
  readonly kind: 'rejected' | 'unavailable' | 'throttled';
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(
    kind: ServiceError['kind'],
    message: string,
    options: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'ServiceError';
    this.kind = kind;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Retry-After in seconds or as an HTTP date, in milliseconds from now. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
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
 * One call to a JSON service (a build service, a forge). Network failures and 5xx are `unavailable` (the call may have
 * had its effect), 429 is `throttled`, 401 and 403 are `rejected` with a hint to check the
 * credentials. Other 4xx are returned for the provider to interpret.
 */
export async function callService(url: string, call: JsonCall): Promise<JsonResponse> {
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
      throw new ServiceError('unavailable', `${call.service} sent a response larger than ${RESPONSE_LIMIT} bytes`);
    throw new ServiceError(
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
    throw new ServiceError('throttled', `${call.service} is rate limiting (HTTP ${res.status})`, {
      status: res.status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  if (res.status >= 500) {
    throw new ServiceError('unavailable', `${call.service} answered HTTP ${res.status}${describe(parsed)}`, {
      status: res.status,
    });
  }
  if (res.status === 401 || res.status === 403) {
    throw new ServiceError(
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
