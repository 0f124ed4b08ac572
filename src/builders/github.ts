// GitHub Actions: dispatch a workflow (workflow_dispatch) and follow its run.
//
// The dispatch asks for run details (`return_run_details: true`, 200 with the run id); a
// server that does not know the field (older GitHub Enterprise Server) answers 400 or 422,
// and the dispatch is repeated without it (204, no id). The run is then found, now or after
// a crash, by the input `patchline_build_id`, which the workflow must show in its run name:
//
//   on: { workflow_dispatch: { inputs: { patchline_build_id: { required: false } } } }
//   run-name: rebuild ${{ inputs.patchline_build_id }}
//
// GitHub cannot refuse a second dispatch, so after a crash the run list is searched for the
// correlation id for a minute before a dispatch is repeated.
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

export interface GithubActionsSpec {
  apiURL?: string;
  owner: string;
  repository: string;
  workflow: string;
  ref: string;
  inputs?: Record<string, string>;
}

export const BUILD_ID_INPUT = 'patchline_build_id';
const PENDING = 'dispatched:';

export class GithubActionsProvider implements BuildProvider {
  readonly name = 'githubActions' as const;
  readonly findGraceMs = 60_000;
  private readonly spec: GithubActionsSpec;
  private readonly token: string;

  constructor(spec: GithubActionsSpec, credentials: ProviderCredentials) {
    this.spec = spec;
    this.token = requiredCredential(credentials, 'token', 'githubActions');
  }

  private api(path: string): string {
    const base = (this.spec.apiURL ?? 'https://api.github.com').replace(/\/$/, '');
    return `${base}/repos/${encodeURIComponent(this.spec.owner)}/${encodeURIComponent(this.spec.repository)}${path}`;
  }

  private async call(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<JsonResponse> {
    const res = await callJson(this.api(path), {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        accept: 'application/vnd.github+json',
        'x-github-api-version': '2022-11-28',
      },
      ...(body !== undefined ? { body } : {}),
      service: 'GitHub',
      ...(signal ? { signal } : {}),
    });
    return res;
  }

  async start(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle> {
    const inputs = { ...substituteMap(this.spec.inputs, variables(req)), [BUILD_ID_INPUT]: req.correlationId };
    const path = `/actions/workflows/${encodeURIComponent(this.spec.workflow)}/dispatches`;
    let res = await this.call('POST', path, { ref: this.spec.ref, inputs, return_run_details: true }, signal);
    if ((res.status === 400 || res.status === 422) && /return_run_details/.test(JSON.stringify(res.body ?? ''))) {
      res = await this.call('POST', path, { ref: this.spec.ref, inputs }, signal);
    }
    if (res.status === 200 && isObject(res.body)) {
      const id = res.body.workflow_run_id;
      if (typeof id === 'number' || typeof id === 'string') {
        const handle: BuildHandle = { id: String(id) };
        const url = str(res.body.html_url);
        if (url) handle.url = url;
        return handle;
      }
    }
    if (res.status === 204 || res.status === 200) return { id: `${PENDING}${req.correlationId}` };
    if (res.status === 404) {
      throw new BuildError(
        'rejected',
        `workflow ${this.spec.workflow} not found in ${this.spec.owner}/${this.spec.repository}, or the token cannot see it`,
        { status: 404 },
      );
    }
    throw new BuildError('rejected', `GitHub refused the dispatch (HTTP ${res.status})${describe(res.body)}`, {
      status: res.status,
    });
  }

  async find(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle | undefined> {
    const since = new Date(req.requestedAt.getTime() - 5 * 60_000).toISOString();
    const query = `?event=workflow_dispatch&per_page=100&created=${encodeURIComponent(`>=${since}`)}`;
    const res = await this.call(
      'GET',
      `/actions/workflows/${encodeURIComponent(this.spec.workflow)}/runs${query}`,
      undefined,
      signal,
    );
    if (res.status >= 400)
      throw new BuildError('rejected', `GitHub refused to list runs (HTTP ${res.status})${describe(res.body)}`, {
        status: res.status,
      });
    const runs =
      isObject(res.body) && Array.isArray(res.body.workflow_runs) ? res.body.workflow_runs.filter(isObject) : [];
    const run = runs.find((r) =>
      [r.display_title, r.name].some((t) => typeof t === 'string' && t.includes(req.correlationId)),
    );
    if (!run || (typeof run.id !== 'number' && typeof run.id !== 'string')) return undefined;
    const handle: BuildHandle = { id: String(run.id) };
    const url = str(run.html_url);
    if (url) handle.url = url;
    return handle;
  }

  async status(req: BuildRequest, handle: BuildHandle, signal?: AbortSignal): Promise<BuildStatus> {
    if (handle.id.startsWith(PENDING)) {
      const found = await this.find(req, signal);
      if (!found) return { phase: 'Queued', message: 'dispatched; waiting for the run to appear' };
      const status = await this.status(req, found, signal);
      return { ...status, handle: found };
    }
    const res = await this.call('GET', `/actions/runs/${encodeURIComponent(handle.id)}`, undefined, signal);
    if (res.status === 404) return { phase: 'Unknown', message: `run ${handle.id} not found` };
    if (res.status >= 400)
      throw new BuildError(
        'rejected',
        `GitHub refused to read run ${handle.id} (HTTP ${res.status})${describe(res.body)}`,
        { status: res.status },
      );
    const run = isObject(res.body) ? res.body : {};
    const state = str(run.status) ?? 'unknown';
    const conclusion = str(run.conclusion);
    let phase: BuildPhase;
    if (state !== 'completed') phase = state === 'in_progress' ? 'Running' : 'Queued';
    else if (conclusion === 'success') phase = 'Succeeded';
    else if (conclusion === 'cancelled' || conclusion === 'skipped') phase = 'Cancelled';
    else phase = 'Failed';
    const status: BuildStatus = { phase, message: `run ${handle.id}: ${state}${conclusion ? ` (${conclusion})` : ''}` };
    const url = str(run.html_url) ?? handle.url;
    if (url) status.url = url;
    return status;
  }
}
