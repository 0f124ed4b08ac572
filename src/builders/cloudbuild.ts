// Google Cloud Build: run a build trigger with substitutions, follow the build.
//
// Cloud Build has no idempotency key, so the correlation id travels as the substitution
// _PATCHLINE_BUILD_ID; after a crash the trigger's recent builds are searched for it before
// anything is run again. The build id is in the run operation's metadata at once.
// Authentication: a service-account key from the credentials Secret (key
// "serviceAccountKey"), or the operator's Application Default Credentials (Workload Identity).
import type {
  BuildHandle,
  BuildPhase,
  BuildProvider,
  BuildRequest,
  BuildStatus,
  ProviderCredentials,
} from './types.ts';
import { BuildError } from './types.ts';
import { callJson, describe, isObject, str, substituteMap, variables, type JsonResponse } from './request.ts';
import { parseReference } from '../registry/reference.ts';

export interface CloudBuildSpec {
  projectId: string;
  location?: string;
  triggerId: string;
  branch?: string;
  substitutions?: Record<string, string>;
}

export const BUILD_ID_SUBSTITUTION = '_PATCHLINE_BUILD_ID';
const API = 'https://cloudbuild.googleapis.com/v1';

export type GoogleTokenSource = () => Promise<string>;

async function defaultTokens(credentials: ProviderCredentials): Promise<GoogleTokenSource> {
  const { GoogleAuth } = await import('google-auth-library');
  let key: Record<string, unknown> | undefined;
  if (credentials?.serviceAccountKey) {
    try {
      key = JSON.parse(credentials.serviceAccountKey) as Record<string, unknown>;
    } catch {
      throw new BuildError('rejected', 'the serviceAccountKey in the credentials Secret is not JSON');
    }
  }
  const auth = new GoogleAuth({
    scopes: ['https://www.googleapis.com/auth/cloud-platform'],
    ...(key ? { credentials: key } : {}),
  });
  return async () => {
    const token = await auth.getAccessToken();
    if (!token) throw new Error('no access token');
    return token;
  };
}

const PHASES: Record<string, BuildPhase> = {
  PENDING: 'Queued',
  QUEUED: 'Queued',
  WORKING: 'Running',
  SUCCESS: 'Succeeded',
  FAILURE: 'Failed',
  INTERNAL_ERROR: 'Failed',
  TIMEOUT: 'Failed',
  EXPIRED: 'Failed',
  CANCELLED: 'Cancelled',
};

export class CloudBuildProvider implements BuildProvider {
  readonly name = 'cloudBuild' as const;
  readonly findGraceMs = 60_000;
  private readonly spec: CloudBuildSpec;
  private readonly credentials: ProviderCredentials;
  private tokens: GoogleTokenSource | undefined;
  private readonly api: string;

  constructor(
    spec: CloudBuildSpec,
    credentials: ProviderCredentials,
    options: { tokens?: GoogleTokenSource; api?: string } = {},
  ) {
    this.spec = spec;
    this.credentials = credentials;
    this.tokens = options.tokens;
    this.api = options.api ?? API;
  }

  private parent(): string {
    return `projects/${encodeURIComponent(this.spec.projectId)}/locations/${encodeURIComponent(this.spec.location ?? 'global')}`;
  }

  private async call(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<JsonResponse> {
    this.tokens ??= await defaultTokens(this.credentials);
    let token: string;
    try {
      token = await this.tokens();
    } catch (err) {
      throw new BuildError('rejected', `no Google access token: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
    return callJson(`${this.api}/${path}`, {
      method,
      headers: { authorization: `Bearer ${token}` },
      ...(body !== undefined ? { body } : {}),
      service: 'Cloud Build',
      ...(signal ? { signal } : {}),
    });
  }

  private consoleUrl(id: string): string {
    return `https://console.cloud.google.com/cloud-build/builds;region=${this.spec.location ?? 'global'}/${id}?project=${this.spec.projectId}`;
  }

  async start(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle> {
    const substitutions = {
      ...substituteMap(this.spec.substitutions, variables(req)),
      [BUILD_ID_SUBSTITUTION]: req.correlationId,
    };
    const name = `${this.parent()}/triggers/${encodeURIComponent(this.spec.triggerId)}`;
    const res = await this.call(
      'POST',
      `${name}:run`,
      {
        name: decodeURIComponent(name),
        projectId: this.spec.projectId,
        triggerId: this.spec.triggerId,
        source: {
          projectId: this.spec.projectId,
          ...(this.spec.branch ? { branchName: this.spec.branch } : {}),
          substitutions,
        },
      },
      signal,
    );
    if (res.status === 404)
      throw new BuildError(
        'rejected',
        `build trigger ${this.spec.triggerId} not found in project ${this.spec.projectId} (${this.spec.location ?? 'global'})`,
        { status: 404 },
      );
    if (res.status >= 400)
      throw new BuildError(
        'rejected',
        `Cloud Build refused to run the trigger (HTTP ${res.status})${describe(res.body)}`,
        { status: res.status },
      );
    const metadata = isObject(res.body) && isObject(res.body.metadata) ? res.body.metadata : {};
    const build = isObject(metadata.build) ? metadata.build : {};
    const id = str(build.id);
    if (!id) throw new BuildError('unavailable', 'Cloud Build returned an operation without a build id');
    return { id, url: str(build.logUrl) ?? this.consoleUrl(id) };
  }

  async find(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle | undefined> {
    const since = new Date(req.requestedAt.getTime() - 5 * 60_000).toISOString();
    const filter = encodeURIComponent(`trigger_id="${this.spec.triggerId}" AND create_time>="${since}"`);
    const res = await this.call('GET', `${this.parent()}/builds?pageSize=100&filter=${filter}`, undefined, signal);
    if (res.status >= 400)
      throw new BuildError('rejected', `Cloud Build refused to list builds (HTTP ${res.status})${describe(res.body)}`, {
        status: res.status,
      });
    const builds = isObject(res.body) && Array.isArray(res.body.builds) ? res.body.builds.filter(isObject) : [];
    const build = builds.find(
      (b) => isObject(b.substitutions) && b.substitutions[BUILD_ID_SUBSTITUTION] === req.correlationId,
    );
    const id = str(build?.id);
    return id ? { id, url: str(build?.logUrl) ?? this.consoleUrl(id) } : undefined;
  }

  async status(req: BuildRequest, handle: BuildHandle, signal?: AbortSignal): Promise<BuildStatus> {
    const res = await this.call('GET', `${this.parent()}/builds/${encodeURIComponent(handle.id)}`, undefined, signal);
    if (res.status === 404) return { phase: 'Unknown', message: `build ${handle.id} not found` };
    if (res.status >= 400)
      throw new BuildError(
        'rejected',
        `Cloud Build refused to read build ${handle.id} (HTTP ${res.status})${describe(res.body)}`,
        { status: res.status },
      );
    const b = isObject(res.body) ? res.body : {};
    const raw = str(b.status) ?? 'STATUS_UNKNOWN';
    const status: BuildStatus = {
      phase: PHASES[raw] ?? 'Unknown',
      url: str(b.logUrl) ?? handle.url ?? this.consoleUrl(handle.id),
    };
    const failure = isObject(b.failureInfo) ? str(b.failureInfo.detail) : undefined;
    status.message = failure ?? str(b.statusDetail) ?? `build ${handle.id}: ${raw}`;
    const target = parseReference(req.target.image);
    const images = isObject(b.results) && Array.isArray(b.results.images) ? b.results.images.filter(isObject) : [];
    const out = images.find((i) => {
      const name = str(i.name);
      if (!name) return false;
      try {
        const r = parseReference(name);
        return r.registry === target.registry && r.repository === target.repository;
      } catch {
        return false;
      }
    });
    const digest = str(out?.digest);
    if (digest) status.outputDigest = digest;
    return status;
  }
}
