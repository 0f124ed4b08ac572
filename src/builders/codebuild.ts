// AWS CodeBuild: start a project's build with environment overrides, follow it.
//
// The correlation id is CodeBuild's idempotencyToken (a repeated StartBuild within five
// minutes returns the same build) and the environment variable PATCHLINE_BUILD_ID, by which
// the project's recent builds are searched after a crash. The buildspec reports the pushed
// digest by exporting IMAGE_DIGEST (`env: exported-variables: [IMAGE_DIGEST]`).
// Credentials: accessKeyId/secretAccessKey(/sessionToken) from the credentials Secret, or the
// operator's AWS identity (IRSA, EKS Pod Identity) through the SDK's default chain.
import type {
  BuildHandle,
  BuildPhase,
  BuildProvider,
  BuildRequest,
  BuildStatus,
  ProviderCredentials,
} from './types.ts';
import { BuildError } from './types.ts';
import { substituteMap, variables } from './request.ts';

export interface CodeBuildSpec {
  region: string;
  projectName: string;
  sourceVersion?: string;
  environment?: Record<string, string>;
}

export const BUILD_ID_VARIABLE = 'PATCHLINE_BUILD_ID';
const DIGEST_VARIABLE = 'IMAGE_DIGEST';

interface SdkBuild {
  id?: string;
  buildStatus?: string;
  currentPhase?: string;
  startTime?: Date;
  environment?: { environmentVariables?: { name?: string; value?: string }[] };
  exportedEnvironmentVariables?: { name?: string; value?: string }[];
  phases?: { phaseType?: string; phaseStatus?: string; contexts?: { statusCode?: string; message?: string }[] }[];
}

/** The few CodeBuild operations used, so that tests and the SDK client fit the same shape. */
export interface CodeBuildApi {
  startBuild(input: Record<string, unknown>, signal?: AbortSignal): Promise<{ build?: SdkBuild }>;
  batchGetBuilds(ids: string[], signal?: AbortSignal): Promise<{ builds?: SdkBuild[] }>;
  listBuildsForProject(projectName: string, signal?: AbortSignal): Promise<{ ids?: string[] }>;
}

async function sdkApi(region: string, credentials: ProviderCredentials): Promise<CodeBuildApi> {
  const sdk = await import('@aws-sdk/client-codebuild');
  const explicit =
    credentials?.accessKeyId && credentials.secretAccessKey
      ? {
          credentials: {
            accessKeyId: credentials.accessKeyId,
            secretAccessKey: credentials.secretAccessKey,
            ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}),
          },
        }
      : {};
  // One attempt per call: retries and backoff belong to the reconciler, which records them.
  const client = new sdk.CodeBuildClient({ region, maxAttempts: 1, ...explicit });
  const opts = (signal?: AbortSignal) => (signal ? { abortSignal: signal } : {});
  return {
    startBuild: (input, signal) =>
      client.send(
        new sdk.StartBuildCommand(input as unknown as ConstructorParameters<typeof sdk.StartBuildCommand>[0]),
        opts(signal),
      ),
    batchGetBuilds: (ids, signal) => client.send(new sdk.BatchGetBuildsCommand({ ids }), opts(signal)),
    listBuildsForProject: (projectName, signal) =>
      client.send(new sdk.ListBuildsForProjectCommand({ projectName, sortOrder: 'DESCENDING' }), opts(signal)),
  };
}

/** Maps an AWS SDK error to the exactly-once classes. */
function classify(err: unknown, what: string): BuildError {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e?.name ?? 'Error';
  const status = e?.$metadata?.httpStatusCode;
  const message = `${what}: ${name}: ${e?.message ?? String(err)}`;
  if (/Throttl|TooManyRequests|RequestLimitExceeded/.test(name) || status === 429)
    return new BuildError('throttled', message, { cause: err });
  if (status === undefined || status >= 500 || /Timeout|NetworkingError|ECONN/.test(name)) {
    return new BuildError('unavailable', message, { cause: err, ...(status ? { status } : {}) });
  }
  return new BuildError('rejected', message, { status, cause: err });
}

const PHASES: Record<string, BuildPhase> = {
  IN_PROGRESS: 'Running',
  SUCCEEDED: 'Succeeded',
  FAILED: 'Failed',
  FAULT: 'Failed',
  TIMED_OUT: 'Failed',
  STOPPED: 'Cancelled',
};

export class CodeBuildProvider implements BuildProvider {
  readonly name = 'codeBuild' as const;
  readonly findGraceMs = 60_000;
  private readonly spec: CodeBuildSpec;
  private readonly credentials: ProviderCredentials;
  private api: CodeBuildApi | undefined;

  constructor(spec: CodeBuildSpec, credentials: ProviderCredentials, options: { api?: CodeBuildApi } = {}) {
    this.spec = spec;
    this.credentials = credentials;
    this.api = options.api;
  }

  private async client(): Promise<CodeBuildApi> {
    this.api ??= await sdkApi(this.spec.region, this.credentials);
    return this.api;
  }

  private url(id: string): string {
    const r = this.spec.region;
    return `https://${r}.console.aws.amazon.com/codesuite/codebuild/projects/${encodeURIComponent(this.spec.projectName)}/build/${encodeURIComponent(id)}/?region=${r}`;
  }

  async start(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle> {
    const env = { ...substituteMap(this.spec.environment, variables(req)), [BUILD_ID_VARIABLE]: req.correlationId };
    let out: { build?: SdkBuild };
    try {
      out = await (
        await this.client()
      ).startBuild(
        {
          projectName: this.spec.projectName,
          ...(this.spec.sourceVersion ? { sourceVersion: this.spec.sourceVersion } : {}),
          environmentVariablesOverride: Object.entries(env).map(([name, value]) => ({
            name,
            value,
            type: 'PLAINTEXT',
          })),
          idempotencyToken: req.correlationId,
          timeoutInMinutesOverride: Math.max(5, Math.min(2160, Math.ceil(req.timeoutMs / 60_000))),
        },
        signal,
      );
    } catch (err) {
      throw classify(err, `StartBuild of ${this.spec.projectName}`);
    }
    const id = out.build?.id;
    if (!id) throw new BuildError('unavailable', 'StartBuild returned no build id');
    return { id, url: this.url(id) };
  }

  async find(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle | undefined> {
    try {
      const api = await this.client();
      const ids = (await api.listBuildsForProject(this.spec.projectName, signal)).ids?.slice(0, 25) ?? [];
      if (ids.length === 0) return undefined;
      const builds = (await api.batchGetBuilds(ids, signal)).builds ?? [];
      const since = req.requestedAt.getTime() - 5 * 60_000;
      const build = builds.find(
        (b) =>
          (b.startTime ? new Date(b.startTime).getTime() >= since : true) &&
          (b.environment?.environmentVariables ?? []).some(
            (v) => v.name === BUILD_ID_VARIABLE && v.value === req.correlationId,
          ),
      );
      return build?.id ? { id: build.id, url: this.url(build.id) } : undefined;
    } catch (err) {
      throw classify(err, `listing builds of ${this.spec.projectName}`);
    }
  }

  async status(_req: BuildRequest, handle: BuildHandle, signal?: AbortSignal): Promise<BuildStatus> {
    let builds: SdkBuild[];
    try {
      builds = (await (await this.client()).batchGetBuilds([handle.id], signal)).builds ?? [];
    } catch (err) {
      throw classify(err, `BatchGetBuilds ${handle.id}`);
    }
    const b = builds[0];
    if (!b) return { phase: 'Unknown', message: `build ${handle.id} not found` };
    const raw = b.buildStatus ?? 'UNKNOWN';
    const failed = (b.phases ?? []).flatMap((p) =>
      p.phaseStatus && p.phaseStatus !== 'SUCCEEDED'
        ? (p.contexts ?? []).map((c) => `${p.phaseType}: ${c.message ?? c.statusCode ?? ''}`)
        : [],
    );
    const status: BuildStatus = {
      phase: PHASES[raw] ?? 'Unknown',
      url: this.url(handle.id),
      message:
        failed.find((m) => m.trim().length > 0) ??
        `build ${handle.id}: ${raw}${b.currentPhase ? ` (${b.currentPhase})` : ''}`,
    };
    const digest = (b.exportedEnvironmentVariables ?? []).find((v) => v.name === DIGEST_VARIABLE)?.value;
    if (digest && /^sha256:[a-f0-9]{64}$/.test(digest)) status.outputDigest = digest;
    return status;
  }
}
