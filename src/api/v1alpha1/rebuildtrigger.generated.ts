// Generated from crds/rebuildtriggers.patchline.dev.yaml by scripts/generate-api-types.ts. Do not edit: change the CRD and run
// `npm run generate`. Timestamps are RFC 3339 strings, as the API server sends them.
import type { ObjectMeta } from '../../runtime/kube-types.ts';

/**
 * RebuildTrigger rebuilds an application image whenever one of the base images it is built
 * on gets a new digest: it follows the bases by digest, waits for them to settle and for
 * the maintenance window, starts exactly one build per new base digest through the
 * configured build service, follows the build, and confirms that the rebuilt image landed
 * and was built on the new base.
 */
export interface RebuildTrigger {
  /**
   * APIVersion defines the versioned schema of this representation of an object.
   */
  apiVersion?: string;
  /**
   * Kind is a string value representing the REST resource this object represents.
   */
  kind?: string;
  metadata?: ObjectMeta;
  /**
   * What to follow and how to rebuild.
   */
  spec: RebuildTriggerSpec;
  /**
   * What Patchline observed and did, kept here so that a restart or failover neither repeats
   * nor misses a build.
   */
  status?: RebuildTriggerStatus;
}

/**
 * What to follow and how to rebuild.
 */
export interface RebuildTriggerSpec {
  /**
   * The base images the target image is built on, each followed by digest. A new digest of
   * any of them starts a rebuild.
   */
  baseImages: BaseImage[];
  /**
   * How to start the rebuild. Exactly one provider is set. String values of arguments,
   * inputs, variables and parameters may use these substitutions: $(base.image),
   * $(base.digest) and $(base.ref) (image@digest) of the base whose change started the build,
   * $(target.image), and $(build.id), a correlation id unique to the build.
   */
  build: SpecBuild;
  /**
   * How many past builds status.history keeps.
   */
  historyLimit?: number;
  /**
   * How often the base images are checked when no registry webhook reports a push. One check
   * is shared by every resource that follows the same image.
   */
  interval?: string;
  /**
   * How to authenticate to the registries of the base and target images. Anonymous when empty.
   */
  registryAuth?: RegistryAuth;
  /**
   * A ServiceAccount of this namespace that Patchline acts as (Kubernetes impersonation) when
   * it creates its build objects (Jobs, Tekton PipelineRuns): the request has that
   * ServiceAccount's rights, not the operator's. Empty: the operator's
   * --default-service-account, or the operator itself when none is set.
   */
  serviceAccountName?: string;
  /**
   * How long a new base digest must stay unchanged before a build starts; another change
   * restarts the wait. Base images are often re-pushed several times while platforms are
   * added.
   */
  settle?: string;
  /**
   * Stop following and building; a build in progress is still followed to its end.
   */
  suspend?: boolean;
  /**
   * The application image the build publishes.
   */
  target: Target;
  /**
   * A maintenance window; builds start only inside it. Without one, builds start at any time.
   */
  window?: Window;
}

/**
 * One base image followed by digest.
 */
export interface BaseImage {
  /**
   * Image reference with a tag, for example mcr.microsoft.com/dotnet/aspnet:8.0. The tag is
   * followed by digest; without a tag, latest is followed.
   */
  image: string;
  /**
   * Only these platforms matter, as os/arch or os/arch/variant (linux/amd64, linux/arm64/v8).
   * When set, a new index digest starts a rebuild only if the digest of one of these
   * platforms changed. Empty means any change of the image's digest counts.
   */
  platforms?: string[];
}

/**
 * How to start the rebuild. Exactly one provider is set. String values of arguments,
 * inputs, variables and parameters may use these substitutions: $(base.image),
 * $(base.digest) and $(base.ref) (image@digest) of the base whose change started the build,
 * $(target.image), and $(build.id), a correlation id unique to the build.
 */
export interface SpecBuild {
  /**
   * Run an existing Azure Container Registry task, overriding its arguments.
   */
  acrTask?: ACRTask;
  /**
   * Run a Google Cloud Build trigger.
   */
  cloudBuild?: CloudBuild;
  /**
   * Start an AWS CodeBuild project.
   */
  codeBuild?: CodeBuild;
  /**
   * A Secret in the trigger's namespace holding the provider's credentials (keys per provider
   * are listed in the provider guide). Without it, the operator's workload identity is used
   * where the provider supports one. Credentials are never read from the trigger itself.
   */
  credentialsRef?: CredentialsRef;
  /**
   * Dispatch a GitHub Actions workflow (workflow_dispatch). The workflow should echo the
   * input patchline_build_id in its run-name so that the run can be found on servers that do
   * not return run details.
   */
  githubActions?: GithubActions;
  /**
   * Start a GitLab CI pipeline.
   */
  gitlab?: Gitlab;
  /**
   * Run a Kubernetes Job in the trigger's namespace (for example BuildKit rootless, or a
   * maintained kaniko fork). The pushed digest is read from the termination message of
   * digestContainer, or from the target tag.
   */
  job?: Job;
  /**
   * How many times a failed build is retried, with backoff, before the trigger stalls.
   */
  retries?: number;
  /**
   * Create a Tekton PipelineRun in the trigger's namespace.
   */
  tekton?: Tekton;
  /**
   * How long to follow a build before it counts as failed (Go duration, such as 1h).
   */
  timeout?: string;
  /**
   * POST a JSON body to a build service. The request is signed with HMAC-SHA256 over the body
   * (header X-Patchline-Signature: sha256=<hex>) when the credentials Secret has an hmacKey,
   * and carries a bearer token when it has a token. The build's status is read by polling
   * statusURL, or reported by the service to the operator's callback endpoint.
   */
  webhook?: Webhook;
}

/**
 * Run an existing Azure Container Registry task, overriding its arguments.
 */
export interface ACRTask {
  /**
   * Dedicated agent pool to run on; empty runs on the shared pool.
   */
  agentPoolName?: string;
  /**
   * Build arguments passed to the task, overriding its own (for example BASE_DIGEST).
   */
  arguments?: { [key: string]: string };
  /**
   * Name of the registry resource (myregistry, not myregistry.azurecr.io).
   */
  registry: string;
  /**
   * Resource group of the registry.
   */
  resourceGroup: string;
  /**
   * Azure subscription id of the registry.
   */
  subscriptionId: string;
  /**
   * Name of the task to run.
   */
  taskName: string;
}

/**
 * Run a Google Cloud Build trigger.
 */
export interface CloudBuild {
  /**
   * Branch to build; empty uses the trigger's own.
   */
  branch?: string;
  /**
   * Region of the trigger, or global.
   */
  location?: string;
  /**
   * Google Cloud project id.
   */
  projectId: string;
  /**
   * User substitutions; keys must start with an underscore (_BASE_DIGEST).
   */
  substitutions?: { [key: string]: string };
  /**
   * Id or name of the build trigger.
   */
  triggerId: string;
}

/**
 * Start an AWS CodeBuild project.
 */
export interface CodeBuild {
  /**
   * Environment variables overriding the project's, as plain text.
   */
  environment?: { [key: string]: string };
  /**
   * Name of the CodeBuild project.
   */
  projectName: string;
  /**
   * AWS region of the project, such as eu-west-1.
   */
  region: string;
  /**
   * Source version (branch, tag or commit) to build; empty uses the project's own.
   */
  sourceVersion?: string;
}

/**
 * A Secret in the trigger's namespace holding the provider's credentials (keys per provider
 * are listed in the provider guide). Without it, the operator's workload identity is used
 * where the provider supports one. Credentials are never read from the trigger itself.
 */
export interface CredentialsRef {
  /**
   * Name of the Secret.
   */
  name: string;
}

/**
 * Dispatch a GitHub Actions workflow (workflow_dispatch). The workflow should echo the
 * input patchline_build_id in its run-name so that the run can be found on servers that do
 * not return run details.
 */
export interface GithubActions {
  /**
   * API base URL; set it for GitHub Enterprise Server.
   */
  apiURL?: string;
  /**
   * Workflow inputs. GitHub allows at most 25, including patchline_build_id.
   */
  inputs?: { [key: string]: string };
  /**
   * Owner (user or organisation) of the repository.
   */
  owner: string;
  /**
   * Branch or tag to run the workflow on.
   */
  ref: string;
  /**
   * Repository name.
   */
  repository: string;
  /**
   * Workflow file name (build.yaml) or numeric id.
   */
  workflow: string;
}

/**
 * Start a GitLab CI pipeline.
 */
export interface Gitlab {
  /**
   * Numeric project id or URL-encoded path (group%2Fproject).
   */
  projectId: string;
  /**
   * Branch or tag to run the pipeline for.
   */
  ref: string;
  /**
   * Base URL of the GitLab instance.
   */
  url?: string;
  /**
   * Pipeline variables.
   */
  variables?: { [key: string]: string };
}

/**
 * Run a Kubernetes Job in the trigger's namespace (for example BuildKit rootless, or a
 * maintained kaniko fork). The pushed digest is read from the termination message of
 * digestContainer, or from the target tag.
 */
export interface Job {
  /**
   * Container whose termination message holds the pushed digest.
   */
  digestContainer?: string;
  /**
   * A batch/v1 JobSpec. Substitutions apply to container args and env values. The API server
   * validates the Job when it is created.
   */
  template: Record<string, unknown>;
}

/**
 * Create a Tekton PipelineRun in the trigger's namespace.
 */
export interface Tekton {
  /**
   * Name of the Pipeline result that carries the pushed image's digest.
   */
  digestResult?: string;
  /**
   * Pipeline parameters, as strings.
   */
  params?: { [key: string]: string };
  /**
   * The Pipeline to run.
   */
  pipelineRef: PipelineRef;
  /**
   * ServiceAccount the PipelineRun's tasks run as.
   */
  serviceAccountName?: string;
  /**
   * Workspace bindings, passed to the PipelineRun as they are (Tekton validates them).
   */
  workspaces?: Record<string, unknown>[];
}

/**
 * The Pipeline to run.
 */
export interface PipelineRef {
  /**
   * Name of the Pipeline in the trigger's namespace.
   */
  name: string;
}

/**
 * POST a JSON body to a build service. The request is signed with HMAC-SHA256 over the body
 * (header X-Patchline-Signature: sha256=<hex>) when the credentials Secret has an hmacKey,
 * and carries a bearer token when it has a token. The build's status is read by polling
 * statusURL, or reported by the service to the operator's callback endpoint.
 */
export interface Webhook {
  /**
   * JSON body template with the substitutions above. Empty sends a default body with the
   * trigger, base and target.
   */
  body?: string;
  /**
   * URL polled for the build's status; $(build.id) and the id returned by the service,
   * $(build.externalId), are substituted. Empty waits for a callback.
   */
  statusURL?: string;
  /**
   * URL to POST to.
   */
  url: string;
}

/**
 * How to authenticate to the registries of the base and target images. Anonymous when empty.
 */
export interface RegistryAuth {
  /**
   * Cloud identity of the operator to use for registries of that cloud: azure (ACR, Entra
   * ID), aws (ECR) or gcp (Artifact Registry). generic uses only the Secrets above.
   */
  provider?: RegistryAuthProvider;
  /**
   * A kubernetes.io/dockerconfigjson Secret in this namespace; it may hold several registries.
   */
  secretRef?: SecretRef;
  /**
   * A ServiceAccount in this namespace whose imagePullSecrets are used.
   */
  serviceAccountName?: string;
}

/**
 * Cloud identity of the operator to use for registries of that cloud: azure (ACR, Entra
 * ID), aws (ECR) or gcp (Artifact Registry). generic uses only the Secrets above.
 */
export type RegistryAuthProvider = 'aws' | 'azure' | 'gcp' | 'generic';

/**
 * A kubernetes.io/dockerconfigjson Secret in this namespace; it may hold several registries.
 */
export interface SecretRef {
  /**
   * Name of the Secret.
   */
  name: string;
}

/**
 * The application image the build publishes.
 */
export interface Target {
  /**
   * Image reference with a tag that the build pushes, for example
   * myregistry.azurecr.io/shop/web:1.4. Patchline watches this tag to learn when the rebuilt
   * image has landed.
   */
  image: string;
}

/**
 * A maintenance window; builds start only inside it. Without one, builds start at any time.
 */
export interface Window {
  /**
   * How long the window stays open after each opening.
   */
  duration?: string;
  /**
   * Cron expression (five fields: minute hour day-of-month month day-of-week, or a macro such
   * as @daily) for when the window opens, for example "0 2 * * 1-5".
   */
  schedule: string;
  /**
   * IANA time zone the schedule is read in, such as Europe/Berlin.
   */
  timeZone?: string;
}

/**
 * What Patchline observed and did, kept here so that a restart or failover neither repeats
 * nor misses a build.
 */
export interface RebuildTriggerStatus {
  /**
   * The current digest of each base image.
   */
  bases?: Base[];
  /**
   * The current or last build. Recorded before the provider is called, so that an interrupted
   * start is resolved, not repeated.
   */
  build?: StatusBuild;
  /**
   * Ready, Reconciling and Stalled (kstatus), Building (a build is in progress) and UpToDate
   * (the target was rebuilt on the current base digests).
   */
  conditions?: Condition[];
  /**
   * The last builds, newest first, at most spec.historyLimit.
   */
  history?: History[];
  /**
   * The last rebuilt target image confirmed in the registry.
   */
  landed?: Landed;
  /**
   * The last value of the patchline.dev/reconcile-requested-at annotation acted upon.
   */
  lastHandledReconcileAt?: string;
  /**
   * The metadata.generation this status reflects.
   */
  observedGeneration?: number;
  /**
   * A base change not yet built: it waits to settle, for the maintenance window, or for a
   * build slot. Cleared when its build is started.
   */
  pending?: Pending;
  /**
   * Where the rebuild cycle stands: Idle (bases unchanged since the last build), Settling
   * (waiting for a new base digest to stay unchanged), Waiting (for the maintenance window),
   * Queued (for a build slot), Building, Verifying (waiting for the rebuilt image), Landed,
   * Failed or Suspended.
   */
  phase?: StatusPhase;
}

/**
 * What is known of one base image.
 */
export interface Base {
  /**
   * When the current digest was first seen; the settle period counts from here.
   */
  changedAt?: string;
  /**
   * When the registry was last asked.
   */
  checkedAt?: string;
  /**
   * Current digest (the index digest for multi-platform images).
   */
  digest?: string;
  /**
   * The last error checking this image, if the last check failed.
   */
  error?: string;
  /**
   * The base image reference, as in spec.
   */
  image: string;
  /**
   * Digest of each followed platform's manifest, when spec.platforms is set.
   */
  platformDigests?: { [key: string]: string };
  /**
   * The digest before the current one.
   */
  previousDigest?: string;
  /**
   * The first 12 hex digits of digest, for display.
   */
  shortDigest?: string;
}

/**
 * The current or last build. Recorded before the provider is called, so that an interrupted
 * start is resolved, not repeated.
 */
export interface StatusBuild {
  /**
   * 1 for the first try, then counted up on each retry.
   */
  attempt?: number;
  /**
   * The base digest the build was started for.
   */
  baseDigest?: string;
  /**
   * The base image whose change started the build.
   */
  baseImage?: string;
  /**
   * Id Patchline gave the build, passed to the provider to find the run again after a restart.
   */
  correlationId?: string;
  /**
   * An id the build service returned besides the provider id (webhook provider).
   */
  externalId?: string;
  /**
   * When the build reached a terminal phase.
   */
  finishedAt?: string;
  /**
   * Why the last look at the build in flight failed (the build service unreachable, hanging,
   * or answering what is not a status); cleared by its next answer. The build is not failed
   * for it.
   */
  followError?: string;
  /**
   * The provider's id of the build (run id, build id, pipeline id, object name).
   */
  id?: string;
  /**
   * The provider's last message about the build.
   */
  message?: string;
  /**
   * Digest of the image the build pushed, when the provider reports it.
   */
  outputDigest?: string;
  /**
   * Starting (intent recorded, provider not yet confirmed), Queued, Running, Succeeded,
   * Failed, Cancelled, or Unknown.
   */
  phase?: BuildPhase;
  /**
   * The provider that runs the build.
   */
  provider?: BuildProvider;
  /**
   * When Patchline decided to start the build.
   */
  requestedAt?: string;
  /**
   * When a failed build will be tried again.
   */
  retryAt?: string;
  /**
   * Short hash of the base digests the build is for; one build per revision and attempt.
   */
  revision?: string;
  /**
   * When the provider accepted the build.
   */
  startedAt?: string;
  /**
   * The target image's digest when the build was requested; the rebuilt image is any other.
   */
  targetDigestBefore?: string;
  /**
   * Link to the build in the provider's console.
   */
  url?: string;
}

/**
 * Starting (intent recorded, provider not yet confirmed), Queued, Running, Succeeded,
 * Failed, Cancelled, or Unknown.
 */
export type BuildPhase = 'Cancelled' | 'Failed' | 'Queued' | 'Running' | 'Starting' | 'Succeeded' | 'Unknown';

/**
 * The provider that runs the build.
 */
export type BuildProvider =
  'acrTask' | 'cloudBuild' | 'codeBuild' | 'githubActions' | 'gitlab' | 'job' | 'tekton' | 'webhook';

/**
 * A condition of the resource, as metav1.Condition.
 */
export interface Condition {
  /**
   * When the status of the condition last changed.
   */
  lastTransitionTime: string;
  /**
   * Human-readable details.
   */
  message: string;
  /**
   * The metadata.generation the condition was set for.
   */
  observedGeneration?: number;
  /**
   * Machine-readable reason for the last transition, in CamelCase.
   */
  reason: string;
  /**
   * True, False or Unknown.
   */
  status: StatusEnum;
  /**
   * Type of the condition, in CamelCase.
   */
  type: string;
}

/**
 * True, False or Unknown.
 */
export type StatusEnum = 'False' | 'True' | 'Unknown';

/**
 * A finished build.
 */
export interface History {
  /**
   * Attempt number of the build.
   */
  attempt?: number;
  /**
   * Base digest the build was for.
   */
  baseDigest?: string;
  /**
   * When the build finished.
   */
  finishedAt?: string;
  /**
   * The provider's id of the build.
   */
  id?: string;
  /**
   * Last message about the build.
   */
  message?: string;
  /**
   * Digest the build produced.
   */
  outputDigest?: string;
  /**
   * Terminal phase of the build.
   */
  phase?: string;
  /**
   * Base revision the build was for.
   */
  revision?: string;
  /**
   * When the build started.
   */
  startedAt?: string;
  /**
   * Link to the build.
   */
  url?: string;
}

/**
 * The last rebuilt target image confirmed in the registry.
 */
export interface Landed {
  /**
   * When the landed image was confirmed.
   */
  at?: string;
  /**
   * The base digest the image declares it was built on, when it declares one.
   */
  baseDigest?: string;
  /**
   * The provider's id of the build that produced it.
   */
  buildId?: string;
  /**
   * Digest of the target image.
   */
  digest?: string;
  /**
   * Verified (the image declares the new base digest), Mismatch (it declares another), or
   * Unknown (it declares none).
   */
  provenance?: Provenance;
  /**
   * The base revision the landed image was built for.
   */
  revision?: string;
}

/**
 * Verified (the image declares the new base digest), Mismatch (it declares another), or
 * Unknown (it declares none).
 */
export type Provenance = 'Mismatch' | 'Unknown' | 'Verified';

/**
 * A base change not yet built: it waits to settle, for the maintenance window, or for a
 * build slot. Cleared when its build is started.
 */
export interface Pending {
  /**
   * Its new digest.
   */
  baseDigest?: string;
  /**
   * The base image whose change is pending.
   */
  baseImage?: string;
  /**
   * When the change became ready to build (settled, inside the window); the build queue is
   * served in this order.
   */
  readyAt?: string;
  /**
   * Short hash of the digests of every base image (of the followed platforms) the build will
   * be for.
   */
  revision?: string;
  /**
   * When the bases will have been unchanged for spec.settle.
   */
  settleUntil?: string;
  /**
   * When the last base change was seen; the settle period counts from here.
   */
  since?: string;
}

/**
 * Where the rebuild cycle stands: Idle (bases unchanged since the last build), Settling
 * (waiting for a new base digest to stay unchanged), Waiting (for the maintenance window),
 * Queued (for a build slot), Building, Verifying (waiting for the rebuilt image), Landed,
 * Failed or Suspended.
 */
export type StatusPhase =
  'Building' | 'Failed' | 'Idle' | 'Landed' | 'Queued' | 'Settling' | 'Suspended' | 'Verifying' | 'Waiting';
