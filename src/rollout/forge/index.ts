// A forge client for a GitWriteBack's pull requests: where the API is (from the repository URL
// unless spec.pullRequest.apiURL says), which repository, and how to authenticate (the
// write-back's credentials Secret).
import { createHash } from 'node:crypto';
import { ServiceError } from '../../runtime/json-call.ts';
import { GithubAppAuth, tokenAuth } from './auth.ts';
import { AzureReposForge } from './azure.ts';
import { GiteaForge } from './gitea.ts';
import { GithubForge } from './github.ts';
import { GitlabForge } from './gitlab.ts';
import type { Forge, ForgeAuth, ForgeCalls, ForgeProvider } from './types.ts';

export interface ForgeSpec {
  provider: ForgeProvider;
  /** The API's base URL; derived from the repository URL when absent. */
  apiURL?: string;
  /** owner/name (GitHub, Gitea), group/…/project (GitLab), repository name (Azure DevOps); from the URL when absent. */
  repository?: string;
}

interface Location {
  scheme: 'https' | 'http';
  host: string;
  /** The repository's path, without a leading slash or a trailing .git. */
  path: string;
}

/** Host and path of https://, http://, ssh:// and scp-like (user@host:path) git URLs. */
export function locate(url: string): Location {
  const scp = /^[\w.-]+@([\w.-]+):(?!\/\/)(.+)$/.exec(url);
  if (scp) return { scheme: 'https', host: scp[1]!, path: trimPath(scp[2]!) };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ServiceError('rejected', `cannot tell the forge repository of ${url}`);
  }
  const scheme = u.protocol === 'http:' ? 'http' : 'https';
  return { scheme, host: u.protocol === 'ssh:' ? u.hostname : u.host, path: trimPath(decodeURIComponent(u.pathname)) };
}

function trimPath(p: string): string {
  return p
    .replace(/^\/+/, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/, '');
}

function ownerAndName(path: string, provider: string): { owner: string; name: string } {
  const parts = path.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1])
    throw new ServiceError(
      'rejected',
      `${provider} repositories are owner/name; "${path}" is not (set spec.pullRequest.repository)`,
    );
  return { owner: parts[0], name: parts[1] };
}

/** Azure DevOps: organization, project and repository from any of its URL forms. */
function azureLocation(loc: Location): { api: string; repository: string } {
  const parts = loc.path.split('/');
  if (loc.host === 'ssh.dev.azure.com' && parts[0] === 'v3' && parts.length === 4)
    return { api: `https://dev.azure.com/${parts[1]}/${parts[2]}`, repository: parts[3]! };
  const git = parts.indexOf('_git');
  if (git >= 1 && parts[git + 1]) {
    const host = loc.host.replace(/^[^@]+@/, '');
    return { api: `${loc.scheme}://${host}/${parts.slice(0, git).join('/')}`, repository: parts[git + 1]! };
  }
  throw new ServiceError('rejected', `not an Azure DevOps repository URL: ${loc.host}/${loc.path}`);
}

export interface ForgeCredentials {
  token?: string;
  bearerToken?: string;
  githubApp?: { appId: string; installationId?: string; installationOwner?: string; privateKey: string };
}

/** The Secret's keys, as the git transports read them (Flux's names). */
export function forgeCredentials(data: Readonly<Record<string, string>> | undefined): ForgeCredentials {
  if (!data) return {};
  if (data.githubAppID && data.githubAppPrivateKey) {
    return {
      githubApp: {
        appId: data.githubAppID,
        privateKey: data.githubAppPrivateKey,
        ...(data.githubAppInstallationID ? { installationId: data.githubAppInstallationID } : {}),
        ...(data.githubAppInstallationOwner ? { installationOwner: data.githubAppInstallationOwner } : {}),
      },
    };
  }
  if (data.bearerToken) return { bearerToken: data.bearerToken };
  if (data.password) return { token: data.password };
  return {};
}

/**
 * GitHub App authentications live across reconciles (their token lives an hour), one per App,
 * installation, key and API; bounded so that edited Secrets do not pile up.
 */
const appAuths = new Map<string, GithubAppAuth>();
const MAX_APP_AUTHS = 64;

export interface ForgeConnection {
  forge: Forge;
  auth: ForgeAuth;
  /** A GitHub App's installation token source, which git over HTTPS uses too. */
  app?: GithubAppAuth;
}

export function connectForge(
  spec: ForgeSpec,
  repositoryUrl: string,
  credentials: ForgeCredentials,
  calls?: ForgeCalls,
): ForgeConnection {
  const loc = locate(repositoryUrl);
  const path = spec.repository ?? loc.path;
  const base = `${loc.scheme}://${loc.host}`;
  switch (spec.provider) {
    case 'github': {
      const { owner, name } = ownerAndName(path, 'GitHub');
      const api = spec.apiURL ?? (loc.host === 'github.com' ? 'https://api.github.com' : `${base}/api/v3`);
      if (credentials.githubApp) {
        const app = githubApp(credentials.githubApp, api, owner, name, calls);
        return { forge: new GithubForge({ owner, name, api }, app, calls), auth: app, app };
      }
      const auth = tokenFor('github', credentials);
      return { forge: new GithubForge({ owner, name, api }, auth, calls), auth };
    }
    case 'gitlab': {
      const auth = tokenFor('gitlab', credentials);
      return { forge: new GitlabForge({ path, api: spec.apiURL ?? `${base}/api/v4` }, auth, calls), auth };
    }
    case 'azure': {
      const where = azureLocation(loc);
      const auth = tokenFor('azure', credentials);
      const repository = spec.repository ?? where.repository;
      return { forge: new AzureReposForge({ api: spec.apiURL ?? where.api, repository }, auth, calls), auth };
    }
    case 'gitea': {
      const { owner, name } = ownerAndName(path, 'Gitea');
      const auth = tokenFor('gitea', credentials);
      return { forge: new GiteaForge({ owner, name, api: spec.apiURL ?? `${base}/api/v1` }, auth, calls), auth };
    }
  }
}

/** Why the forge's repository cannot be told from the spec and URL; undefined when it can. */
export function forgeLocationProblem(spec: ForgeSpec, repositoryUrl: string): string | undefined {
  try {
    connectForge(spec, repositoryUrl, { token: 'check' });
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

function tokenFor(provider: ForgeProvider, credentials: ForgeCredentials): ForgeAuth {
  if (credentials.bearerToken) return tokenAuth(provider, credentials.bearerToken, 'bearer');
  if (credentials.token) return tokenAuth(provider, credentials.token);
  throw new ServiceError(
    'rejected',
    `pull requests on ${provider} need a token in the credentials Secret (key "password" or "bearerToken")${provider === 'github' ? ', or a GitHub App (githubAppID, githubAppInstallationID, githubAppPrivateKey)' : ''}`,
  );
}

function githubApp(
  app: NonNullable<ForgeCredentials['githubApp']>,
  api: string,
  owner: string,
  repository: string,
  calls?: ForgeCalls,
): GithubAppAuth {
  const key = createHash('sha256')
    .update([app.appId, app.installationId ?? app.installationOwner ?? owner, app.privateKey, api].join('\0'))
    .digest('hex');
  let auth = appAuths.get(key);
  if (!auth) {
    auth = new GithubAppAuth(
      {
        appId: app.appId,
        privateKey: app.privateKey,
        api,
        owner: app.installationOwner ?? owner,
        repository,
        ...(app.installationId ? { installationId: app.installationId } : {}),
      },
      calls ? { calls } : {},
    );
    if (appAuths.size >= MAX_APP_AUTHS) appAuths.delete(appAuths.keys().next().value!);
    appAuths.set(key, auth);
  }
  return auth;
}
