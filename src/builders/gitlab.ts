// GitLab CI: create a pipeline with variables (POST /projects/:id/pipeline), follow it.
//
// The correlation id is the pipeline variable PATCHLINE_BUILD_ID; after a crash the
// project's recent pipelines on the ref are searched for it. The token (a project, group or
// personal access token with the api scope) is the credentials Secret's "token".
import type {
  BuildHandle,
  BuildPhase,
  BuildProvider,
  BuildRequest,
  BuildStatus,
  ProviderCredentials,
} from './types.ts';
import { BuildError } from './types.ts';
import {
  callJson,
  describe,
  isObject,
  str,
  substituteMap,
  variables,
  type JsonResponse,
  requiredCredential,
} from './request.ts';

export interface GitlabSpec {
  url?: string;
  projectId: string;
  ref: string;
  variables?: Record<string, string>;
}

export const BUILD_ID_VARIABLE = 'PATCHLINE_BUILD_ID';

const PHASES: Record<string, BuildPhase> = {
  created: 'Queued',
  waiting_for_resource: 'Queued',
  preparing: 'Queued',
  pending: 'Queued',
  scheduled: 'Queued',
  manual: 'Queued',
  running: 'Running',
  success: 'Succeeded',
  failed: 'Failed',
  canceled: 'Cancelled',
  canceling: 'Running',
  skipped: 'Cancelled',
};

export class GitlabProvider implements BuildProvider {
  readonly name = 'gitlab' as const;
  readonly findGraceMs = 60_000;
  private readonly spec: GitlabSpec;
  private readonly token: string;

  constructor(spec: GitlabSpec, credentials: ProviderCredentials) {
    this.spec = spec;
    this.token = requiredCredential(credentials, 'token', 'gitlab');
  }

  private api(path: string): string {
    const base = (this.spec.url ?? 'https://gitlab.com').replace(/\/$/, '');
    // projectId is numeric or an already URL-encoded path (group%2Fproject).
    return `${base}/api/v4/projects/${this.spec.projectId}${path}`;
  }

  private call(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<JsonResponse> {
    return callJson(this.api(path), {
      method,
      headers: { 'private-token': this.token },
      ...(body !== undefined ? { body } : {}),
      service: 'GitLab',
      ...(signal ? { signal } : {}),
    });
  }

  async start(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle> {
    const vars = { ...substituteMap(this.spec.variables, variables(req)), [BUILD_ID_VARIABLE]: req.correlationId };
    const res = await this.call(
      'POST',
      '/pipeline',
      {
        ref: this.spec.ref,
        variables: Object.entries(vars).map(([key, value]) => ({ key, value, variable_type: 'env_var' })),
      },
      signal,
    );
    if (res.status === 404)
      throw new BuildError('rejected', `GitLab project ${this.spec.projectId} not found, or the token cannot see it`, {
        status: 404,
      });
    if (res.status >= 400)
      throw new BuildError('rejected', `GitLab refused the pipeline (HTTP ${res.status})${describe(res.body)}`, {
        status: res.status,
      });
    const p = isObject(res.body) ? res.body : {};
    if (typeof p.id !== 'number') throw new BuildError('unavailable', 'GitLab answered without a pipeline id');
    const handle: BuildHandle = { id: String(p.id) };
    const url = str(p.web_url);
    if (url) handle.url = url;
    return handle;
  }

  async find(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle | undefined> {
    const since = new Date(req.requestedAt.getTime() - 5 * 60_000).toISOString();
    const res = await this.call(
      'GET',
      `/pipelines?ref=${encodeURIComponent(this.spec.ref)}&updated_after=${encodeURIComponent(since)}&order_by=id&sort=desc&per_page=20`,
      undefined,
      signal,
    );
    if (res.status >= 400)
      throw new BuildError('rejected', `GitLab refused to list pipelines (HTTP ${res.status})${describe(res.body)}`, {
        status: res.status,
      });
    const pipelines = Array.isArray(res.body) ? res.body.filter(isObject) : [];
    for (const p of pipelines.slice(0, 10)) {
      if (typeof p.id !== 'number') continue;
      const vars = await this.call('GET', `/pipelines/${p.id}/variables`, undefined, signal);
      const list = Array.isArray(vars.body) ? vars.body.filter(isObject) : [];
      if (list.some((v) => v.key === BUILD_ID_VARIABLE && v.value === req.correlationId)) {
        const handle: BuildHandle = { id: String(p.id) };
        const url = str(p.web_url);
        if (url) handle.url = url;
        return handle;
      }
    }
    return undefined;
  }

  async status(_req: BuildRequest, handle: BuildHandle, signal?: AbortSignal): Promise<BuildStatus> {
    const res = await this.call('GET', `/pipelines/${encodeURIComponent(handle.id)}`, undefined, signal);
    if (res.status === 404) return { phase: 'Unknown', message: `pipeline ${handle.id} not found` };
    if (res.status >= 400)
      throw new BuildError(
        'rejected',
        `GitLab refused to read pipeline ${handle.id} (HTTP ${res.status})${describe(res.body)}`,
        { status: res.status },
      );
    const p = isObject(res.body) ? res.body : {};
    const raw = str(p.status) ?? 'unknown';
    const status: BuildStatus = { phase: PHASES[raw] ?? 'Unknown', message: `pipeline ${handle.id}: ${raw}` };
    const url = str(p.web_url) ?? handle.url;
    if (url) status.url = url;
    return status;
  }
}
