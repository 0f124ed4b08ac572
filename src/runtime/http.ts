// One HTTP exchange with a size-limited body, on undici. Shared by the registry client, the
// token endpoints, the cloud credential exchanges and the build providers.
import { request, type Dispatcher } from 'undici';

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface HttpRequest {
  method: Dispatcher.HttpMethod;
  headers?: Record<string, string>;
  body?: string;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
  /** Largest body accepted; a larger one fails with BodyTooLarge. */
  limit: number;
  timeoutMs: number;
}

export class BodyTooLarge extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`response body larger than ${limit} bytes`);
    this.name = 'BodyTooLarge';
    this.limit = limit;
  }
}

export function header(headers: HttpResponse['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export async function httpRequest(url: string, req: HttpRequest): Promise<HttpResponse> {
  const signals = [AbortSignal.timeout(req.timeoutMs), ...(req.signal ? [req.signal] : [])];
  const response = await request(url, {
    method: req.method,
    headers: req.headers,
    body: req.body,
    dispatcher: req.dispatcher,
    signal: AbortSignal.any(signals),
    headersTimeout: req.timeoutMs,
    bodyTimeout: req.timeoutMs,
    // undici closes an HTTP/1.1 connection after every HEAD (against servers that send a body
    // with it); registries answer HEAD correctly, and a digest check is a HEAD, so without this
    // every check would open a new connection (and, over TLS, make a new handshake).
    ...(req.method === 'HEAD' ? { reset: false } : {}),
  });
  const declared = Number(header(response.headers, 'content-length') ?? NaN);
  if (req.method === 'HEAD') {
    await response.body.dump();
    return { status: response.statusCode, headers: response.headers, body: Buffer.alloc(0) };
  }
  if (declared > req.limit) {
    response.body.destroy();
    throw new BodyTooLarge(req.limit);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > req.limit) {
      response.body.destroy();
      throw new BodyTooLarge(req.limit);
    }
    chunks.push(buf);
  }
  return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) };
}

export function formBody(fields: Record<string, string | string[] | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) params.append(k, item);
  }
  return params.toString();
}

/** A cloud or product API that answered with an error status (its own message, when it gave one). */
export class ApiError extends Error {
  readonly status: number;
  constructor(service: string, status: number, said: string) {
    super(`${service} answered HTTP ${status}: ${said}`);
    this.name = 'ApiError';
    this.status = status;
  }
}

/**
 * One JSON API call (KMS keys, registry scanners): the parsed body of a 200, else ApiError with
 * what the service said (its error.message, or the start of the body).
 */
export async function jsonApi(
  url: string,
  service: string,
  req: {
    method?: 'GET' | 'POST';
    headers?: Record<string, string>;
    body?: unknown;
    limit?: number;
    signal?: AbortSignal;
  },
): Promise<unknown> {
  const res = await httpRequest(url, {
    method: req.method ?? 'GET',
    headers: {
      accept: 'application/json',
      ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...req.headers,
    },
    ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
    limit: req.limit ?? 64 * 1024,
    timeoutMs: 15_000,
    ...(req.signal ? { signal: req.signal } : {}),
  });
  let body: unknown;
  try {
    body = JSON.parse(res.body.toString('utf8'));
  } catch {
    body = undefined;
  }
  if (res.status !== 200) {
    const error = (body as { error?: { message?: unknown }; errors?: { message?: unknown }[] } | undefined) ?? {};
    const said = error.error?.message ?? error.errors?.[0]?.message;
    throw new ApiError(service, res.status, typeof said === 'string' ? said : res.body.toString('utf8').slice(0, 200));
  }
  if (body === undefined) throw new ApiError(service, res.status, 'the body is not JSON');
  return body;
}
