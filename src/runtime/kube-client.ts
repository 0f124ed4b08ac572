// The Kubernetes client: one shared keep-alive connection pool and a small JSON request
// function for reads, writes, watches and custom resources, on the connection kubeconfig.ts
// reads (in-cluster or a kubeconfig).
//
// Why not client-node's typed APIs: client-node 2.x builds a new undici Agent for every
// request whose cluster has TLS settings (always, in-cluster), so each call opens a new
// connection; and every object Patchline writes is a server-side apply or a JSON/merge patch
// of a few fields, which a raw request states more plainly. Here every call goes through one
// keep-alive Agent. client-node is still used — loaded on demand — for kubeconfig credential
// plugins (exec, auth-provider), which it runs well and which an in-cluster operator never needs.
import { readFile } from 'node:fs/promises';
import type { RequestOptions as HttpsRequestOptions } from 'node:https';
import { Agent, request, type Dispatcher } from 'undici';
import { KubeApiError, parseStatusBody } from './errors.ts';
import type { ClusterConnection, ClusterTls, Credentials } from './kubeconfig.ts';
import { counter, histogram, exponentialBuckets, type Registry } from './metrics.ts';

export { loadKubeConfig, type KubeConfigSource, type ClusterConnection } from './kubeconfig.ts';

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** Whole-request timeout; 0 disables it (watches use bodyTimeout instead). */
  timeoutMs?: number;
  /** Extra request headers (impersonation); they never replace authentication. */
  headers?: Record<string, string>;
}

export interface StreamOptions {
  query?: Record<string, string | number | boolean | undefined>;
  signal: AbortSignal;
  /** Longest silence between two chunks before the stream counts as dead. */
  bodyTimeoutMs: number;
  headers?: Record<string, string>;
}

export interface KubeClientOptions {
  userAgent?: string;
  /** Default timeout of non-streaming requests. */
  requestTimeoutMs?: number;
  registry?: Registry;
}

/** What the reconcilers and runtime need from a cluster; tests substitute fakes. */
export interface KubeClient {
  readonly server: string;
  requestJson<T>(method: string, path: string, options?: RequestOptions): Promise<T>;
  stream(path: string, options: StreamOptions): Promise<Dispatcher.ResponseData>;
  close(): Promise<void>;
}

export async function createKubeClient(
  connection: ClusterConnection,
  options: KubeClientOptions = {},
): Promise<KubeClient> {
  const { tls, headers } = await authenticationOf(connection);
  const dispatcher = new Agent({ connect: { ...tls, keepAlive: true, keepAliveInitialDelay: 30_000 } });
  return new SharedPoolClient(connection.server, dispatcher, headers, options);
}

/** Authentication headers of the next request; each source caches what it may. */
type HeaderSource = () => Promise<Record<string, string>>;

async function authenticationOf(connection: ClusterConnection): Promise<{ tls: ClusterTls; headers: HeaderSource }> {
  const credentials = connection.credentials;
  if (credentials.type === 'plugin') return pluginAuthentication(credentials.kubeconfig, connection.tls);
  return { tls: connection.tls, headers: staticHeaders(credentials) };
}

function staticHeaders(credentials: Exclude<Credentials, { type: 'plugin' }>): HeaderSource {
  switch (credentials.type) {
    case 'none':
      return () => Promise.resolve({});
    case 'token': {
      const headers = { authorization: `Bearer ${credentials.token}` };
      return () => Promise.resolve(headers);
    }
    case 'basic': {
      const basic = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
      const headers = { authorization: `Basic ${basic}` };
      return () => Promise.resolve(headers);
    }
    case 'tokenFile':
      return tokenFileHeaders(credentials.path);
  }
}

/**
 * A token file, read again after ten seconds: the in-cluster token rotates (hourly), and
 * reading it on every request is wasted work.
 */
function tokenFileHeaders(path: string): HeaderSource {
  let cached: { at: number; headers: Record<string, string> } | undefined;
  return async () => {
    const now = Date.now();
    if (cached && now - cached.at < 10_000) return cached.headers;
    const token = (await readFile(path, 'utf8')).trim();
    cached = { at: now, headers: { authorization: `Bearer ${token}` } };
    return cached.headers;
  };
}

/** A credential plugin, run by client-node (loaded only here), which may also supply a client certificate. */
async function pluginAuthentication(
  kubeconfig: string,
  tls: ClusterTls,
): Promise<{ tls: ClusterTls; headers: HeaderSource }> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  kc.loadFromString(kubeconfig);
  const httpsOptions: HttpsRequestOptions = {};
  await kc.applyToHTTPSOptions(httpsOptions);
  const merged: ClusterTls = { ...tls };
  if (httpsOptions.cert) merged.cert = Buffer.from(httpsOptions.cert as Buffer);
  if (httpsOptions.key) merged.key = Buffer.from(httpsOptions.key as Buffer);
  const server = kc.getCurrentCluster()?.server ?? '';
  let cached: { at: number; headers: Record<string, string> } | undefined;
  const headers: HeaderSource = async () => {
    const now = Date.now();
    if (cached && now - cached.at < 10_000) return cached.headers;
    const ctx = new k8s.RequestContext(server, k8s.HttpMethod.GET);
    await kc.applySecurityAuthentication(ctx);
    cached = { at: now, headers: { ...ctx.getHeaders() } };
    return cached.headers;
  };
  return { tls: merged, headers };
}

class SharedPoolClient implements KubeClient {
  readonly server: string;
  private readonly dispatcher: Agent;
  private readonly authHeaders: HeaderSource;
  private readonly userAgent: string;
  private readonly requestTimeoutMs: number;
  private readonly requests;
  private readonly latency;

  constructor(server: string, dispatcher: Agent, authHeaders: HeaderSource, options: KubeClientOptions) {
    this.server = server.replace(/\/$/, '');
    this.dispatcher = dispatcher;
    this.authHeaders = authHeaders;
    this.userAgent = options.userAgent ?? 'patchline';
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    const registry = options.registry;
    this.requests = registry
      ? counter(registry, {
          name: 'rest_client_requests_total',
          help: 'Requests to the Kubernetes API server, by method and status code.',
          labelNames: ['method', 'code'] as const,
        })
      : undefined;
    this.latency = registry
      ? histogram(registry, {
          name: 'rest_client_request_duration_seconds',
          help: 'Latency of requests to the Kubernetes API server (watches excluded).',
          labelNames: ['method'] as const,
          buckets: exponentialBuckets(0.005, 2, 12),
        })
      : undefined;
  }

  private observe(method: string, code: string, started: number): void {
    this.requests?.inc({ method, code });
    this.latency?.observe({ method }, (performance.now() - started) / 1000);
  }

  private url(path: string, query?: RequestOptions['query']): string {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url.toString();
  }

  async requestJson<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = {
      ...options.headers,
      ...(await this.authHeaders()),
      accept: 'application/json',
      'user-agent': this.userAgent,
    };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = options.contentType ?? 'application/json';
    }
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    const signals = [options.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const started = performance.now();
    let response: Dispatcher.ResponseData;
    try {
      response = await request(this.url(path, options.query), {
        method: method,
        headers,
        body,
        dispatcher: this.dispatcher,
        signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
      });
    } catch (err) {
      this.observe(method, 'error', started);
      throw err;
    }
    this.observe(method, String(response.statusCode), started);
    const text = await response.body.text();
    if (response.statusCode >= 400) {
      throw KubeApiError.fromStatus(response.statusCode, parseStatusBody(text), `${method} ${path} failed`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async stream(path: string, options: StreamOptions): Promise<Dispatcher.ResponseData> {
    const headers = {
      ...options.headers,
      ...(await this.authHeaders()),
      accept: 'application/json',
      'user-agent': this.userAgent,
    };
    const response = await request(this.url(path, options.query), {
      method: 'GET',
      headers,
      dispatcher: this.dispatcher,
      signal: options.signal,
      headersTimeout: 30_000,
      bodyTimeout: options.bodyTimeoutMs,
    });
    this.requests?.inc({ method: 'WATCH', code: String(response.statusCode) });
    if (response.statusCode >= 400) {
      const text = await response.body.text();
      throw KubeApiError.fromStatus(response.statusCode, parseStatusBody(text), `watch ${path} failed`);
    }
    return response;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
