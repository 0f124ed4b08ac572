// The Kubernetes client: configuration (in-cluster or kubeconfig) and authentication from
// client-node, one shared keep-alive connection pool, and a small JSON request function for
// reads, writes, watches and custom resources.
//
// Why not client-node's typed APIs: client-node 2.x builds a new undici Agent for every
// request whose cluster has TLS settings (always, in-cluster), so each call opens a new
// connection; and every object Patchline writes is a server-side apply or a JSON/merge patch
// of a few fields, which a raw request states more plainly. Here every call goes through one
// keep-alive Agent.
import { existsSync } from 'node:fs';
import type { RequestOptions as HttpsRequestOptions } from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { Agent, request, type Dispatcher } from 'undici';
import { KubeApiError, parseStatusBody } from './errors.ts';
import { counter, histogram, exponentialBuckets, type Registry } from './metrics.ts';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface KubeConfigSource {
  /** Path of a kubeconfig file; when empty, in-cluster config or the default kubeconfig. */
  kubeconfig?: string;
  /** Context to use instead of the current one. */
  context?: string;
}

export function loadKubeConfig(source: KubeConfigSource): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (source.kubeconfig) {
    if (!existsSync(source.kubeconfig)) throw new Error(`kubeconfig ${source.kubeconfig} does not exist`);
    kc.loadFromFile(source.kubeconfig);
  } else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) {
    kc.loadFromCluster();
  } else {
    kc.loadFromDefault();
  }
  if (source.context) kc.setCurrentContext(source.context);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no cluster configured: set KUBECONFIG or run in a cluster');
  return kc;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** Whole-request timeout; 0 disables it (watches use bodyTimeout instead). */
  timeoutMs?: number;
}

export interface StreamOptions {
  query?: Record<string, string | number | boolean | undefined>;
  signal: AbortSignal;
  /** Longest silence between two chunks before the stream counts as dead. */
  bodyTimeoutMs: number;
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

export async function createKubeClient(kc: k8s.KubeConfig, options: KubeClientOptions = {}): Promise<KubeClient> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no cluster configured');
  const tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean; servername?: string } = {};
  const httpsOptions: HttpsRequestOptions = {};
  await kc.applyToHTTPSOptions(httpsOptions);
  if (httpsOptions.ca) tls.ca = Buffer.from(httpsOptions.ca as Buffer);
  if (httpsOptions.cert) tls.cert = Buffer.from(httpsOptions.cert as Buffer);
  if (httpsOptions.key) tls.key = Buffer.from(httpsOptions.key as Buffer);
  if (httpsOptions.rejectUnauthorized !== undefined) tls.rejectUnauthorized = httpsOptions.rejectUnauthorized;
  if (httpsOptions.servername) tls.servername = httpsOptions.servername;
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    throw new Error('the cluster server uses plain http; that is only allowed with insecure-skip-tls-verify');
  }
  const dispatcher = new Agent({ connect: { ...tls, keepAlive: true, keepAliveInitialDelay: 30_000 } });
  return new SharedPoolClient(kc, cluster.server, dispatcher, options);
}

class SharedPoolClient implements KubeClient {
  readonly server: string;
  private readonly kc: k8s.KubeConfig;
  private readonly dispatcher: Agent;
  private readonly userAgent: string;
  private readonly requestTimeoutMs: number;
  private readonly requests;
  private readonly latency;
  private cachedHeaders: { at: number; headers: Record<string, string> } | undefined;

  constructor(kc: k8s.KubeConfig, server: string, dispatcher: Agent, options: KubeClientOptions) {
    this.kc = kc;
    this.server = server.replace(/\/$/, '');
    this.dispatcher = dispatcher;
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

  /**
   * Authentication headers from the kubeconfig (token, token file, exec plugin...). Cached
   * for ten seconds: the in-cluster token file rotates hourly, and reading it on every
   * request is wasted work.
   */
  private async authHeaders(): Promise<Record<string, string>> {
    const now = Date.now();
    if (this.cachedHeaders && now - this.cachedHeaders.at < 10_000) return this.cachedHeaders.headers;
    const ctx = new k8s.RequestContext(this.server, k8s.HttpMethod.GET);
    await this.kc.applySecurityAuthentication(ctx);
    const headers = { ...ctx.getHeaders() };
    this.cachedHeaders = { at: now, headers };
    return headers;
  }

  private url(path: string, query?: RequestOptions['query']): string {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url.toString();
  }

  async requestJson<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = {
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
    const headers = { ...(await this.authHeaders()), accept: 'application/json', 'user-agent': this.userAgent };
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
