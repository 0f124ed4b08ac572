// An OCI distribution client: resolve a tag to its digest with HEAD, read manifests and
// indexes, list tags (following Link pagination), find referrers (the referrers API, or the
// referrers tag schema when a registry has none), and read image configs.
//
// Every request is bounded (time and body size), retried with backoff on 5xx and network
// errors, and on 429 retried after Retry-After when that is short, else failed as
// RATE_LIMITED for the caller to back off. RateLimit-* headers are kept and exported as
// metrics. Per registry: plain http (insecure) or a custom CA, a concurrency limit and a
// request budget that counts every request, token requests included.
import { createHash } from 'node:crypto';
import { Agent, type Dispatcher } from 'undici';
import { backoffDelay, sleep } from '../runtime/clock.ts';
import { counter, exponentialBuckets, gauge, histogram, type Registry } from '../runtime/metrics.ts';
import { Authorizer, pullScope } from './auth/authorizer.ts';
import type { CredentialSource } from './auth/credentials.ts';
import { DigestMismatchError, RegistryError } from './errors.ts';
import { BodyTooLarge, header, httpRequest, type HttpResponse } from '../runtime/http.ts';
import { parseRetryAfter } from '../runtime/json-call.ts';
import { RegistryLimiter } from './limiter.ts';
import {
  MANIFEST_ACCEPT,
  ManifestFormatError,
  MediaTypes,
  parseImageConfig,
  parseManifest,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  type Manifest,
} from './manifest.ts';
import { isValidDigest, manifestReference, type ImageReference } from './reference.ts';

/** Per-registry transport limits when the configuration file does not set them. */
export const REGISTRY_DEFAULTS = { maxConcurrency: 8 } as const;

/**
 * Requests per minute by default, for registries that document a limit; any other registry has
 * none unless configured (a private registry's capacity is its operator's to state). Docker Hub:
 * manifest HEADs do not count toward its pull limits (RateLimit-* headers are followed for the
 * GETs that do), but an abuse limit of the order of thousands of requests per minute per address
 * applies to everything.
 */
const DOCUMENTED_REQUESTS_PER_MINUTE: Readonly<Record<string, number>> = { 'docker.io': 1_000 };

export interface RegistryHostConfig {
  /** host[:port] as in image references. */
  host: string;
  /** Plain http instead of https. */
  insecure?: boolean;
  /** Extra CA certificates (PEM) trusted for this registry. */
  ca?: string;
  /** Requests in flight at once; default 8. */
  maxConcurrency?: number;
  /** Requests per minute, token requests included; default 600. */
  requestsPerMinute?: number;
}

export interface RegistryLimits {
  manifestBytes: number;
  configBytes: number;
  tagsBytes: number;
  errorBytes: number;
}

export interface RegistryClientOptions {
  hosts?: RegistryHostConfig[];
  userAgent?: string;
  timeoutMs?: number;
  retries?: number;
  /** Longest Retry-After honoured by waiting; longer ones fail as RATE_LIMITED. */
  maxRetryAfterMs?: number;
  limits?: Partial<RegistryLimits>;
  registry?: Registry;
  /** For tests: how to wait between retries. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<unknown>;
  now?: () => number;
}

export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

export interface FetchedManifest extends ManifestHead {
  manifest: Manifest;
}

export interface Referrers {
  descriptors: Descriptor[];
  /** True when the registry has no referrers API and the sha256-<hex> tag was read. */
  fromTagSchema: boolean;
  /** True when the registry applied the artifactType filter itself. */
  filtered: boolean;
}

export interface RateLimitState {
  limit?: number;
  remaining?: number;
  windowSeconds?: number;
  at: number;
}

type RequestKind = 'manifest' | 'tags' | 'referrers' | 'blob';

/** How long a registry found without the referrers API is believed to have none. */
const REFERRERS_API_RECHECK_MS = 60 * 60_000;

interface Exchange {
  kind: RequestKind;
  method: 'GET' | 'HEAD';
  registry: string;
  repository: string;
  path: string;
  accept?: string;
  limit: number;
  source: CredentialSource;
  signal?: AbortSignal;
}

const DEFAULT_LIMITS: RegistryLimits = {
  manifestBytes: 4 * 1024 * 1024,
  configBytes: 4 * 1024 * 1024,
  tagsBytes: 4 * 1024 * 1024,
  errorBytes: 64 * 1024,
};

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/;

export class RegistryClient {
  private readonly options: RegistryClientOptions;
  private readonly limits: RegistryLimits;
  private readonly hosts = new Map<string, RegistryHostConfig>();
  private readonly dispatchers = new Map<string, Dispatcher>();
  private readonly shared: Agent;
  private readonly limiters = new Map<string, RegistryLimiter>();
  private readonly rateLimits = new Map<string, RateLimitState>();
  /**
   * Registries that answered the referrers API with 404 — a registry that has the API never
   * does (OCI distribution spec 1.1) — and until when that is believed: their referrers are
   * read from the tag schema at once instead of costing a 404 each time. Looked at again after
   * an hour, for a registry upgraded since.
   */
  private readonly withoutReferrersApi = new Map<string, number>();
  readonly authorizer: Authorizer;
  private readonly metrics;

  constructor(options: RegistryClientOptions = {}) {
    this.options = options;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    for (const h of options.hosts ?? []) this.hosts.set(h.host, h);
    this.shared = this.agent({});
    const r = options.registry;
    this.metrics = r
      ? {
          requests: counter(r, {
            name: 'patchline_registry_requests_total',
            help: 'Requests to registries, by registry, kind (manifest, tags, referrers, blob, token, ping), method and status.',
            labelNames: ['registry', 'kind', 'method', 'code'] as const,
          }),
          latency: histogram(r, {
            name: 'patchline_registry_request_duration_seconds',
            help: 'Latency of registry requests.',
            labelNames: ['registry', 'kind'] as const,
            buckets: exponentialBuckets(0.005, 2, 12),
          }),
          remaining: gauge(r, {
            name: 'patchline_registry_ratelimit_remaining',
            help: 'RateLimit-Remaining last reported by the registry.',
            labelNames: ['registry'] as const,
          }),
          limit: gauge(r, {
            name: 'patchline_registry_ratelimit_limit',
            help: 'RateLimit-Limit last reported by the registry.',
            labelNames: ['registry'] as const,
          }),
          connections: counter(r, {
            name: 'patchline_registry_connections_total',
            help: 'Connections opened to registries (a keep-alive pool reuses them across checks).',
            labelNames: ['registry'] as const,
          }),
          digestFallbacks: counter(r, {
            name: 'patchline_registry_digest_fallbacks_total',
            help: 'HEAD answers without Docker-Content-Digest, resolved by reading the manifest.',
            labelNames: ['registry'] as const,
          }),
        }
      : undefined;
    this.authorizer = new Authorizer({
      dispatcherFor: (url) => this.dispatcherFor(url.host),
      allowsHttp: (url) => this.hostConfig(url.host).insecure === true || LOOPBACK.test(url.host),
      userAgent: options.userAgent ?? 'patchline',
      timeoutMs: options.timeoutMs ?? 30_000,
      ...(options.now ? { now: options.now } : {}),
      onTokenRequest: (registry, status) => {
        this.metrics?.requests.inc({ registry, kind: 'token', method: 'GET', code: String(status) });
        this.limiter(registry).count();
      },
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.shared.close(), ...[...this.dispatchers.values()].map((d) => d.close())]);
  }

  private hostConfig(host: string): RegistryHostConfig {
    return this.hosts.get(host) ?? { host };
  }

  private dispatcherFor(host: string): Dispatcher {
    const c = this.hostConfig(host);
    if (!c.ca) return this.shared;
    let d = this.dispatchers.get(host);
    if (!d) {
      d = this.agent({ ca: c.ca });
      this.dispatchers.set(host, d);
    }
    return d;
  }

  /**
   * A connection pool. Idle connections are kept 2 minutes (undici's default is 4 s): a
   * registry's references are checked once an interval (1 minute and up), so with a shorter
   * keep-alive every cycle would open its connections anew. A server's Keep-Alive hint still
   * wins, and a connection the server closed meanwhile costs one quick retry (TRANSPORT_BACKOFF).
   * HTTP/2 is used where TLS offers it.
   */
  private agent(tls: { ca?: string | Buffer }): Agent {
    const agent = new Agent({ keepAliveTimeout: 120_000, allowH2: true, connect: { ...tls, keepAlive: true } });
    agent.on('connect', (origin) => this.metrics?.connections.inc({ registry: origin.host }));
    return agent;
  }

  private limiter(registry: string): RegistryLimiter {
    let l = this.limiters.get(registry);
    if (!l) {
      const c = this.hostConfig(registry);
      l = new RegistryLimiter({
        maxConcurrency: c.maxConcurrency ?? REGISTRY_DEFAULTS.maxConcurrency,
        requestsPerMinute: this.budget(registry) ?? Infinity,
        ...(this.options.now ? { now: this.options.now } : {}),
      });
      this.limiters.set(registry, l);
    }
    return l;
  }

  private base(registry: string): string {
    // Docker Hub's API lives on another host than its name.
    const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
    return `${this.hostConfig(registry).insecure ? 'http' : 'https'}://${host}`;
  }

  /** The registry's request budget per minute (configured, or documented); undefined: none. */
  budget(registry: string): number | undefined {
    return this.hostConfig(registry).requestsPerMinute ?? DOCUMENTED_REQUESTS_PER_MINUTE[registry];
  }

  /** What the registry last said of its rate limit. */
  rateLimit(registry: string): RateLimitState | undefined {
    return this.rateLimits.get(registry);
  }

  /**
   * Caches one token for several repositories of a registry. When the registry's auth scheme
   * is not known yet, it is learned first from the API root (GET /v2/, as docker clients
   * ping), so that even a first round of checks needs no unauthenticated retries.
   */
  async prefetchTokens(
    registry: string,
    repositories: string[],
    source: CredentialSource,
    signal?: AbortSignal,
  ): Promise<void> {
    if (!this.authorizer.knows(registry)) {
      const release = await this.limiter(registry).acquire(signal);
      try {
        const res = await httpRequest(`${this.base(registry)}/v2/`, {
          method: 'GET',
          headers: { 'user-agent': this.options.userAgent ?? 'patchline' },
          dispatcher: this.dispatcherFor(registry),
          limit: this.limits.errorBytes,
          timeoutMs: this.options.timeoutMs ?? 30_000,
          ...(signal ? { signal } : {}),
        });
        this.metrics?.requests.inc({ registry, kind: 'ping', method: 'GET', code: String(res.status) });
        if (res.status === 401) this.authorizer.learn(registry, header(res.headers, 'www-authenticate'));
      } finally {
        release();
      }
    }
    await this.authorizer.prefetch(registry, repositories.map(pullScope), source, signal);
  }

  /** The digest a tag or digest resolves to, with one HEAD (the index digest for multi-platform images). */
  async head(ref: ImageReference, source: CredentialSource, signal?: AbortSignal): Promise<ManifestHead> {
    const res = await this.exchange({
      kind: 'manifest',
      method: 'HEAD',
      registry: ref.registry,
      repository: ref.repository,
      path: `/v2/${ref.repository}/manifests/${manifestReference(ref)}`,
      accept: MANIFEST_ACCEPT,
      limit: 0,
      source,
      ...(signal ? { signal } : {}),
    });
    const digest = header(res.headers, 'docker-content-digest');
    const mediaType = (header(res.headers, 'content-type') ?? '').split(';')[0]!.trim();
    const size = Number(header(res.headers, 'content-length') ?? NaN);
    if (digest && isValidDigest(digest)) return { digest, mediaType, size };
    // Registries built to old spec versions may omit the digest: read and hash the manifest.
    this.metrics?.digestFallbacks.inc({ registry: ref.registry });
    const fetched = await this.manifest(ref, source, signal);
    return { digest: fetched.digest, mediaType: fetched.mediaType, size: fetched.size };
  }

  async manifest(ref: ImageReference, source: CredentialSource, signal?: AbortSignal): Promise<FetchedManifest> {
    const res = await this.exchange({
      kind: 'manifest',
      method: 'GET',
      registry: ref.registry,
      repository: ref.repository,
      path: `/v2/${ref.repository}/manifests/${manifestReference(ref)}`,
      accept: MANIFEST_ACCEPT,
      limit: this.limits.manifestBytes,
      source,
      ...(signal ? { signal } : {}),
    });
    const claimed = header(res.headers, 'docker-content-digest');
    const expected = ref.digest ?? (claimed && isValidDigest(claimed) ? claimed : undefined);
    const served = expected ? contentDigest(algorithmOf(expected), res.body) : undefined;
    if (expected && served !== undefined && served !== expected) {
      throw new DigestMismatchError(ref.registry, `manifest of ${ref.repository}`, expected, served);
    }
    const contentType = header(res.headers, 'content-type');
    const manifest = this.parse(ref.registry, ref.repository, res.body, (b) => parseManifest(b, contentType));
    const digest = ref.digest ?? `sha256:${createHash('sha256').update(res.body).digest('hex')}`;
    return { digest, mediaType: manifest.mediaType, size: res.body.length, manifest };
  }

  /** Every tag of a repository, page by page (Link: <...>; rel="next"). */
  async tags(
    registry: string,
    repository: string,
    source: CredentialSource,
    options: { pageSize?: number; maxTags?: number; signal?: AbortSignal } = {},
  ): Promise<string[]> {
    const tags: string[] = [];
    const maxTags = options.maxTags ?? 20_000;
    let path: string | undefined = `/v2/${repository}/tags/list?n=${options.pageSize ?? 1000}`;
    for (let page = 0; path; page++) {
      if (page >= 200) throw new RegistryError('TOO_LARGE', registry, `${repository} has more than 200 pages of tags`);
      const res: HttpResponse = await this.exchange({
        kind: 'tags',
        method: 'GET',
        registry,
        repository,
        path,
        accept: 'application/json',
        limit: this.limits.tagsBytes,
        source,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const body = this.parse(registry, repository, res.body, (b) => {
        const tagList = (b as { tags?: unknown }).tags;
        if (
          tagList !== null &&
          tagList !== undefined &&
          (!Array.isArray(tagList) || !tagList.every((t) => typeof t === 'string'))
        ) {
          throw new ManifestFormatError('tags is not a list of strings');
        }
        return tagList ?? [];
      });
      tags.push(...body);
      if (tags.length > maxTags)
        throw new RegistryError('TOO_LARGE', registry, `${repository} has more than ${maxTags} tags`);
      path = nextLink(header(res.headers, 'link'), registry);
    }
    return tags;
  }

  /** The artifacts that refer to a digest (signatures, SBOMs, attestations). */
  async referrers(
    registry: string,
    repository: string,
    digest: string,
    source: CredentialSource,
    options: { artifactType?: string; signal?: AbortSignal } = {},
  ): Promise<Referrers> {
    const now = (this.options.now ?? Date.now)();
    if ((this.withoutReferrersApi.get(registry) ?? 0) > now)
      return this.referrersFromTag(registry, repository, digest, source, options);
    const query = options.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : '';
    const descriptors: Descriptor[] = [];
    let filtered = false;
    let path: string | undefined = `/v2/${repository}/referrers/${digest}${query}`;
    try {
      for (let page = 0; path; page++) {
        if (page >= 50)
          throw new RegistryError('TOO_LARGE', registry, `referrers of ${digest} span more than 50 pages`);
        const res: HttpResponse = await this.exchange({
          kind: 'referrers',
          method: 'GET',
          registry,
          repository,
          path,
          accept: MediaTypes.ociIndex,
          limit: this.limits.manifestBytes,
          source,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        const index = this.parse(registry, repository, res.body, (b) => parseManifest(b, MediaTypes.ociIndex));
        if (index.kind !== 'index')
          throw new RegistryError('INVALID_RESPONSE', registry, 'referrers answer is not an index');
        descriptors.push(...index.manifests);
        filtered =
          filtered ||
          (header(res.headers, 'oci-filters-applied') ?? '')
            .split(',')
            .map((s) => s.trim())
            .includes('artifactType');
        path = nextLink(header(res.headers, 'link'), registry);
      }
    } catch (err) {
      if (!(err instanceof RegistryError && err.code === 'NOT_FOUND')) throw err;
      this.withoutReferrersApi.set(registry, now + REFERRERS_API_RECHECK_MS);
      return this.referrersFromTag(registry, repository, digest, source, options);
    }
    const wanted = options.artifactType;
    return {
      descriptors: wanted && !filtered ? descriptors.filter((d) => d.artifactType === wanted) : descriptors,
      fromTagSchema: false,
      filtered,
    };
  }

  private async referrersFromTag(
    registry: string,
    repository: string,
    digest: string,
    source: CredentialSource,
    options: { artifactType?: string; signal?: AbortSignal },
  ): Promise<Referrers> {
    const tag = digest.replace(':', '-');
    try {
      const fetched = await this.manifest({ registry, repository, tag }, source, options.signal);
      if (fetched.manifest.kind !== 'index') return { descriptors: [], fromTagSchema: true, filtered: false };
      const all = fetched.manifest.manifests;
      const wanted = options.artifactType;
      return {
        descriptors: wanted ? all.filter((d) => d.artifactType === wanted) : all,
        fromTagSchema: true,
        filtered: false,
      };
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'NOT_FOUND')
        return { descriptors: [], fromTagSchema: true, filtered: false };
      throw err;
    }
  }

  /** The image config a manifest points to: created time, labels, platform. */
  async config(
    registry: string,
    repository: string,
    manifest: ImageManifest,
    source: CredentialSource,
    signal?: AbortSignal,
  ): Promise<ImageConfig> {
    const desc = manifest.config;
    if (desc.size > this.limits.configBytes) {
      throw new RegistryError(
        'TOO_LARGE',
        registry,
        `config of ${repository} is ${desc.size} bytes (limit ${this.limits.configBytes})`,
      );
    }
    const body = await this.blob(registry, repository, desc.digest, source, this.limits.configBytes, signal);
    return this.parse(registry, repository, body, parseImageConfig);
  }

  /** A blob, following redirects to storage (without our credentials), checked against its digest. */
  async blob(
    registry: string,
    repository: string,
    digest: string,
    source: CredentialSource,
    limit: number,
    signal?: AbortSignal,
  ): Promise<Buffer> {
    const res = await this.exchange({
      kind: 'blob',
      method: 'GET',
      registry,
      repository,
      path: `/v2/${repository}/blobs/${digest}`,
      limit,
      source,
      ...(signal ? { signal } : {}),
    });
    const served = contentDigest(algorithmOf(digest), res.body);
    if (served !== undefined && served !== digest) {
      throw new DigestMismatchError(registry, `blob of ${repository}`, digest, served);
    }
    return res.body;
  }

  private parse<T>(registry: string, repository: string, body: Buffer, parser: (json: unknown) => T): T {
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new RegistryError('INVALID_RESPONSE', registry, `${repository}: the registry sent malformed JSON`);
    }
    try {
      return parser(json);
    } catch (err) {
      throw new RegistryError(
        'INVALID_RESPONSE',
        registry,
        `${repository}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  /** One logical request: auth, limits, retries, redirects. */
  private async exchange(x: Exchange): Promise<HttpResponse> {
    const retries = this.options.retries ?? 3;
    const wait = this.options.sleep ?? ((ms: number, signal?: AbortSignal) => sleep(ms, signal));
    const scope = pullScope(x.repository);
    let authRetried = false;
    for (let attempt = 0; ; attempt++) {
      const canRetry = attempt < retries;
      const auth = await this.authorizer.header(x.registry, scope, x.source, x.signal);
      // An answer is judged outside the failure handler: the errors it throws are final.
      const next = await this.send(x, `${this.base(x.registry)}${x.path}`, auth).then(
        (res) => this.judgeAnswer(x, res, { auth, scope, attempt, canRetry, authRetried }),
        (err: unknown) => this.judgeFailure(x, err, attempt, canRetry),
      );
      if (next.kind === 'done') return next.res;
      if (next.kind === 'authenticate') {
        authRetried = true;
        attempt--; // authenticating is not a retry
        continue;
      }
      await wait(next.waitMs, x.signal);
    }
  }

  /** The request could not be sent or answered: retried with backoff, then UNAVAILABLE or TIMEOUT. */
  private judgeFailure(x: Exchange, err: unknown, attempt: number, canRetry: boolean): Next {
    if (err instanceof RegistryError || x.signal?.aborted) throw err;
    if (canRetry) return { kind: 'retry', waitMs: backoffDelay(attempt, TRANSPORT_BACKOFF) };
    const timeout = err instanceof Error && /Timeout/.test(err.name);
    throw new RegistryError(
      timeout ? 'TIMEOUT' : 'UNAVAILABLE',
      x.registry,
      `${x.method} ${x.repository} failed: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }

  /**
   * What an answer means: success; authenticate once (a 401 that taught a new challenge);
   * wait and retry (429 with a short Retry-After, 5xx); or an error classified by status.
   */
  private judgeAnswer(
    x: Exchange,
    res: HttpResponse,
    at: { auth: string | undefined; scope: string; attempt: number; canRetry: boolean; authRetried: boolean },
  ): Next {
    const status = res.status;
    if (status >= 200 && status < 300) return { kind: 'done', res };
    const why = registryMessage(res);
    if (status === 401) {
      if (at.auth) this.authorizer.invalidate(x.registry, x.source, at.scope);
      const learned = this.authorizer.learn(x.registry, header(res.headers, 'www-authenticate'));
      if (!at.authRetried && learned) return { kind: 'authenticate' };
      const how = at.auth ? ' with the credentials given' : ' anonymously';
      throw new RegistryError('UNAUTHORIZED', x.registry, `not authorized to read ${x.repository}${how}${why}`, {
        status,
      });
    }
    if (status === 403)
      throw new RegistryError('DENIED', x.registry, `access to ${x.repository} denied${why}`, { status });
    if (status === 404) {
      const what = `${x.kind} of ${x.repository} not found (${x.path.split('?')[0]})`;
      throw new RegistryError('NOT_FOUND', x.registry, `${what}${why}`, { status });
    }
    if (status === 429) {
      const retryAfterMs = parseRetryAfter(header(res.headers, 'retry-after'), (this.options.now ?? Date.now)());
      const short = retryAfterMs !== undefined && retryAfterMs <= (this.options.maxRetryAfterMs ?? 30_000);
      if (short && at.canRetry) return { kind: 'retry', waitMs: retryAfterMs };
      const after = retryAfterMs !== undefined ? `; retry after ${Math.ceil(retryAfterMs / 1000)} s` : '';
      throw new RegistryError('RATE_LIMITED', x.registry, `rate limited${after}`, {
        status,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      });
    }
    if (status >= 500) {
      if (at.canRetry) return { kind: 'retry', waitMs: backoffDelay(at.attempt, TRANSPORT_BACKOFF) };
      throw new RegistryError(
        'UNAVAILABLE',
        x.registry,
        `${x.method} ${x.repository} failed with HTTP ${status}${why}`,
        {
          status,
        },
      );
    }
    throw new RegistryError(
      'INVALID_RESPONSE',
      x.registry,
      `${x.method} ${x.repository}: unexpected HTTP ${status}${why}`,
      {
        status,
      },
    );
  }

  /** One HTTP request through the registry's limiter, following up to three redirects. */
  private async send(x: Exchange, url: string, auth: string | undefined): Promise<HttpResponse> {
    const limiter = this.limiter(x.registry);
    let target = new URL(url);
    const origin = target.origin;
    for (let hop = 0; hop <= 3; hop++) {
      const headers: Record<string, string> = { 'user-agent': this.options.userAgent ?? 'patchline' };
      if (x.accept) headers.accept = x.accept;
      // Credentials go to the registry only, never to the storage it redirects to.
      if (auth && target.origin === origin) headers.authorization = auth;
      const release = await limiter.acquire(x.signal);
      const started = performance.now();
      let res: HttpResponse;
      try {
        res = await httpRequest(target.toString(), {
          method: x.method,
          headers,
          dispatcher: this.dispatcherFor(target.host),
          limit: Math.max(x.limit, this.limits.errorBytes),
          timeoutMs: this.options.timeoutMs ?? 30_000,
          ...(x.signal ? { signal: x.signal } : {}),
        });
      } catch (err) {
        this.metrics?.requests.inc({ registry: x.registry, kind: x.kind, method: x.method, code: 'error' });
        if (err instanceof BodyTooLarge) {
          throw new RegistryError(
            'TOO_LARGE',
            x.registry,
            `${x.kind} of ${x.repository} is larger than ${x.limit} bytes`,
          );
        }
        throw err;
      } finally {
        release();
      }
      this.metrics?.requests.inc({ registry: x.registry, kind: x.kind, method: x.method, code: String(res.status) });
      this.metrics?.latency.observe({ registry: x.registry, kind: x.kind }, (performance.now() - started) / 1000);
      this.recordRateLimit(x.registry, res);
      if (res.status >= 200 && res.status < 300 && res.body.length > x.limit && x.method !== 'HEAD') {
        throw new RegistryError(
          'TOO_LARGE',
          x.registry,
          `${x.kind} of ${x.repository} is larger than ${x.limit} bytes`,
        );
      }
      const location = header(res.headers, 'location');
      if ([301, 302, 303, 307, 308].includes(res.status) && location) {
        target = new URL(location, target);
        if (target.protocol !== 'https:' && target.protocol !== 'http:') break;
        continue;
      }
      return res;
    }
    throw new RegistryError('INVALID_RESPONSE', x.registry, `too many redirects reading ${x.kind} of ${x.repository}`);
  }

  private recordRateLimit(registry: string, res: HttpResponse): void {
    const limit = parseRateLimitHeader(header(res.headers, 'ratelimit-limit'));
    const remaining = parseRateLimitHeader(header(res.headers, 'ratelimit-remaining'));
    if (!limit && !remaining) return;
    const state: RateLimitState = { at: (this.options.now ?? Date.now)() };
    if (limit) {
      state.limit = limit.value;
      if (limit.window !== undefined) state.windowSeconds = limit.window;
      this.metrics?.limit.set({ registry }, limit.value);
    }
    if (remaining) {
      state.remaining = remaining.value;
      this.metrics?.remaining.set({ registry }, remaining.value);
    }
    this.rateLimits.set(registry, state);
  }
}

/** Docker Hub's form: "100;w=21600" (a count and a window in seconds). */
export function parseRateLimitHeader(value: string | undefined): { value: number; window?: number } | undefined {
  if (!value) return undefined;
  const m = /^\s*(\d+)(?:\s*;\s*w=(\d+))?/.exec(value);
  if (!m) return undefined;
  return m[2] ? { value: Number(m[1]), window: Number(m[2]) } : { value: Number(m[1]) };
}

/** The path and query of a Link rel="next" on the same registry; absolute URLs elsewhere are refused. */
export function nextLink(link: string | undefined, registry: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(part);
    if (!m) continue;
    const url = new URL(m[1]!, 'http://registry.invalid');
    if (
      url.hostname !== 'registry.invalid' &&
      url.host !== registry &&
      !(registry === 'docker.io' && url.host === 'registry-1.docker.io')
    ) {
      throw new RegistryError('INVALID_RESPONSE', registry, `pagination link points to another host (${url.host})`);
    }
    return url.pathname + url.search;
  }
  return undefined;
}

/** The registry's own error code and message (registry-generated text, never our secrets). */
function registryMessage(res: HttpResponse): string {
  if (res.body.length === 0) return '';
  try {
    const body = JSON.parse(res.body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const e = body.errors?.[0];
    if (e?.code || e?.message) return ` (${[e.code, e.message].filter(Boolean).join(': ').slice(0, 300)})`;
  } catch {
    // not JSON
  }
  return '';
}

const algorithmOf = (digest: string): string => digest.slice(0, digest.indexOf(':'));

/** The digest of `body` with `algorithm` (sha256, sha512); undefined for an algorithm Node cannot compute. */
function contentDigest(algorithm: string, body: Buffer): string | undefined {
  if (algorithm !== 'sha256' && algorithm !== 'sha512') return undefined;
  return `${algorithm}:${createHash(algorithm).update(body).digest('hex')}`;
}

/** What to do after one attempt of an exchange. */
type Next = { kind: 'done'; res: HttpResponse } | { kind: 'retry'; waitMs: number } | { kind: 'authenticate' };

/**
 * Backoff between attempts after a transport failure or a 5xx: 50 ms, 100 ms, 200 ms. The
 * first retry is soon because the common 5xx is momentary — distribution answers 500 to a HEAD
 * of a tag it is writing, exactly when a push event sends us to look — and a registry that
 * stays down meets the watcher's own backoff (seconds to minutes) after the third attempt.
 */
const TRANSPORT_BACKOFF = { baseMs: 50, maxMs: 5_000, jitter: 0.2 };
