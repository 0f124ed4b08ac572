// The one way forge clients call their API: the caller's authentication headers, a 401 that a
// renewable credential (a GitHub App installation token past its hour) survives by renewing
// once, and every call counted.
import { callService, ServiceError, type JsonCall, type JsonResponse } from '../../runtime/json-call.ts';
import type { ForgeAuth, ForgeCalls } from './types.ts';

export interface ForgeHttpOptions {
  /** The API's base URL, without a trailing slash. */
  api: string;
  auth: ForgeAuth;
  /** Headers every call carries (API version, media type). */
  headers?: Record<string, string>;
  service: string;
  calls?: ForgeCalls;
  timeoutMs?: number;
}

export class ForgeHttp {
  private readonly options: ForgeHttpOptions;

  constructor(options: ForgeHttpOptions) {
    this.options = { ...options, api: options.api.replace(/\/+$/, '') };
  }

  get api(): string {
    return this.options.api;
  }

  /** One call; `path` is relative to the API (with its query) or an absolute URL on the API's origin. */
  async call(method: JsonCall['method'], path: string, body?: unknown, signal?: AbortSignal): Promise<JsonResponse> {
    const url = this.url(path);
    for (let attempt = 0; ; attempt++) {
      const headers = { ...this.options.headers, ...(await this.options.auth.headers(signal)) };
      if (this.options.calls) this.options.calls.count++;
      try {
        return await callService(url, {
          method,
          headers,
          ...(body !== undefined ? { body } : {}),
          service: this.options.service,
          timeoutMs: this.options.timeoutMs ?? 30_000,
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        if (attempt === 0 && err instanceof ServiceError && err.status === 401 && this.options.auth.expired?.())
          continue;
        throw err;
      }
    }
  }

  /** Pagination links must stay on the API's origin: a forge's answer cannot send the token elsewhere. */
  private url(path: string): string {
    if (!/^https?:\/\//.test(path)) return `${this.options.api}${path}`;
    if (new URL(path).origin !== new URL(this.options.api).origin)
      throw new ServiceError('rejected', `${this.options.service} pointed to another host (${new URL(path).host})`);
    return path;
  }
}

/** A 4xx the client does not handle: refused, with what the forge said. */
export function refused(service: string, what: string, res: JsonResponse, hint = ''): ServiceError {
  return new ServiceError('rejected', `${service} refused to ${what} (HTTP ${res.status})${said(res.body)}${hint}`, {
    status: res.status,
  });
}

/** What a forge's error body says: message, and the messages of its errors list (GitHub 422s). */
export function said(body: unknown): string {
  if (typeof body === 'string') return body ? `: ${body.slice(0, 300)}` : '';
  if (!body || typeof body !== 'object') return '';
  const b = body as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof b.message === 'string') parts.push(b.message);
  else if (Array.isArray(b.message)) parts.push(...b.message.filter((m): m is string => typeof m === 'string'));
  if (typeof b.error === 'string') parts.push(b.error);
  if (Array.isArray(b.errors)) {
    for (const e of b.errors) {
      if (typeof e === 'string') parts.push(e);
      else if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string')
        parts.push((e as { message: string }).message);
    }
  }
  return parts.length ? `: ${parts.join('; ').slice(0, 500)}` : '';
}

/** The URL of Link rel="next" (GitHub's pagination), if any. */
export function nextLink(link: string | string[] | undefined): string | undefined {
  const value = Array.isArray(link) ? link.join(',') : link;
  for (const part of (value ?? '').split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(part);
    if (m) return m[1];
  }
  return undefined;
}

export const MAX_PAGES = 20;
