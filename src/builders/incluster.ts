// Builds that run in the cluster: a Kubernetes Job from a template (BuildKit rootless, a
// maintained kaniko fork, ...) or a Tekton PipelineRun, in the trigger's namespace.
//
// Exactly once: the object's name is derived from the trigger and the correlation id, so
// the API server refuses a second create (409) and the existing object is adopted. The
// object is owned by the trigger, so deleting the trigger deletes its builds.
import { actingAs, describeActor, type Actor } from '../runtime/impersonation.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import { KubeApiError, isAlreadyExists, isNotFound, toKubeError } from '../runtime/errors.ts';
import type { BuildHandle, BuildPhase, BuildProvider, BuildRequest, BuildStatus } from './types.ts';
import { BuildError } from './types.ts';
import { isObject, str, substituteJson, substituteMap, variables } from './request.ts';

export interface JobSpec {
  template: Record<string, unknown>;
  digestContainer?: string;
}

export interface TektonSpec {
  pipelineRef: { name: string };
  params?: Record<string, string>;
  serviceAccountName?: string;
  workspaces?: Record<string, unknown>[];
  digestResult?: string;
}

const DIGEST = /sha256:[a-f0-9]{64}/;

/** A DNS-1123 name of at most 63 characters: the trigger's name and the correlation id. */
function buildObjectName(req: BuildRequest): string {
  const prefix = req.trigger.name.replace(/\./g, '-').slice(0, 63 - req.correlationId.length - 1);
  return `${prefix}-${req.correlationId}`;
}

function ownerAndLabels(req: BuildRequest, name: string): Record<string, unknown> {
  return {
    name,
    namespace: req.trigger.namespace,
    labels: {
      'app.kubernetes.io/managed-by': 'patchline',
      'patchline.dev/trigger': req.trigger.name.slice(0, 63),
      'patchline.dev/build-id': req.correlationId,
    },
    ownerReferences: [
      {
        apiVersion: 'patchline.dev/v1alpha1',
        kind: 'RebuildTrigger',
        name: req.trigger.name,
        uid: req.trigger.uid,
        controller: true,
      },
    ],
  };
}

/** Turns an API failure into the exactly-once classes. */
function classify(err: unknown, what: string, actor?: Actor): BuildError {
  const e = toKubeError(err);
  if (e instanceof KubeApiError) {
    if (e.code === 429) return new BuildError('throttled', `${what}: ${e.message}`, { status: 429 });
    if (e.code >= 500) return new BuildError('unavailable', `${what}: ${e.message}`, { status: e.code });
    if (e.code === 403)
      return new BuildError('rejected', `${what}: forbidden: ${describeActor(actor)} may not (${e.message})`, {
        status: 403,
      });
    return new BuildError('rejected', `${what}: ${e.message}`, { status: e.code });
  }
  return new BuildError('unavailable', `${what}: ${e.message}`, { cause: err });
}

/** Creates a build object; one that already exists (a repeated start) is adopted. */
async function createOnce(
  client: KubeClient,
  path: string,
  body: unknown,
  what: string,
  signal?: AbortSignal,
  actor?: Actor,
): Promise<void> {
  try {
    await actingAs(client, actor).requestJson('POST', path, { body, ...(signal ? { signal } : {}) });
  } catch (err) {
    if (!isAlreadyExists(err)) throw classify(err, `creating ${what}`, actor);
  }
}

/** Reads a build object; undefined when it does not exist. */
async function readIfExists(client: KubeClient, path: string, what: string, signal?: AbortSignal): Promise<unknown> {
  try {
    return await client.requestJson<unknown>('GET', path, signal ? { signal } : {});
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw classify(err, `reading ${what}`);
  }
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

function conditions(obj: unknown): Condition[] {
  const status = isObject(obj) && isObject(obj.status) ? obj.status : {};
  return Array.isArray(status.conditions) ? status.conditions.filter(isObject) : [];
}

export class JobProvider implements BuildProvider {
  readonly name = 'job' as const;
  readonly findGraceMs = 0;
  private readonly spec: JobSpec;
  private readonly client: KubeClient;
  /** Creates the Job (impersonated); the operator itself follows it. */
  private readonly actor: Actor | undefined;

  constructor(spec: JobSpec, client: KubeClient, actor?: Actor) {
    this.spec = spec;
    this.client = client;
    this.actor = actor;
  }

  private path(req: BuildRequest, name?: string): string {
    const base = `/apis/batch/v1/namespaces/${encodeURIComponent(req.trigger.namespace)}/jobs`;
    return name ? `${base}/${encodeURIComponent(name)}` : base;
  }

  async start(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle> {
    const name = buildObjectName(req);
    const template = substituteJson(this.spec.template, variables(req)) as Record<string, unknown>;
    const podTemplate = isObject(template.template) ? template.template : {};
    const podMeta = isObject(podTemplate.metadata) ? podTemplate.metadata : {};
    const body = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: ownerAndLabels(req, name),
      spec: {
        backoffLimit: 0,
        ttlSecondsAfterFinished: 86_400,
        activeDeadlineSeconds: Math.ceil(req.timeoutMs / 1000),
        ...template,
        template: {
          ...podTemplate,
          metadata: {
            ...podMeta,
            labels: {
              ...(isObject(podMeta.labels) ? podMeta.labels : {}),
              'patchline.dev/build-id': req.correlationId,
            },
          },
        },
      },
    };
    await createOnce(this.client, this.path(req), body, `Job ${req.trigger.namespace}/${name}`, signal, this.actor);
    return { id: name };
  }

  async find(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle | undefined> {
    const name = buildObjectName(req);
    const job = await readIfExists(this.client, this.path(req, name), `Job ${req.trigger.namespace}/${name}`, signal);
    return job === undefined ? undefined : { id: name };
  }

  async status(req: BuildRequest, handle: BuildHandle, signal?: AbortSignal): Promise<BuildStatus> {
    const job = await readIfExists(
      this.client,
      this.path(req, handle.id),
      `Job ${req.trigger.namespace}/${handle.id}`,
      signal,
    );
    if (job === undefined) return { phase: 'Unknown', message: `Job ${handle.id} no longer exists` };
    const conds = conditions(job);
    const done = (type: string) => conds.find((c) => c.type === type && c.status === 'True');
    const failed = done('Failed') ?? done('FailureTarget');
    const status = isObject(job) && isObject(job.status) ? job.status : {};
    if (failed)
      return {
        phase: 'Failed',
        message: `Job ${handle.id} failed: ${failed.reason ?? ''} ${failed.message ?? ''}`.trim(),
      };
    if (done('Complete') ?? done('SuccessCriteriaMet')) {
      const result: BuildStatus = { phase: 'Succeeded', message: `Job ${handle.id} completed` };
      const digest = await this.digestFromPods(req, handle.id, signal);
      if (digest) result.outputDigest = digest;
      return result;
    }
    const active = typeof status.active === 'number' ? status.active : 0;
    return { phase: active > 0 ? 'Running' : 'Queued', message: `Job ${handle.id}: ${active} active pod(s)` };
  }

  /** The digest the digest container wrote to its termination message (e.g. kaniko --digest-file=/dev/termination-log). */
  private async digestFromPods(req: BuildRequest, job: string, signal?: AbortSignal): Promise<string | undefined> {
    const container = this.spec.digestContainer;
    if (!container) return undefined;
    let pods: unknown;
    try {
      pods = await this.client.requestJson(
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(req.trigger.namespace)}/pods`,
        {
          query: { labelSelector: `batch.kubernetes.io/job-name=${job}` },
          ...(signal ? { signal } : {}),
        },
      );
    } catch (err) {
      throw classify(err, `reading the pods of Job ${req.trigger.namespace}/${job}`);
    }
    const items = isObject(pods) && Array.isArray(pods.items) ? pods.items.filter(isObject) : [];
    for (const pod of items) {
      const statuses =
        isObject(pod.status) && Array.isArray(pod.status.containerStatuses)
          ? pod.status.containerStatuses.filter(isObject)
          : [];
      const cs = statuses.find((c) => c.name === container);
      const terminated = cs && isObject(cs.state) && isObject(cs.state.terminated) ? cs.state.terminated : undefined;
      const match = DIGEST.exec(str(terminated?.message) ?? '');
      if (match) return match[0];
    }
    return undefined;
  }
}

const TEKTON_CANCELLED = ['Cancelled', 'CancelledRunFinally', 'StoppedRunFinally', 'PipelineRunCancelled'];

export class TektonProvider implements BuildProvider {
  readonly name = 'tekton' as const;
  readonly findGraceMs = 0;
  private readonly spec: TektonSpec;
  private readonly client: KubeClient;
  /** Creates the PipelineRun (impersonated); the operator itself follows it. */
  private readonly actor: Actor | undefined;

  constructor(spec: TektonSpec, client: KubeClient, actor?: Actor) {
    this.spec = spec;
    this.client = client;
    this.actor = actor;
  }

  private path(req: BuildRequest, name?: string): string {
    const base = `/apis/tekton.dev/v1/namespaces/${encodeURIComponent(req.trigger.namespace)}/pipelineruns`;
    return name ? `${base}/${encodeURIComponent(name)}` : base;
  }

  async start(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle> {
    const name = buildObjectName(req);
    const params = substituteMap(this.spec.params, variables(req));
    const body = {
      apiVersion: 'tekton.dev/v1',
      kind: 'PipelineRun',
      metadata: ownerAndLabels(req, name),
      spec: {
        pipelineRef: { name: this.spec.pipelineRef.name },
        params: Object.entries(params).map(([n, value]) => ({ name: n, value })),
        ...(this.spec.serviceAccountName
          ? { taskRunTemplate: { serviceAccountName: this.spec.serviceAccountName } }
          : {}),
        ...(this.spec.workspaces?.length ? { workspaces: this.spec.workspaces } : {}),
        timeouts: { pipeline: `${Math.ceil(req.timeoutMs / 1000)}s` },
      },
    };
    try {
      await actingAs(this.client, this.actor).requestJson('POST', this.path(req), {
        body,
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (isNotFound(err))
        throw new BuildError(
          'rejected',
          'Tekton Pipelines is not installed in this cluster (no tekton.dev/v1 PipelineRun resource)',
          { status: 404 },
        );
      if (!isAlreadyExists(err))
        throw classify(err, `creating PipelineRun ${req.trigger.namespace}/${name}`, this.actor);
    }
    return { id: name };
  }

  async find(req: BuildRequest, signal?: AbortSignal): Promise<BuildHandle | undefined> {
    const name = buildObjectName(req);
    const what = `PipelineRun ${req.trigger.namespace}/${name}`;
    return (await readIfExists(this.client, this.path(req, name), what, signal)) === undefined
      ? undefined
      : { id: name };
  }

  async status(req: BuildRequest, handle: BuildHandle, signal?: AbortSignal): Promise<BuildStatus> {
    const what = `PipelineRun ${req.trigger.namespace}/${handle.id}`;
    const run = await readIfExists(this.client, this.path(req, handle.id), what, signal);
    if (run === undefined) return { phase: 'Unknown', message: `PipelineRun ${handle.id} no longer exists` };
    const succeeded = conditions(run).find((c) => c.type === 'Succeeded');
    const reason = succeeded?.reason ?? '';
    let phase: BuildPhase;
    if (!succeeded) phase = 'Queued';
    else if (succeeded.status === 'True') phase = 'Succeeded';
    else if (succeeded.status === 'False') phase = TEKTON_CANCELLED.includes(reason) ? 'Cancelled' : 'Failed';
    else phase = /Pending/.test(reason) ? 'Queued' : 'Running';
    const status: BuildStatus = {
      phase,
      message: `PipelineRun ${handle.id}: ${[reason, succeeded?.message].filter(Boolean).join(': ') || 'waiting'}`,
    };
    const results =
      isObject(run) && isObject(run.status) && Array.isArray(run.status.results)
        ? run.status.results.filter(isObject)
        : [];
    const wanted = this.spec.digestResult ?? 'IMAGE_DIGEST';
    const match = DIGEST.exec(str(results.find((r) => r.name === wanted)?.value) ?? '');
    if (match) status.outputDigest = match[0];
    return status;
  }
}
