// Cloud identities of the operator, for the registries of their cloud:
//   azure  Azure Container Registry with an Entra ID token (workload identity, managed
//          identity, ...), exchanged at the registry for a refresh token;
//   aws    Amazon ECR, with GetAuthorizationToken (IRSA, EKS Pod Identity, instance role);
//   gcp    Google Artifact Registry and GCR, with an OAuth access token (Workload Identity).
// The SDKs are loaded only when a resource uses the provider. Credentials are cached until
// shortly before they expire. Nothing secret is logged or put in an error message.
import { ANONYMOUS, CredentialError, type CredentialSource, type RegistryCredential } from './credentials.ts';
import { formBody, header, httpRequest } from '../../runtime/http.ts';

const EXPIRY_MARGIN_MS = 5 * 60_000;

interface Cached {
  credential: RegistryCredential;
  expiresAt: number;
}

abstract class CachingSource implements CredentialSource {
  abstract readonly id: string;
  private readonly cache = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<Cached>>();
  protected readonly now: () => number;

  constructor(now?: () => number) {
    this.now = now ?? Date.now;
  }

  /** Whether this cloud serves the registry; other registries get no credential. */
  protected abstract serves(registry: string): boolean;
  protected abstract fetch(registry: string, signal?: AbortSignal): Promise<Cached>;

  async credentialFor(registry: string, signal?: AbortSignal): Promise<RegistryCredential> {
    if (!this.serves(registry)) return ANONYMOUS;
    const cached = this.cache.get(registry);
    if (cached && cached.expiresAt - EXPIRY_MARGIN_MS > this.now()) return cached.credential;
    let pending = this.inflight.get(registry);
    if (!pending) {
      pending = this.fetch(registry, signal).finally(() => this.inflight.delete(registry));
      this.inflight.set(registry, pending);
    }
    const fresh = await pending;
    this.cache.set(registry, fresh);
    return fresh.credential;
  }
}

/** The `exp` claim of a JWT, in milliseconds; undefined when it is not a readable JWT. */
export function jwtExpiry(token: string): number | undefined {
  const claims = jwtClaims(token);
  return typeof claims?.exp === 'number' ? claims.exp * 1000 : undefined;
}

function jwtClaims(token: string): Record<string, unknown> | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

// --- Azure -------------------------------------------------------------------------------

export interface AzureTokenCredential {
  getToken(scopes: string | string[]): Promise<{ token: string; expiresOnTimestamp: number } | null>;
}

const ACR_HOST = /^[a-z0-9]+\.azurecr\.(io|cn|us)$/i;
/** ACR's username for a refresh token. */
export const ACR_TOKEN_USER = '00000000-0000-0000-0000-000000000000';

export class AzureRegistryCredentials extends CachingSource {
  readonly id = 'azure:operator-identity';
  private credential: AzureTokenCredential | undefined;
  private readonly tenantId: string | undefined;
  private readonly scheme: string;

  constructor(
    options: {
      credential?: AzureTokenCredential;
      tenantId?: string;
      now?: () => number;
      scheme?: 'https' | 'http';
    } = {},
  ) {
    super(options.now);
    this.credential = options.credential;
    this.tenantId = options.tenantId ?? process.env.AZURE_TENANT_ID;
    this.scheme = options.scheme ?? 'https';
  }

  protected serves(registry: string): boolean {
    return ACR_HOST.test(registry);
  }

  private async entraCredential(): Promise<AzureTokenCredential> {
    if (!this.credential) {
      const { DefaultAzureCredential } = await import('@azure/identity');
      this.credential = new DefaultAzureCredential();
    }
    return this.credential;
  }

  protected async fetch(registry: string, signal?: AbortSignal): Promise<Cached> {
    let aad: { token: string; expiresOnTimestamp: number } | null;
    try {
      aad = await (await this.entraCredential()).getToken('https://management.azure.com/.default');
    } catch (err) {
      throw new CredentialError(
        `no Entra ID token for ${registry}: ${err instanceof Error ? err.message : String(err)}`,
        {
          cause: err,
        },
      );
    }
    if (!aad) throw new CredentialError(`no Entra ID token for ${registry}: the identity returned none`);
    const tenant = this.tenantId ?? (jwtClaims(aad.token)?.tid as string | undefined);
    const res = await httpRequest(`${this.scheme}://${registry}/oauth2/exchange`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: formBody({ grant_type: 'access_token', service: registry, tenant, access_token: aad.token }),
      limit: 256 * 1024,
      timeoutMs: 30_000,
      ...(signal ? { signal } : {}),
    });
    if (res.status !== 200) {
      throw new CredentialError(`${registry} refused the Entra ID token exchange (HTTP ${res.status})`);
    }
    let refresh: unknown;
    try {
      refresh = (JSON.parse(res.body.toString('utf8')) as { refresh_token?: unknown }).refresh_token;
    } catch {
      refresh = undefined;
    }
    if (typeof refresh !== 'string' || !refresh) {
      throw new CredentialError(
        `${registry} answered the token exchange without a refresh_token (${header(res.headers, 'content-type') ?? 'no content type'})`,
      );
    }
    return {
      credential: { kind: 'identityToken', token: refresh, username: ACR_TOKEN_USER },
      expiresAt: jwtExpiry(refresh) ?? this.now() + 60 * 60_000,
    };
  }
}

// --- AWS ---------------------------------------------------------------------------------

export const ECR_HOST = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;

export type EcrTokenFetcher = (region: string, registryId: string) => Promise<{ token: string; expiresAt: Date }>;

async function sdkEcrToken(region: string, registryId: string): Promise<{ token: string; expiresAt: Date }> {
  const { ECRClient, GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
  const client = new ECRClient({ region });
  try {
    const out = await client.send(new GetAuthorizationTokenCommand({ registryIds: [registryId] }));
    const data = out.authorizationData?.[0];
    if (!data?.authorizationToken) throw new Error('GetAuthorizationToken returned no token');
    return { token: data.authorizationToken, expiresAt: data.expiresAt ?? new Date(Date.now() + 12 * 3_600_000) };
  } finally {
    client.destroy();
  }
}

export class EcrCredentials extends CachingSource {
  readonly id = 'aws:operator-identity';
  private readonly fetchToken: EcrTokenFetcher;

  constructor(options: { fetchToken?: EcrTokenFetcher; now?: () => number } = {}) {
    super(options.now);
    this.fetchToken = options.fetchToken ?? sdkEcrToken;
  }

  protected serves(registry: string): boolean {
    return ECR_HOST.test(registry);
  }

  protected async fetch(registry: string): Promise<Cached> {
    const m = ECR_HOST.exec(registry)!;
    let result: { token: string; expiresAt: Date };
    try {
      result = await this.fetchToken(m[2]!, m[1]!);
    } catch (err) {
      const name = err instanceof Error ? err.name : 'Error';
      const message = err instanceof Error ? err.message : String(err);
      throw new CredentialError(`ECR GetAuthorizationToken for ${registry} failed: ${name}: ${message}`, {
        cause: err,
      });
    }
    const decoded = Buffer.from(result.token, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0)
      throw new CredentialError(`ECR returned an authorization token for ${registry} that is not user:password`);
    return {
      credential: { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) },
      expiresAt: result.expiresAt.getTime(),
    };
  }
}

// --- Google ------------------------------------------------------------------------------

const GOOGLE_HOST = /^((?:[a-z]+\.)?gcr\.io|[a-z0-9-]+-docker\.pkg\.dev)$/;
/** The username Google's registries expect with an OAuth access token. */
export const GOOGLE_TOKEN_USER = 'oauth2accesstoken';

export type GoogleTokenFetcher = () => Promise<{ token: string; expiresAt?: number }>;

let googleAuth: { getAccessToken(): Promise<string | null | undefined> } | undefined;

async function sdkGoogleToken(): Promise<{ token: string }> {
  if (!googleAuth) {
    const { GoogleAuth } = await import('google-auth-library');
    googleAuth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  }
  const token = await googleAuth.getAccessToken();
  if (!token) throw new Error('Application Default Credentials returned no access token');
  return { token };
}

export class GoogleCredentials extends CachingSource {
  readonly id = 'gcp:operator-identity';
  private readonly fetchToken: GoogleTokenFetcher;

  constructor(options: { fetchToken?: GoogleTokenFetcher; now?: () => number } = {}) {
    super(options.now);
    this.fetchToken = options.fetchToken ?? sdkGoogleToken;
  }

  protected serves(registry: string): boolean {
    return GOOGLE_HOST.test(registry);
  }

  protected async fetch(registry: string): Promise<Cached> {
    let result: { token: string; expiresAt?: number };
    try {
      result = await this.fetchToken();
    } catch (err) {
      throw new CredentialError(
        `no Google access token for ${registry}: ${err instanceof Error ? err.message : String(err)}`,
        {
          cause: err,
        },
      );
    }
    // Google access tokens live an hour; the library refreshes them, so ask again well before.
    return {
      credential: { kind: 'basic', username: GOOGLE_TOKEN_USER, password: result.token },
      expiresAt: result.expiresAt ?? this.now() + 15 * 60_000,
    };
  }
}
