// The I/O half of on-demand scans: creates a candidate's scan Job once (its name is derived from
// the policy and the digest, so a second create is refused and the Job adopted), reads its state,
// and deletes it once its result has been read. Creation and deletion are made as the
// ServiceAccount the policy acts as (tenancy: a tenant cannot run a Job with the operator's
// rights); reading is the operator's own.
import type { ImagePolicy } from '../api/v1alpha1/index.ts';
import { errorMessage, isAlreadyExists, isNotFound, toKubeError } from '../runtime/errors.ts';
import { actingAs, describeActor, type Actor } from '../runtime/impersonation.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import { scanJob, scanJobName, scanJobState, type OnDemandScanSpec, type ScanJobState } from '../verify/scan-job.ts';

class ScanJobError extends Error {}

export type FollowedScanJob = ScanJobState & { name: string };

export class ScanJobs {
  private readonly client: KubeClient;

  constructor(client: KubeClient) {
    this.client = client;
  }

  private path(namespace: string, name?: string): string {
    const base = `/apis/batch/v1/namespaces/${encodeURIComponent(namespace)}/jobs`;
    return name ? `${base}/${encodeURIComponent(name)}` : base;
  }

  private async read(namespace: string, name: string, signal?: AbortSignal): Promise<unknown> {
    try {
      return await this.client.requestJson<unknown>('GET', this.path(namespace, name), signal ? { signal } : {});
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new ScanJobError(`reading the scan Job ${namespace}/${name}: ${errorMessage(toKubeError(err))}`);
    }
  }

  /** The candidate's scan Job, created when it does not exist yet, and its state. */
  async follow(
    policy: ImagePolicy,
    spec: OnDemandScanSpec,
    repository: string,
    digest: string,
    actor: Actor | undefined,
    signal?: AbortSignal,
  ): Promise<FollowedScanJob> {
    const namespace = policy.metadata?.namespace ?? '';
    const name = scanJobName(policy.metadata?.name ?? '', digest);
    let job = await this.read(namespace, name, signal);
    if (job === undefined) {
      try {
        job = await actingAs(this.client, actor).requestJson<unknown>('POST', this.path(namespace), {
          body: scanJob(policy, spec, repository, digest),
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        if (!isAlreadyExists(err))
          throw new ScanJobError(
            `creating the scan Job ${namespace}/${name} as ${describeActor(actor)}: ${errorMessage(toKubeError(err))}`,
          );
        job = await this.read(namespace, name, signal);
      }
    }
    return { name, ...scanJobState(job) };
  }

  /** Deletes a scan Job whose result has been read (its pods with it); gone already is fine. */
  async remove(namespace: string, name: string, actor: Actor | undefined, signal?: AbortSignal): Promise<void> {
    try {
      await actingAs(this.client, actor).requestJson('DELETE', this.path(namespace, name), {
        query: { propagationPolicy: 'Background' },
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (isNotFound(err)) return;
      throw new ScanJobError(
        `deleting the scan Job ${namespace}/${name} as ${describeActor(actor)}: ${errorMessage(toKubeError(err))}`,
      );
    }
  }
}
