// Credentials for forge APIs, from the same Secret keys as the git transports (Flux's names):
// a token (`password`, or `bearerToken`), or a GitHub App (`githubAppID`,
// `githubAppInstallationID` or `githubAppInstallationOwner`, `githubAppPrivateKey`).
//
// A GitHub App authenticates as itself with a JWT (RS256, iat 60 s in the past against clock
// drift, exp 9 minutes ahead: GitHub refuses more than 10) and trades it for an installation
// token that lives one hour. The token is kept and renewed five minutes before it expires,
// or at once when GitHub says 401 (revoked, or a clock that lied); concurrent callers share
// one renewal. The same token is git's password over HTTPS (user x-access-token).
import { createPrivateKey, createSign } from 'node:crypto';
import { callService, ServiceError } from '../../runtime/json-call.ts';
import type { ForgeAuth, ForgeCalls, ForgeProvider } from './types.ts';

/** A personal, project or access token, in the header form each forge expects. */
export function tokenAuth(provider: ForgeProvider, token: string, kind: 'token' | 'bearer' = 'token'): ForgeAuth {
  const headers = ((): Record<string, string> => {
    if (kind === 'bearer') return { authorization: `Bearer ${token}` };
    switch (provider) {
      case 'github':
        return { authorization: `Bearer ${token}` };
      case 'gitlab':
        return { 'private-token': token };
      case 'azure':
        return { authorization: `Basic ${Buffer.from(`:${token}`).toString('base64')}` };
      case 'gitea':
        return { authorization: `token ${token}` };
    }
  })();
  return { headers: () => Promise.resolve(headers) };
}

export interface GithubAppCredentials {
  appId: string;
  /** The installation; when absent it is looked up from the repository. */
  installationId?: string;
  privateKey: string;
  /** https://api.github.com or https://<host>/api/v3 */
  api: string;
  /** The repository, to find the installation when its id is not given. */
  owner: string;
  repository: string;
}

const RENEW_BEFORE_MS = 5 * 60_000;
const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

export class GithubAppAuth implements ForgeAuth {
  private readonly app: GithubAppCredentials;
  private readonly now: () => number;
  private readonly calls: ForgeCalls | undefined;
  private installationId: string | undefined;
  private current: { token: string; expiresAt: number } | undefined;
  private renewing: Promise<string> | undefined;

  constructor(app: GithubAppCredentials, options: { now?: () => number; calls?: ForgeCalls } = {}) {
    this.app = app;
    this.installationId = app.installationId;
    this.now = options.now ?? Date.now;
    this.calls = options.calls;
    try {
      createPrivateKey(app.privateKey);
    } catch (err) {
      throw new ServiceError('rejected', `the GitHub App private key is not a PEM private key: ${message(err)}`);
    }
  }

  /** The JWT that authenticates as the App. */
  jwt(): string {
    const now = Math.floor(this.now() / 1000);
    const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
    const claims = b64url(JSON.stringify({ iat: now - 60, exp: now + 540, iss: this.app.appId }));
    const signature = createSign('RSA-SHA256').update(`${head}.${claims}`).sign(this.app.privateKey);
    return `${head}.${claims}.${b64url(signature)}`;
  }

  /** The installation token, renewed when it is about to expire. */
  async token(signal?: AbortSignal): Promise<string> {
    if (this.current && this.current.expiresAt - this.now() > RENEW_BEFORE_MS) return this.current.token;
    this.renewing ??= this.renew(signal).finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  async headers(signal?: AbortSignal): Promise<Record<string, string>> {
    return { authorization: `Bearer ${await this.token(signal)}` };
  }

  expired(): boolean {
    this.current = undefined;
    return true;
  }

  private async renew(signal?: AbortSignal): Promise<string> {
    const id = this.installationId ?? (await this.findInstallation(signal));
    const res = await this.appCall('POST', `/app/installations/${encodeURIComponent(id)}/access_tokens`, signal);
    const body = (res.body ?? {}) as { token?: unknown; expires_at?: unknown };
    if (res.status !== 201 || typeof body.token !== 'string')
      throw new ServiceError(
        'rejected',
        `GitHub refused an installation token for App ${this.app.appId}, installation ${id} (HTTP ${res.status})`,
        { status: res.status },
      );
    const expiresAt = Date.parse(typeof body.expires_at === 'string' ? body.expires_at : '');
    // GitHub says one hour; a missing or odd expiry is taken as the shortest safe life.
    this.current = {
      token: body.token,
      expiresAt: Number.isFinite(expiresAt) ? expiresAt : this.now() + RENEW_BEFORE_MS * 2,
    };
    return body.token;
  }

  /** GET /repos/{owner}/{repo}/installation: the App's installation on the repository. */
  private async findInstallation(signal?: AbortSignal): Promise<string> {
    const path = `/repos/${encodeURIComponent(this.app.owner)}/${encodeURIComponent(this.app.repository)}/installation`;
    const res = await this.appCall('GET', path, signal);
    const id = (res.body as { id?: unknown } | undefined)?.id;
    if (res.status !== 200 || (typeof id !== 'number' && typeof id !== 'string'))
      throw new ServiceError(
        'rejected',
        `GitHub App ${this.app.appId} is not installed on ${this.app.owner}/${this.app.repository} (HTTP ${res.status})`,
        { status: res.status },
      );
    this.installationId = String(id);
    return this.installationId;
  }

  private async appCall(method: 'GET' | 'POST', path: string, signal?: AbortSignal) {
    if (this.calls) this.calls.count++;
    try {
      return await callService(`${this.app.api.replace(/\/+$/, '')}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.jwt()}`,
          accept: 'application/vnd.github+json',
          'x-github-api-version': '2022-11-28',
        },
        service: 'GitHub',
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (err instanceof ServiceError && err.status === 401)
        throw new ServiceError(
          'rejected',
          `GitHub refused the App's JWT (HTTP 401): check githubAppID and githubAppPrivateKey, and the clock`,
          { status: 401 },
        );
      throw err;
    }
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
