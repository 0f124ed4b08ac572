// Where the API server is and how to reach it: in-cluster configuration or a kubeconfig.
//
// Read here rather than with client-node's KubeConfig because importing client-node loads its
// whole generated API (every model class of every group): about 75 MiB of RSS and half a
// second at start, for an operator that uses none of it. What a running operator needs — the
// in-cluster ServiceAccount, or a kubeconfig with certificates, a token, a token file or basic
// auth — is a few dozen lines. Credential plugins (`exec`, `auth-provider`) are client-node's
// job still: for those the kube client loads it on demand (see kube-client.ts), so only a
// developer's kubeconfig that needs one pays for it.
//
// Selection follows controller-runtime's GetConfig: the --kubeconfig file, then $KUBECONFIG
// (a list, merged: the first file to name a cluster, user or context wins), then in-cluster,
// then ~/.kube/config. Relative paths are read from the directory of the file naming them,
// as kubectl does.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';

export interface KubeConfigSource {
  /** Path of a kubeconfig file; when empty, $KUBECONFIG, in-cluster config or ~/.kube/config. */
  kubeconfig?: string;
  /** Context to use instead of the current one. */
  context?: string;
}

export interface ClusterTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

/** How requests authenticate. `plugin`: a credential plugin client-node runs (exec, auth-provider). */
export type Credentials =
  | { type: 'none' }
  | { type: 'token'; token: string }
  | { type: 'tokenFile'; path: string }
  | { type: 'basic'; username: string; password: string }
  | { type: 'plugin'; kubeconfig: string };

export interface ClusterConnection {
  /** The API server's URL, without a trailing slash. */
  server: string;
  tls: ClusterTls;
  credentials: Credentials;
  /** Where this came from, for messages: a kubeconfig path and context, or "in-cluster". */
  origin: string;
  /** The context's namespace (kubeconfig), or the pod's (in-cluster); absent when neither says. */
  namespace?: string;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
}

interface Environment {
  env: NodeJS.ProcessEnv;
  home: string;
  serviceAccountDir: string;
}

const DEFAULT_ENVIRONMENT = (): Environment => ({
  env: process.env,
  home: homedir(),
  serviceAccountDir: SERVICE_ACCOUNT_DIR,
});

export function loadKubeConfig(
  source: KubeConfigSource,
  environment: Environment = DEFAULT_ENVIRONMENT(),
): ClusterConnection {
  const connection = selectConnection(source, environment);
  if (connection.server.startsWith('http:') && connection.tls.rejectUnauthorized) {
    throw new KubeConfigError(
      `${connection.origin}: the cluster server uses plain http; that is only allowed with insecure-skip-tls-verify`,
    );
  }
  return connection;
}

function selectConnection(source: KubeConfigSource, environment: Environment): ClusterConnection {
  if (source.kubeconfig) {
    if (!existsSync(source.kubeconfig)) throw new KubeConfigError(`kubeconfig ${source.kubeconfig} does not exist`);
    return fromKubeconfig([source.kubeconfig], source.context);
  }
  const listed = (environment.env.KUBECONFIG ?? '').split(delimiter).filter((p) => p !== '' && existsSync(p));
  if (listed.length > 0) return fromKubeconfig(listed, source.context);
  const host = environment.env.KUBERNETES_SERVICE_HOST;
  if (host && existsSync(join(environment.serviceAccountDir, 'token'))) {
    return inCluster(host, environment.env.KUBERNETES_SERVICE_PORT ?? '443', environment.serviceAccountDir);
  }
  const home = join(environment.home, '.kube', 'config');
  if (existsSync(home)) return fromKubeconfig([home], source.context);
  throw new KubeConfigError('no cluster configured: set KUBECONFIG or --kubeconfig, or run in a cluster');
}

function inCluster(host: string, port: string, dir: string): ClusterConnection {
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const caFile = join(dir, 'ca.crt');
  return {
    server: `https://${hostPart}:${port}`,
    tls: { rejectUnauthorized: true, ...(existsSync(caFile) ? { ca: readFileSync(caFile) } : {}) },
    // The projected token rotates: read from the file, never kept for long.
    credentials: { type: 'tokenFile', path: join(dir, 'token') },
    origin: 'in-cluster',
  };
}

type Raw = Record<string, unknown>;

/** A named entry of a kubeconfig list, with the directory its relative paths are read from. */
interface Named {
  body: Raw;
  dir: string;
}

interface Merged {
  clusters: Map<string, Named>;
  users: Map<string, Named>;
  contexts: Map<string, Named>;
  currentContext: string;
}

function fromKubeconfig(files: string[], contextOverride: string | undefined): ClusterConnection {
  const merged = mergeFiles(files);
  const contextName = contextOverride || merged.currentContext;
  const where = files.join(delimiter);
  if (!contextName) throw new KubeConfigError(`${where}: no current-context and no --context given`);
  const context = merged.contexts.get(contextName);
  if (!context) throw new KubeConfigError(`${where}: context "${contextName}" not found`);
  const clusterName = stringField(context.body, 'cluster', where);
  const cluster = merged.clusters.get(clusterName ?? '');
  if (!cluster)
    throw new KubeConfigError(`${where}: cluster "${clusterName ?? ''}" of context "${contextName}" not found`);
  const userName = stringField(context.body, 'user', where);
  const user = userName ? merged.users.get(userName) : undefined;
  if (userName && !user)
    throw new KubeConfigError(`${where}: user "${userName}" of context "${contextName}" not found`);
  const origin = `kubeconfig ${where}, context ${contextName}`;
  const server = stringField(cluster.body, 'server', origin);
  if (!server) throw new KubeConfigError(`${origin}: the cluster has no server`);
  const userBody = user ? withAbsolutePaths(user) : {};
  return {
    server: server.replace(/\/+$/, ''),
    tls: clusterTls(cluster, user, origin),
    credentials: credentialsOf(userBody, { cluster: withAbsolutePaths(cluster), user: userBody }, origin),
    origin,
    ...(stringField(context.body, 'namespace', where)
      ? { namespace: stringField(context.body, 'namespace', where)! }
      : {}),
  };
}

function mergeFiles(files: string[]): Merged {
  const merged: Merged = { clusters: new Map(), users: new Map(), contexts: new Map(), currentContext: '' };
  for (const file of files) {
    let doc: unknown;
    try {
      doc = parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new KubeConfigError(`kubeconfig ${file} cannot be read: ${(err as Error).message}`);
    }
    if (doc === null || doc === undefined) continue;
    if (!isRecord(doc)) throw new KubeConfigError(`kubeconfig ${file} is not a mapping`);
    const dir = dirname(file);
    addNamed(merged.clusters, doc.clusters, 'cluster', dir, file);
    addNamed(merged.users, doc.users, 'user', dir, file);
    addNamed(merged.contexts, doc.contexts, 'context', dir, file);
    const current = doc['current-context'];
    if (!merged.currentContext && typeof current === 'string') merged.currentContext = current;
  }
  return merged;
}

function addNamed(into: Map<string, Named>, list: unknown, key: string, dir: string, file: string): void {
  if (list === undefined || list === null) return;
  if (!Array.isArray(list)) throw new KubeConfigError(`kubeconfig ${file}: ${key}s must be a list`);
  for (const entry of list) {
    if (!isRecord(entry) || typeof entry.name !== 'string') {
      throw new KubeConfigError(`kubeconfig ${file}: every entry of ${key}s needs a name`);
    }
    const body = entry[key] ?? {};
    if (!isRecord(body)) throw new KubeConfigError(`kubeconfig ${file}: ${key} "${entry.name}" must be a mapping`);
    if (!into.has(entry.name)) into.set(entry.name, { body, dir });
  }
}

// The fields holding paths, which kubectl reads relative to the file that names them.
const PATH_FIELDS = ['certificate-authority', 'client-certificate', 'client-key', 'tokenFile'];

function withAbsolutePaths({ body, dir }: Named): Raw {
  const out: Raw = { ...body };
  for (const field of PATH_FIELDS) {
    const value = out[field];
    if (typeof value === 'string' && value !== '' && !isAbsolute(value)) out[field] = join(dir, value);
  }
  return out;
}

function clusterTls(cluster: Named, user: Named | undefined, origin: string): ClusterTls {
  const c = withAbsolutePaths(cluster);
  const u = user ? withAbsolutePaths(user) : {};
  const skip = c['insecure-skip-tls-verify'] === true;
  const servername = stringField(c, 'tls-server-name', origin);
  const ca = material(c, 'certificate-authority', origin);
  const cert = material(u, 'client-certificate', origin);
  const key = material(u, 'client-key', origin);
  if ((cert === undefined) !== (key === undefined)) {
    throw new KubeConfigError(`${origin}: a client certificate needs its key, and a key its certificate`);
  }
  return {
    rejectUnauthorized: !skip,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(servername ? { servername } : {}),
  };
}

/** `<field>-data` (base64) or `<field>` (a file). */
function material(body: Raw, field: string, origin: string): Buffer | undefined {
  const data = stringField(body, `${field}-data`, origin);
  if (data) return Buffer.from(data, 'base64');
  const path = stringField(body, field, origin);
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new KubeConfigError(`${origin}: ${field} ${path} cannot be read: ${(err as Error).message}`);
  }
}

function credentialsOf(user: Raw, plugin: { cluster: Raw; user: Raw }, origin: string): Credentials {
  if (user.exec !== undefined || user['auth-provider'] !== undefined) {
    // The one entry client-node needs, as a kubeconfig of its own (paths already absolute).
    const kubeconfig = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: plugin.cluster }],
      users: [{ name: 'u', user: plugin.user }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    });
    return { type: 'plugin', kubeconfig };
  }
  const tokenFile = stringField(user, 'tokenFile', origin);
  if (tokenFile) return { type: 'tokenFile', path: tokenFile };
  const token = stringField(user, 'token', origin);
  if (token) return { type: 'token', token };
  const username = stringField(user, 'username', origin);
  if (username) return { type: 'basic', username, password: stringField(user, 'password', origin) ?? '' };
  return { type: 'none' };
}

function stringField(body: Raw, field: string, origin: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new KubeConfigError(`${origin}: ${field} must be a string`);
  return value;
}

function isRecord(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
