// Registry authorization, as Docker clients do it:
//   1. the first request goes out without credentials;
//   2. a 401 carries a challenge: Basic (send the credentials), or Bearer with a realm,
//      service and scope (get a token from the realm, then send it);
//   3. tokens are cached per registry, credential source and scope until they expire, and
//      each registry's challenge is remembered, so later requests authorize up front.
// A refresh token (docker "identitytoken", ACR) is exchanged with an OAuth2 POST; a user and
// password, or nothing, with a GET. Several scopes can share one token request.
import type { Dispatcher } from 'undici';
import { RegistryError } from '../errors.ts';
import { BodyTooLarge, formBody, header, httpRequest, type HttpResponse } from '../../runtime/http.ts';
import { parseChallenges } from './challenge.ts';
import type { CredentialSource, RegistryCredential } from './credentials.ts';

export interface AuthScheme {
  scheme: 'bearer' | 'basic';
  realm?: string;
  service?: string;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export interface AuthorizerOptions {
  /** The transport to a realm (the registry's own, or the default). */
  dispatcherFor(url: URL): Dispatcher | undefined;
  /** Whether plain http may carry credentials to this URL (an insecure registry's realm). */
  allowsHttp(url: URL): boolean;
  userAgent: string;
  timeoutMs: number;
  now?: () => number;
  /** Called for every token request, for metrics. */
  onTokenRequest?(registry: string, status: number | 'error'): void;
  maxEntries?: number;
}

const TOKEN_BODY_LIMIT = 256 * 1024;
const DEFAULT_TOKEN_TTL_S = 60; // the token spec's default

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

export class Authorizer {
  private readonly options: AuthorizerOptions;
  private readonly schemes = new Map<string, AuthScheme | 'none'>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(options: AuthorizerOptions) {
    this.options = options;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private key(registry: string, source: CredentialSource, scope: string): string {
    return `${registry}\u0000${source.id}\u0000${scope}`;
  }

  /** Records the registry's challenge from a 401; returns false when there was none to use. */
  learn(registry: string, wwwAuthenticate: string | undefined): boolean {
    for (const c of parseChallenges(wwwAuthenticate ?? '')) {
      if (c.scheme === 'bearer' && c.params.realm) {
        const scheme: AuthScheme = { scheme: 'bearer', realm: c.params.realm };
        if (c.params.service !== undefined) scheme.service = c.params.service;
        this.schemes.set(registry, scheme);
        return true;
      }
      if (c.scheme === 'basic') {
        this.schemes.set(registry, { scheme: 'basic' });
        return true;
      }
    }
    return false;
  }

  knows(registry: string): boolean {
    return this.schemes.has(registry);
  }

  /** Forgets a token the registry refused, so that the next request fetches a new one. */
  invalidate(registry: string, source: CredentialSource, scope: string): void {
    this.tokens.delete(this.key(registry, source, scope));
  }

  /**
   * The Authorization header for a request, or undefined when the registry's scheme is not
   * known yet (the request then goes out bare and its 401 teaches us).
   */
  async header(
    registry: string,
    scope: string,
    source: CredentialSource,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const scheme = this.schemes.get(registry);
    if (!scheme || scheme === 'none') return undefined;
    if (scheme.scheme === 'basic') {
      const c = await source.credentialFor(registry, signal);
      if (c.kind === 'basic') return basic(c.username, c.password);
      if (c.kind === 'identityToken') return basic(c.username ?? '<token>', c.token);
      return undefined;
    }
    return `Bearer ${await this.token(registry, scheme, [scope], source, signal)}`;
  }

  /**
   * Fetches one token for several repositories of a registry at once and caches it for each,
   * so that a round of checks costs one token request per registry instead of one per
   * repository. Scopes already cached are skipped. Only for bearer registries.
   */
  async prefetch(registry: string, scopes: string[], source: CredentialSource, signal?: AbortSignal): Promise<void> {
    const scheme = this.schemes.get(registry);
    if (!scheme || scheme === 'none' || scheme.scheme !== 'bearer') return;
    const missing = scopes.filter((s) => !this.fresh(this.tokens.get(this.key(registry, source, s))));
    for (let i = 0; i < missing.length; i += 20) {
      await this.token(registry, scheme, missing.slice(i, i + 20), source, signal);
    }
  }

  private fresh(t: CachedToken | undefined): t is CachedToken {
    return t !== undefined && t.expiresAt > this.now();
  }

  private async token(
    registry: string,
    scheme: AuthScheme,
    scopes: string[],
    source: CredentialSource,
    signal?: AbortSignal,
  ): Promise<string> {
    const first = scopes[0]!;
    const cached = this.tokens.get(this.key(registry, source, first));
    if (scopes.length === 1 && this.fresh(cached)) return cached.token;
    const flightKey = `${this.key(registry, source, '')}${scopes.join(' ')}`;
    let pending = this.inflight.get(flightKey);
    if (!pending) {
      pending = this.fetchToken(registry, scheme, scopes, source, signal).finally(() =>
        this.inflight.delete(flightKey),
      );
      this.inflight.set(flightKey, pending);
    }
    return pending;
  }

  /** Asks the token service for one token covering `scopes`, and caches it for each scope. */
  private async fetchToken(
    registry: string,
    scheme: AuthScheme,
    scopes: string[],
    source: CredentialSource,
    signal?: AbortSignal,
  ): Promise<string> {
    const realm = this.tokenRealm(registry, scheme);
    const credential = await source.credentialFor(registry, signal);
    const started = this.now();
    const res = await this.requestToken(registry, realm, scheme, scopes, credential, signal);
    this.options.onTokenRequest?.(registry, res.status);
    refuseTokenAnswer(registry, res.status, credential, scopes);
    const { token, ttlSeconds } = readTokenBody(registry, res);
    // Expire a little early: a token must not run out between being read and being used.
    const expiresAt = started + ttlSeconds * 1000 - Math.min(10_000, ttlSeconds * 100);
    for (const s of scopes) this.tokens.set(this.key(registry, source, s), { token, expiresAt });
    this.prune();
    return token;
  }

  /** The realm of the challenge, where credentials may be sent: https, or http where allowed. */
  private tokenRealm(registry: string, scheme: AuthScheme): URL {
    let realm: URL;
    try {
      realm = new URL(scheme.realm ?? '');
    } catch {
      throw new RegistryError('INVALID_RESPONSE', registry, `its token realm "${scheme.realm ?? ''}" is not a URL`);
    }
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && this.options.allowsHttp(realm))) {
      throw new RegistryError(
        'UNSUPPORTED',
        registry,
        `refusing to send credentials to a token realm over ${realm.protocol} (${realm.host})`,
      );
    }
    return realm;
  }

  /**
   * The token request: an OAuth2 refresh-token POST for identity tokens (ACR), else a GET
   * with the scopes in the query and basic credentials when there are any.
   */
  private async requestToken(
    registry: string,
    realm: URL,
    scheme: AuthScheme,
    scopes: string[],
    credential: RegistryCredential,
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent, accept: 'application/json' };
    const transport = {
      dispatcher: this.options.dispatcherFor(realm),
      limit: TOKEN_BODY_LIMIT,
      timeoutMs: this.options.timeoutMs,
      ...(signal ? { signal } : {}),
    };
    try {
      if (credential.kind === 'identityToken') {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        const body = formBody({
          grant_type: 'refresh_token',
          service: scheme.service,
          scope: scopes,
          refresh_token: credential.token,
          client_id: 'patchline',
        });
        return await httpRequest(realm.toString(), { method: 'POST', headers, body, ...transport });
      }
      if (scheme.service !== undefined) realm.searchParams.set('service', scheme.service);
      for (const s of scopes) realm.searchParams.append('scope', s);
      if (credential.kind === 'basic') headers.authorization = basic(credential.username, credential.password);
      return await httpRequest(realm.toString(), { method: 'GET', headers, ...transport });
    } catch (err) {
      this.options.onTokenRequest?.(registry, 'error');
      if (err instanceof BodyTooLarge)
        throw new RegistryError('TOO_LARGE', registry, `token response larger than ${err.limit} bytes`);
      const timeout = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'HeadersTimeoutError');
      throw new RegistryError(
        timeout ? 'TIMEOUT' : 'UNAVAILABLE',
        registry,
        `token service ${realm.host} unreachable: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }

  private prune(): void {
    const max = this.options.maxEntries ?? 10_000;
    if (this.tokens.size <= max) return;
    const now = this.now();
    for (const [k, t] of this.tokens) if (t.expiresAt <= now) this.tokens.delete(k);
    while (this.tokens.size > max) this.tokens.delete(this.tokens.keys().next().value as string);
  }
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

function describe(c: RegistryCredential): string {
  switch (c.kind) {
    case 'anonymous':
      return 'anonymous request';
    case 'basic':
      return `credentials of user "${c.username}"`;
    case 'identityToken':
      return 'refresh token';
  }
}

/** Throws the error an unsuccessful token answer means; returns on 200. */
function refuseTokenAnswer(registry: string, status: number, credential: RegistryCredential, scopes: string[]): void {
  if (status === 200) return;
  if (status === 401 || status === 403) {
    throw new RegistryError(
      'UNAUTHORIZED',
      registry,
      `the token service refused the ${describe(credential)} (HTTP ${status}) for ${scopes.join(' ')}`,
      { status },
    );
  }
  if (status === 429)
    throw new RegistryError('RATE_LIMITED', registry, 'the token service is rate limiting', { status });
  throw new RegistryError(
    status >= 500 ? 'UNAVAILABLE' : 'INVALID_RESPONSE',
    registry,
    `token service answered HTTP ${status}`,
    { status },
  );
}

/** The token and its lifetime from a token service's JSON (`token`, or OAuth2's `access_token`). */
function readTokenBody(registry: string, res: HttpResponse): { token: string; ttlSeconds: number } {
  let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    body = JSON.parse(res.body.toString('utf8')) as typeof body;
  } catch {
    throw new RegistryError(
      'INVALID_RESPONSE',
      registry,
      `token service sent no JSON (${header(res.headers, 'content-type') ?? 'no content type'})`,
    );
  }
  const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
  if (typeof token !== 'string' || !token)
    throw new RegistryError('INVALID_RESPONSE', registry, 'token service sent no token');
  const ttlSeconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_TTL_S;
  return { token, ttlSeconds };
}
