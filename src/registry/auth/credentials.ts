// Registry credentials and where they come from.
//
// A CredentialSource answers "which credential for this registry?". Its `id` names the
// source without revealing anything secret (a Secret's namespace/name and version, a cloud
// identity); the token cache and the digest watcher key on it, so that resources using
// the same credentials share tokens and checks, and resources with different credentials
// never share what one of them was allowed to see.

export type RegistryCredential =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token (docker's "identitytoken"), exchanged at the token endpoint. */
  | { kind: 'identityToken'; token: string; username?: string };

export const ANONYMOUS: RegistryCredential = Object.freeze({ kind: 'anonymous' });

export interface CredentialSource {
  readonly id: string;
  credentialFor(registry: string, signal?: AbortSignal): Promise<RegistryCredential>;
}

export class CredentialError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CredentialError';
  }
}

export const anonymousSource: CredentialSource = {
  id: 'anonymous',
  credentialFor: () => Promise.resolve(ANONYMOUS),
};

const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/**
 * The registry (and optional path prefix) a dockerconfigjson key names: without scheme and
 * trailing slash, Docker Hub's many spellings made docker.io, "/v1" and "/v2" dropped.
 */
export function normalizeAuthKey(key: string): string {
  let k = key
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/+$/, '');
  k = k.replace(/\/v[12]$/, '');
  const [host = '', ...path] = k.split('/');
  const h = DOCKER_HUB_ALIASES.has(host.toLowerCase()) ? 'docker.io' : host.toLowerCase();
  return [h, ...path].join('/');
}

interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

/** Parses .dockerconfigjson ({"auths": {...}}) or the legacy .dockercfg ({...}). */
export function parseDockerConfig(json: string): Map<string, RegistryCredential> {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    throw new CredentialError('the docker config is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null) throw new CredentialError('the docker config is not a JSON object');
  const auths = ('auths' in doc ? doc.auths : doc) as Record<string, DockerAuthEntry> | null;
  if (typeof auths !== 'object' || auths === null) throw new CredentialError('the docker config has no "auths" object');
  const out = new Map<string, RegistryCredential>();
  for (const [key, entry] of Object.entries(auths)) {
    if (typeof entry !== 'object' || entry === null) continue;
    let username = entry.username;
    let password = entry.password;
    if (entry.auth && (!username || !password)) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0)
        throw new CredentialError(`the "auth" entry for ${normalizeAuthKey(key)} is not base64 of user:password`);
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
    const name = normalizeAuthKey(key);
    if (entry.identitytoken)
      out.set(name, { kind: 'identityToken', token: entry.identitytoken, ...(username ? { username } : {}) });
    else if (username !== undefined && password !== undefined) out.set(name, { kind: 'basic', username, password });
  }
  return out;
}

/**
 * The credential for a registry (and repository) from a parsed docker config, matching as
 * the kubelet does: an exact host, a host with a path prefix of the repository (the longest
 * wins), or a wildcard host (*.azurecr.io).
 */
export function lookupCredential(
  entries: Map<string, RegistryCredential>,
  registry: string,
  repository?: string,
): RegistryCredential | undefined {
  const host = normalizeAuthKey(registry);
  const target = repository ? `${host}/${repository}` : host;
  let best: { length: number; credential: RegistryCredential } | undefined;
  for (const [key, credential] of entries) {
    const [keyHost = '', ...keyPath] = key.split('/');
    const hostMatches =
      keyHost === host ||
      (keyHost.startsWith('*.') &&
        host.endsWith(keyHost.slice(1)) &&
        !host.slice(0, -keyHost.length + 1).includes('.'));
    if (!hostMatches) continue;
    const prefix = keyPath.join('/');
    if (prefix && !(target === `${host}/${prefix}` || target.startsWith(`${host}/${prefix}/`))) continue;
    const length = prefix.length + (keyHost.startsWith('*.') ? 0 : 1);
    if (!best || length > best.length) best = { length, credential };
  }
  return best?.credential;
}

/** Credentials from docker config entries held in memory. */
export class StaticCredentials implements CredentialSource {
  readonly id: string;
  private readonly entries: Map<string, RegistryCredential>;

  constructor(id: string, entries: Map<string, RegistryCredential>) {
    this.id = id;
    this.entries = entries;
  }

  credentialFor(registry: string): Promise<RegistryCredential> {
    return Promise.resolve(lookupCredential(this.entries, registry) ?? ANONYMOUS);
  }
}

/** The first source that has a non-anonymous credential for the registry. */
export class ChainedCredentials implements CredentialSource {
  readonly id: string;
  private readonly sources: readonly CredentialSource[];

  constructor(sources: readonly CredentialSource[]) {
    this.sources = sources;
    this.id = sources.map((s) => s.id).join('+') || 'anonymous';
  }

  async credentialFor(registry: string, signal?: AbortSignal): Promise<RegistryCredential> {
    for (const source of this.sources) {
      const c = await source.credentialFor(registry, signal);
      if (c.kind !== 'anonymous') return c;
    }
    return ANONYMOUS;
  }
}
