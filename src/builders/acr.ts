// Azure Container Registry Tasks: run an existing task with overridden arguments.
//
// Which SDK: @azure/arm-containerregistry 12 removed the Tasks operations (the last GA with
// them is 11.0.0, api-version 2019-06-01-preview), and their successor,
// @azure/arm-containerregistrytasks, is prerelease only. The ARM REST calls are few and
// stable, so they are made here directly with an Entra ID token from @azure/identity.
//
// Exactly once: the run is created as a TaskRun resource named after the correlation id
// (PUT .../taskRuns/<name>). ARM PUT is idempotent: repeating it never starts a second run,
// and GET on the same name finds the run after a crash.
import type {
  ProviderCredentials,
  BuildHandle,
  BuildProvider,
  BuildRequest,
  BuildStatus,
  BuildPhase,
} from './types.ts';
import { BuildError } from './types.ts';
import { callJson, describe, isObject, str, substituteMap, variables } from './request.ts';
import { parseReference } from '../registry/reference.ts';

export const ACR_TASKS_API_VERSION = '2019-06-01-preview';
const ARM = 'https://management.azure.com';

export interface AcrTaskSpec {
  subscriptionId: string;
  resourceGroup: string;
  registry: string;
  taskName: string;
  arguments?: Record<string, string>;
  agentPoolName?: string;
}

export interface AzureTokenSource {
  getToken(scope: string): Promise<{ token: string } | null>;
}

async function tokenSource(credentials: ProviderCredentials): Promise<AzureTokenSource> {
  const identity = await import('@azure/identity');
  if (credentials?.clientSecret && credentials.clientId && credentials.tenantId) {
    return new identity.ClientSecretCredential(credentials.tenantId, credentials.clientId, credentials.clientSecret);
  }
  return new identity.DefaultAzureCredential();
}

const PHASES: Record<string, BuildPhase> = {
  Queued: 'Queued',
  Started: 'Running',
  Running: 'Running',
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Error: 'Failed',
  Timeout: 'Failed',
  Canceled: 'Cancelled',
};

export class AcrTaskProvider implements BuildProvider {
  readonly name = 'acrTask' as const;
  readonly findGraceMs = 0; // a TaskRun is found by name as soon as it exists
  private readonly spec: AcrTaskSpec;
  private readonly credentials: ProviderCredentials;
  private readonly armBase: string;
  private tokens: AzureTokenSource | undefined;

  constructor(
    spec: AcrTaskSpec,
    credentials: ProviderCredentials,
    options: { tokens?: AzureTokenSource; armBase?: string } = {},
  ) {
    this.spec = spec;
    this.credentials = credentials;
    this.tokens = options.tokens;
    this.armBase = options.armBase ?? ARM;
  }

  private registryPath(): string {
    const s = this.spec;
    return `/subscriptions/${encodeURIComponent(s.subscriptionId)}/resourceGroups/${encodeURIComponent(s.resourceGroup)}/providers/Microsoft.ContainerRegistry/registries/${encodeURIComponent(s.registry)}`;
  }

  private url(path: string): string {
    return `${this.armBase}${this.registryPath()}${path}${path.includes('?') ? '&' : '?'}api-version=${ACR_TASKS_API_VERSION}`;
  }

  private portal(): string {
    return `https://portal.azure.com/#resource${this.registryPath()}/runs`;
  }

  private async headers(): Promise<Record<string, string>> {
    this.tokens ??= await tokenSource(this.credentials);
    let token: { token: string } | null;
    try {
      token = await this.tokens.getToken(`${ARM}/.default`);
    } catch (err) {
      throw new BuildError(
        'rejected',
        `no Entra ID token for Azure Resource Manager: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    if (!token) throw new BuildError('rejected', 'no Entra ID token for Azure Resource Manager');
    return { authorization: `Bearer ${token.token}` };
  }

  private taskRunName(req: BuildRequest): string {
    return `patchline-${req.correlationId}`;
  }

  async start(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle> {
    const vars = variables(req);
    const args = substituteMap(this.spec.arguments, vars);
    const body = {
      properties: {
        runRequest: {
          type: 'TaskRunRequest',
          taskId: `${this.registryPath()}/tasks/${this.spec.taskName}`,
          ...(this.spec.agentPoolName ? { agentPoolName: this.spec.agentPoolName } : {}),
          overrideTaskStepProperties: {
            arguments: Object.entries(args).map(([name, value]) => ({ name, value, isSecret: false })),
          },
        },
      },
    };
    const res = await callJson(this.url(`/taskRuns/${this.taskRunName(req)}`), {
      method: 'PUT',
      headers: await this.headers(),
      body,
      service: 'Azure Container Registry',
      ...(signal ? { signal } : {}),
    });
    if (res.status === 404)
      throw new BuildError(
        'rejected',
        `registry ${this.spec.registry} or task ${this.spec.taskName} not found in ${this.spec.resourceGroup}${describe(res.body)}`,
        { status: 404 },
      );
    if (res.status >= 400)
      throw new BuildError('rejected', `Azure refused the task run (HTTP ${res.status})${describe(res.body)}`, {
        status: res.status,
      });
    const handle = this.handleFrom(res.body);
    if (handle) return handle;
    // 202 Accepted: the TaskRun exists but its run is not scheduled yet; find it by name.
    const found = await this.find(req, signal);
    if (!found) throw new BuildError('unavailable', 'Azure accepted the task run but shows no run yet');
    return found;
  }

  private handleFrom(body: unknown): BuildHandle | undefined {
    const props = isObject(body) && isObject(body.properties) ? body.properties : undefined;
    const result = props && isObject(props.runResult) ? props.runResult : undefined;
    const runId = str(result && isObject(result.properties) ? result.properties.runId : undefined) ?? str(result?.name);
    return runId ? { id: runId, url: this.portal() } : undefined;
  }

  async find(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle | undefined> {
    const res = await callJson(this.url(`/taskRuns/${this.taskRunName(req)}`), {
      method: 'GET',
      headers: await this.headers(),
      service: 'Azure Container Registry',
      ...(signal ? { signal } : {}),
    });
    if (res.status === 404) return undefined;
    if (res.status >= 400)
      throw new BuildError('rejected', `Azure refused to read the task run (HTTP ${res.status})${describe(res.body)}`, {
        status: res.status,
      });
    return this.handleFrom(res.body);
  }

  async status(_req: BuildRequest, handle: BuildHandle, signal?: AbortSignal): Promise<BuildStatus> {
    const res = await callJson(this.url(`/runs/${encodeURIComponent(handle.id)}`), {
      method: 'GET',
      headers: await this.headers(),
      service: 'Azure Container Registry',
      ...(signal ? { signal } : {}),
    });
    if (res.status === 404) return { phase: 'Unknown', message: `run ${handle.id} not found in ${this.spec.registry}` };
    if (res.status >= 400)
      throw new BuildError(
        'rejected',
        `Azure refused to read run ${handle.id} (HTTP ${res.status})${describe(res.body)}`,
        { status: res.status },
      );
    const props = isObject(res.body) && isObject(res.body.properties) ? res.body.properties : {};
    const raw = str(props.status) ?? 'Unknown';
    const status: BuildStatus = { phase: PHASES[raw] ?? 'Unknown', url: this.portal() };
    const error = str(props.runErrorMessage);
    if (error) status.message = error;
    else if (status.phase !== 'Unknown') status.message = `run ${handle.id}: ${raw}`;
    const target = parseReference(_req.target.image);
    const images = Array.isArray(props.outputImages) ? props.outputImages.filter(isObject) : [];
    const out =
      images.find((i) => i.repository === target.repository && (!i.registry || i.registry === target.registry)) ??
      images[0];
    const digest = str(out?.digest);
    if (digest) status.outputDigest = digest;
    return status;
  }
}
