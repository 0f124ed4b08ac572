// Generated from crds/imagepolicies.patchline.dev.yaml by scripts/generate-api-types.ts. Do not edit: change the CRD and run
// `npm run generate`. Timestamps are RFC 3339 strings, as the API server sends them.
import type { ObjectMeta } from '../../runtime/kube-types.ts';

/**
 * ImagePolicy keeps a set of workloads on the newest acceptable digest of an image: it
 * follows the image (a tag by digest, a semver range or a tag pattern), checks each
 * candidate (approved registries, age, provenance, signature, vulnerabilities), pins the
 * workloads' containers to the accepted digest, follows the rollout until the pods run it,
 * and rolls back when it fails. Status reports, per workload and container, what runs and
 * what should.
 */
export interface ImagePolicy {
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
   * What to follow, what to accept, where to roll it and how.
   */
  spec: ImagePolicySpec;
  /**
   * What Patchline observed and did.
   */
  status?: ImagePolicyStatus;
}

/**
 * What to follow, what to accept, where to roll it and how.
 */
export interface ImagePolicySpec {
  /**
   * Which tag to follow. Exactly one of tag, semver or pattern is set.
   */
  follow: Follow;
  /**
   * The repository to follow, without tag or digest, for example
   * myregistry.azurecr.io/shop/web. The tag is chosen by spec.follow.
   */
  image: string;
  /**
   * How often the tag list and the chosen tag are checked when no registry webhook reports a
   * push. One check is shared by every resource that follows the same image.
   */
  interval?: string;
  /**
   * How to authenticate to the image's registry. Anonymous when empty.
   */
  registryAuth?: RegistryAuth;
  /**
   * How accepted digests reach the workloads.
   */
  rollout?: Rollout;
  /**
   * A ServiceAccount of this namespace that Patchline acts as (Kubernetes impersonation) when
   * it changes its workloads (pins and releases images): the request has that
   * ServiceAccount's rights, not the operator's. Empty: the operator's
   * --default-service-account, or the operator itself when none is set.
   */
  serviceAccountName?: string;
  /**
   * Stop following, checking and rolling; a rollout in progress is still followed to its end.
   */
  suspend?: boolean;
  /**
   * Checks a candidate image must pass before it is rolled out; the same rules are reported
   * as violations for containers already running.
   */
  verify?: Verify;
  /**
   * The workloads in this namespace that run the image. At least one of selector or names is
   * set.
   */
  workloads: Workloads;
}

/**
 * Which tag to follow. Exactly one of tag, semver or pattern is set.
 */
export interface Follow {
  /**
   * Follow the highest tag matching a regular expression, ordered by a captured part.
   */
  pattern?: Pattern;
  /**
   * Follow the highest tag within a semantic version range.
   */
  semver?: Semver;
  /**
   * Follow this one tag by digest (for example 1.4): every new digest pushed to it is a
   * candidate.
   */
  tag?: string;
}

/**
 * Follow the highest tag matching a regular expression, ordered by a captured part.
 */
export interface Pattern {
  /**
   * What to order by, with $name or $1 for captured groups (for example $ts). Empty orders by
   * the whole tag.
   */
  extract?: string;
  /**
   * Numerical (the extracted part is a number) or Alphabetical. The highest wins.
   */
  order?: Order;
  /**
   * Regular expression a tag must match, for example ^main-[a-f0-9]+-(?P<ts>[0-9]+)$.
   */
  regex: string;
}

/**
 * Numerical (the extracted part is a number) or Alphabetical. The highest wins.
 */
export type Order = 'Alphabetical' | 'Numerical';

/**
 * Follow the highest tag within a semantic version range.
 */
export interface Semver {
  /**
   * Whether pre-release tags (1.5.0-rc.1) count.
   */
  includePrerelease?: boolean;
  /**
   * A semver range, such as ">=1.4.0 <2.0.0" or "~1.4".
   */
  range: string;
}

/**
 * How to authenticate to the image's registry. Anonymous when empty.
 */
export interface RegistryAuth {
  /**
   * Cloud identity of the operator to use for registries of that cloud: azure (ACR, Entra
   * ID), aws (ECR) or gcp (Artifact Registry). generic uses only the Secrets above.
   */
  provider?: Provider;
  /**
   * A kubernetes.io/dockerconfigjson Secret in this namespace.
   */
  secretRef?: RegistryAuthSecretRef;
  /**
   * A ServiceAccount in this namespace whose imagePullSecrets are used.
   */
  serviceAccountName?: string;
}

/**
 * Cloud identity of the operator to use for registries of that cloud: azure (ACR, Entra
 * ID), aws (ECR) or gcp (Artifact Registry). generic uses only the Secrets above.
 */
export type Provider = 'aws' | 'azure' | 'gcp' | 'generic';

/**
 * A kubernetes.io/dockerconfigjson Secret in this namespace.
 */
export interface RegistryAuthSecretRef {
  /**
   * Name of the Secret.
   */
  name: string;
}

/**
 * How accepted digests reach the workloads.
 */
export interface Rollout {
  /**
   * Where GitOps mode writes accepted digests, and how.
   */
  gitOps?: RolloutGitOps;
  /**
   * How many workloads roll at the same time.
   */
  maxConcurrent?: number;
  /**
   * Auto pins accepted digests on the workloads (server-side apply); Manual waits for the
   * patchline.dev/approve-digest annotation naming the digest, then pins it; GitOps writes
   * the digest to git through the GitWriteBack named in gitOps and follows the workloads
   * until the GitOps engine has applied it (a failed rollout is reverted in git). GitOps
   * never writes to the workloads.
   */
  mode?: Mode;
  /**
   * How long a workload may take to run the new digest on every ready pod before it counts as
   * failed.
   */
  progressDeadline?: string;
  /**
   * Roll a failed workload back to its previous digest. The failed digest is not retried
   * until a newer one is accepted.
   */
  rollbackOnFailure?: boolean;
  /**
   * A maintenance window; rollouts start only inside it. Without one, they start at any time.
   */
  window?: Window;
}

/**
 * Where GitOps mode writes accepted digests, and how.
 */
export interface RolloutGitOps {
  /**
   * Also write Argo CD's parameter override file for an Application, as Argo CD reads it and
   * Argo CD Image Updater writes it: <path>/.argocd-source-<application>.yaml, with a
   * kustomize images entry, or Helm parameters when helm is set. No markers are needed for it.
   */
  argocd?: Argocd;
  /**
   * How a marked image value is written: TagAndDigest (repo:tag@sha256:…), Digest
   * (repo@sha256:…) or Tag (repo:tag; the digest is then not pinned). Markers with a suffix
   * (:name, :tag, :digest, :tag@digest) write that part only.
   */
  format?: Format;
  /**
   * The GitWriteBack (in this namespace) that writes this policy's digests to git.
   */
  writeBackRef: WriteBackRef;
}

/**
 * Also write Argo CD's parameter override file for an Application, as Argo CD reads it and
 * Argo CD Image Updater writes it: <path>/.argocd-source-<application>.yaml, with a
 * kustomize images entry, or Helm parameters when helm is set. No markers are needed for it.
 */
export interface Argocd {
  /**
   * A kustomize images alias (alias=image) when the manifests name the image differently.
   */
  alias?: string;
  /**
   * The Application's name as in the file name (namespace_name when the Application is not in
   * Argo CD's own namespace).
   */
  application: string;
  /**
   * Write Helm parameters instead of a kustomize images entry.
   */
  helm?: Helm;
  /**
   * The Application's source path in the repository ('.' for the root).
   */
  path: string;
}

/**
 * Write Helm parameters instead of a kustomize images entry.
 */
export interface Helm {
  /**
   * The parameter holding the digest, when the chart has one.
   */
  digest?: string;
  /**
   * The parameter holding the repository, such as image.repository.
   */
  image: string;
  /**
   * The parameter holding the tag, such as image.tag; it gets tag@digest unless digest is set
   * (or the format is Tag).
   */
  tag?: string;
}

/**
 * How a marked image value is written: TagAndDigest (repo:tag@sha256:…), Digest
 * (repo@sha256:…) or Tag (repo:tag; the digest is then not pinned). Markers with a suffix
 * (:name, :tag, :digest, :tag@digest) write that part only.
 */
export type Format = 'Digest' | 'Tag' | 'TagAndDigest';

/**
 * The GitWriteBack (in this namespace) that writes this policy's digests to git.
 */
export interface WriteBackRef {
  /**
   * Name of the GitWriteBack.
   */
  name: string;
}

/**
 * Auto pins accepted digests on the workloads (server-side apply); Manual waits for the
 * patchline.dev/approve-digest annotation naming the digest, then pins it; GitOps writes
 * the digest to git through the GitWriteBack named in gitOps and follows the workloads
 * until the GitOps engine has applied it (a failed rollout is reverted in git). GitOps
 * never writes to the workloads.
 */
export type Mode = 'Auto' | 'GitOps' | 'Manual';

/**
 * A maintenance window; rollouts start only inside it. Without one, they start at any time.
 */
export interface Window {
  /**
   * How long the window stays open after each opening.
   */
  duration?: string;
  /**
   * Cron expression (five fields: minute hour day-of-month month day-of-week, or a macro such
   * as @daily) for when the window opens, for example "0 2 * * *".
   */
  schedule: string;
  /**
   * IANA time zone the schedule is read in, such as Europe/Berlin.
   */
  timeZone?: string;
}

/**
 * Checks a candidate image must pass before it is rolled out; the same rules are reported
 * as violations for containers already running.
 */
export interface Verify {
  /**
   * With runAsNonRoot, the only user ids a selected container may run as. A user that is a
   * name only the image's /etc/passwd resolves is refused then (its uid is not known).
   */
  allowedUserIds?: number[];
  /**
   * Oldest acceptable image, by the created time in its config (Go duration, such as 720h).
   * Older candidates are refused; older running images are reported as stale.
   */
  maxAge?: string;
  /**
   * Checks on what the image was built from.
   */
  provenance?: Provenance;
  /**
   * Approved registries, as a host or host/path prefix (myregistry.azurecr.io, ghcr.io/acme).
   * Empty approves any registry.
   */
  registries?: string[];
  /**
   * Report running containers whose image is referenced by tag only, not pinned by digest.
   */
  requireDigest?: boolean;
  /**
   * Refuse a candidate that would run as root in a selected container, or that the kubelet
   * would not start there (runAsNonRoot set, and the image's user root or a name it cannot
   * check): the image config's User, unless the pod's or container's securityContext sets
   * runAsUser.
   */
  runAsNonRoot?: boolean;
  /**
   * Exposed-secret gate, from Trivy Operator ExposedSecretReports: keys, tokens and passwords
   * found in an image's files.
   */
  secrets?: VerifySecrets;
  /**
   * The image must carry a valid signature from one of these authorities (any one suffices):
   * a cosign signature by a key or keyless identity, or a Notary Project signature (notation,
   * Azure Container Registry's signing) accepted by a trust policy.
   */
  signature?: Signature;
  /**
   * Vulnerability gate, from Trivy Operator reports or vulnerability attestations.
   */
  vulnerabilities?: VerifyVulnerabilities;
}

/**
 * Checks on what the image was built from.
 */
export interface Provenance {
  /**
   * The image must declare its base (the org.opencontainers.image.base.digest annotation or a
   * provenance attestation), and that base must be the base image's current digest.
   */
  requireBase?: boolean;
}

/**
 * Exposed-secret gate, from Trivy Operator ExposedSecretReports: keys, tokens and passwords
 * found in an image's files.
 */
export interface VerifySecrets {
  /**
   * Exposed secrets to accept until a date, each with a reason.
   */
  allow?: SecretsAllow[];
  /**
   * The highest severity allowed. An image with an exposed secret above it is refused (NONE
   * refuses every secret; a secret of unknown severity is always above).
   */
  maxSeverity: MaxSeverity;
  /**
   * A candidate must have an ExposedSecretReport (anywhere in the cluster) to be accepted.
   * With false, an unscanned candidate passes and is judged once Trivy Operator reports on it
   * running.
   */
  requireScan?: boolean;
}

/**
 * An accepted exposed secret, by the scanner's rule id and optionally its file.
 */
export interface SecretsAllow {
  /**
   * Last day (YYYY-MM-DD, UTC) the secret is accepted.
   */
  expires: string;
  /**
   * Only in this file (the report's target); any file when absent.
   */
  path?: string;
  /**
   * Why it is accepted.
   */
  reason: string;
  /**
   * The scanner's rule id, such as aws-access-key-id or private-key.
   */
  ruleId: string;
}

/**
 * The highest severity allowed. An image with an exposed secret above it is refused (NONE
 * refuses every secret; a secret of unknown severity is always above).
 *
 * The highest severity allowed. An image with a finding above it is refused (HIGH refuses
 * CRITICAL findings; MEDIUM refuses HIGH and CRITICAL).
 */
export type MaxSeverity = 'CRITICAL' | 'HIGH' | 'LOW' | 'MEDIUM' | 'NONE';

/**
 * The image must carry a valid signature from one of these authorities (any one suffices):
 * a cosign signature by a key or keyless identity, or a Notary Project signature (notation,
 * Azure Container Registry's signing) accepted by a trust policy.
 */
export interface Signature {
  /**
   * Identities of keyless (Fulcio) signers.
   */
  keyless?: Keyless[];
  /**
   * Public keys, each in a Secret in this namespace or in a cloud KMS.
   */
  keys?: Key[];
  /**
   * Notary Project trust policies, as notation's trustpolicy.json has them: the signature's
   * certificate chain must reach a certificate of the trust stores, its signer must be a
   * trusted identity, and the checks the verification level enforces must pass. For an image,
   * the policies whose registryScopes name its repository apply, else those scoped "*".
   */
  notation?: Notation[];
}

/**
 * A signer identity: an issuer and a subject, each exact or as a regular expression.
 */
export interface Keyless {
  /**
   * OIDC issuer, such as https://token.actions.githubusercontent.com.
   */
  issuer?: string;
  /**
   * Regular expression for the OIDC issuer.
   */
  issuerRegExp?: string;
  /**
   * Certificate subject (an email or a workflow URL).
   */
  subject?: string;
  /**
   * Regular expression for the certificate subject.
   */
  subjectRegExp?: string;
}

/**
 * A public key (PEM) in a Secret, or a key in a cloud KMS.
 */
export interface Key {
  /**
   * Accept signatures made with this key that have no transparency-log (Rekor) entry, as
   * cosign --insecure-ignore-tlog does. Without it, a key signature needs a Rekor entry that
   * the Sigstore trust root proves.
   */
  ignoreTlog?: boolean;
  /**
   * A key in a cloud KMS, as cosign names it: awskms://[ENDPOINT]/[ID|ALIAS|ARN],
   * azurekms://[VAULT]/[KEY][/VERSION] or
   * gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V. Only its
   * public key is read, with the operator's cloud identity, and cached for an hour.
   */
  kms?: string;
  /**
   * The Secret and key holding the PEM public key.
   */
  secretRef?: KeySecretRef;
}

/**
 * The Secret and key holding the PEM public key.
 */
export interface KeySecretRef {
  /**
   * Key in the Secret's data.
   */
  key?: string;
  /**
   * Name of the Secret.
   */
  name: string;
}

export interface Notation {
  /**
   * strict enforces every check; permissive enforces integrity and authenticity and only logs
   * authentic timestamp, expiry and revocation; audit enforces integrity only.
   */
  level?: Level;
  /**
   * A name for messages (default notation[i]).
   */
  name?: string;
  /**
   * Per-check actions that replace the level's (integrity cannot be relaxed).
   */
  override?: Override;
  /**
   * Repositories (registry/repository, no tag) the policy applies to, or "*" for all.
   */
  registryScopes?: string[];
  /**
   * Who may sign: "x509.subject: C=US, ST=WA, O=Acme, …" (the signing certificate's subject
   * must carry these attributes; C, ST and O are required), or "*".
   */
  trustedIdentities: string[];
  /**
   * Certificates (PEM) the signatures must chain to, and CRLs (PEM "X509 CRL" blocks) for
   * revocation, from Secrets or ConfigMaps in this namespace.
   */
  trustStores: TrustStore[];
}

/**
 * strict enforces every check; permissive enforces integrity and authenticity and only logs
 * authentic timestamp, expiry and revocation; audit enforces integrity only.
 */
export type Level = 'audit' | 'permissive' | 'strict';

/**
 * Per-check actions that replace the level's (integrity cannot be relaxed).
 */
export interface Override {
  /**
   * Enforce or only log that the chain reaches the trust store and the signer is trusted.
   */
  authenticity?: AuthenticTimestamp;
  /**
   * Enforce or only log that the certificates are valid (now, or at the authentic signing
   * time).
   */
  authenticTimestamp?: AuthenticTimestamp;
  /**
   * Enforce or only log the signature expiry.
   */
  expiry?: AuthenticTimestamp;
  /**
   * Enforce, only log, or skip the revocation check against the trust store CRLs.
   */
  revocation?: Revocation;
}

/**
 * Enforce or only log that the certificates are valid (now, or at the authentic signing
 * time).
 *
 * Enforce or only log that the chain reaches the trust store and the signer is trusted.
 *
 * Enforce or only log the signature expiry.
 */
export type AuthenticTimestamp = 'enforce' | 'log';

/**
 * Enforce, only log, or skip the revocation check against the trust store CRLs.
 */
export type Revocation = 'enforce' | 'log' | 'skip';

export interface TrustStore {
  /**
   * A ConfigMap whose data holds the certificates (all keys, or one).
   */
  configMapRef?: ConfigMapRef;
  /**
   * A Secret whose data holds the certificates (all keys, or one).
   */
  secretRef?: TrustStoreSecretRef;
  /**
   * ca (signatures made with a CA-issued or self-signed certificate, scheme notary.x509) or
   * signingAuthority (scheme notary.x509.signingAuthority).
   */
  type?: TrustStoreType;
}

/**
 * A ConfigMap whose data holds the certificates (all keys, or one).
 */
export interface ConfigMapRef {
  /**
   * Only this key of the data (default all keys).
   */
  key?: string;
  /**
   * Name of the ConfigMap.
   */
  name: string;
}

/**
 * A Secret whose data holds the certificates (all keys, or one).
 */
export interface TrustStoreSecretRef {
  /**
   * Only this key of the data (default all keys).
   */
  key?: string;
  /**
   * Name of the Secret.
   */
  name: string;
}

/**
 * ca (signatures made with a CA-issued or self-signed certificate, scheme notary.x509) or
 * signingAuthority (scheme notary.x509.signingAuthority).
 */
export type TrustStoreType = 'ca' | 'signingAuthority';

/**
 * Vulnerability gate, from Trivy Operator reports or vulnerability attestations.
 */
export interface VerifyVulnerabilities {
  /**
   * Findings to accept until a date, each with a reason.
   */
  allow?: VulnerabilitiesAllow[];
  /**
   * Ignore findings that have no fixed version.
   */
  ignoreUnfixed?: boolean;
  /**
   * The highest severity allowed. An image with a finding above it is refused (HIGH refuses
   * CRITICAL findings; MEDIUM refuses HIGH and CRITICAL).
   */
  maxSeverity: MaxSeverity;
  /**
   * When no source has scanned the candidate, scan it now: Patchline creates a Job in this
   * namespace (as spec.serviceAccountName, or the default ServiceAccount it acts as) that
   * runs Trivy on the digest and attaches a cosign vulnerability attestation signed with the
   * key in signingKeySecretName; the attestation, verified with publicKey, then judges it.
   * The candidate waits (ScanPending) while the Job runs; the Job is deleted once its result
   * has been read, and owned by the policy.
   */
  onDemandScan?: OnDemandScan;
  /**
   * A candidate must have been scanned: a Trivy Operator VulnerabilityReport for its digest
   * (anywhere in the cluster), or a vulnerability attestation signed by one of
   * verify.signature's authorities, or a finished scan of one of the registry scanners. With
   * false, an unscanned candidate passes and is judged once Trivy Operator reports on it
   * running.
   */
  requireScan?: boolean;
  /**
   * Registry scanners asked about a candidate before it runs anywhere, in order, after Trivy
   * Operator's reports: the first that has finished a scan of the digest judges it. While one
   * is still scanning, the candidate waits (Ready False, reason ScanPending) for at most
   * scanTimeout.
   */
  scanners?: Scanner[];
  /**
   * How long a candidate waits for a registry scanner that is still scanning it, from when it
   * was first seen waiting; after that it is refused. Go duration.
   */
  scanTimeout?: string;
}

/**
 * An accepted finding.
 */
export interface VulnerabilitiesAllow {
  /**
   * Last day (YYYY-MM-DD, UTC) the finding is accepted.
   */
  expires: string;
  /**
   * The vulnerability id, such as CVE-2024-3094 or GHSA-xxxx-xxxx-xxxx.
   */
  id: string;
  /**
   * Why the finding is accepted.
   */
  reason: string;
}

/**
 * When no source has scanned the candidate, scan it now: Patchline creates a Job in this
 * namespace (as spec.serviceAccountName, or the default ServiceAccount it acts as) that
 * runs Trivy on the digest and attaches a cosign vulnerability attestation signed with the
 * key in signingKeySecretName; the attestation, verified with publicKey, then judges it.
 * The candidate waits (ScanPending) while the Job runs; the Job is deleted once its result
 * has been read, and owned by the policy.
 */
export interface OnDemandScan {
  /**
   * The cosign image of the default Job.
   */
  cosignImage?: string;
  /**
   * The public key that verifies the scan's attestations.
   */
  publicKey: PublicKey;
  /**
   * A kubernetes.io/dockerconfigjson Secret mounted into the Job, with which Trivy pulls and
   * cosign pushes the attestation (default: none, anonymous).
   */
  registryAuthSecretName?: string;
  /**
   * A Secret with cosign.key and cosign.password, mounted into the scan Job only (Patchline
   * never reads it).
   */
  signingKeySecretName: string;
  /**
   * A pod template replacing the default Job's (restartPolicy Never is kept); $(image)
   * (repository@digest) and $(digest) are substituted in every string, as in build templates.
   * It must attach a vulnerability attestation that publicKey verifies.
   */
  template?: Record<string, unknown>;
  /**
   * How long the Job may run (its activeDeadlineSeconds). Go duration.
   */
  timeout?: string;
  /**
   * The Trivy image of the default Job.
   */
  trivyImage?: string;
}

/**
 * The public key that verifies the scan's attestations.
 */
export interface PublicKey {
  /**
   * The Secret and key holding the PEM public key.
   */
  secretRef: PublicKeySecretRef;
}

/**
 * The Secret and key holding the PEM public key.
 */
export interface PublicKeySecretRef {
  /**
   * Key in the Secret's data.
   */
  key?: string;
  /**
   * Name of the Secret.
   */
  name: string;
}

export interface Scanner {
  /**
   * A Secret in this namespace with the API credentials: username and password (a Harbor
   * robot account), or token (a Quay OAuth application token). Default: the registry
   * credentials the policy pulls with (harbor), anonymous (quay).
   */
  secretRef?: ScannerSecretRef;
  /**
   * Azure subscriptions to query (defender); default all the identity can read.
   */
  subscriptions?: string[];
  /**
   * harbor (artifact scan overview and vulnerability additions), ecr (basic and enhanced
   * scanning, with the operator's AWS identity), artifactAnalysis (Google Artifact Registry,
   * with the operator's Google identity), defender (Microsoft Defender for Containers through
   * Azure Resource Graph, with the operator's Entra identity) or quay (manifest security,
   * Clair).
   */
  type: ScannerType;
  /**
   * The API's base URL (harbor, quay); default https://<the image's registry>.
   */
  url?: string;
}

/**
 * A Secret in this namespace with the API credentials: username and password (a Harbor
 * robot account), or token (a Quay OAuth application token). Default: the registry
 * credentials the policy pulls with (harbor), anonymous (quay).
 */
export interface ScannerSecretRef {
  /**
   * Name of the Secret.
   */
  name: string;
}

/**
 * harbor (artifact scan overview and vulnerability additions), ecr (basic and enhanced
 * scanning, with the operator's AWS identity), artifactAnalysis (Google Artifact Registry,
 * with the operator's Google identity), defender (Microsoft Defender for Containers through
 * Azure Resource Graph, with the operator's Entra identity) or quay (manifest security,
 * Clair).
 */
export type ScannerType = 'artifactAnalysis' | 'defender' | 'ecr' | 'harbor' | 'quay';

/**
 * The workloads in this namespace that run the image. At least one of selector or names is
 * set.
 */
export interface Workloads {
  /**
   * Names of the containers to manage. Empty means every container (and init container) whose
   * image is in spec.image's repository.
   */
  containers?: string[];
  /**
   * Workload kinds to consider.
   */
  kinds?: Kind[];
  /**
   * Names of workloads, in addition to those the selector matches.
   */
  names?: string[];
  /**
   * Label selector for the workloads.
   */
  selector?: Selector;
}

/**
 * Deployment, StatefulSet or DaemonSet.
 */
export type Kind = 'DaemonSet' | 'Deployment' | 'StatefulSet';

/**
 * Label selector for the workloads.
 */
export interface Selector {
  /**
   * Label requirements, ANDed.
   */
  matchExpressions?: MatchExpression[];
  /**
   * Labels a workload must carry, as key/value pairs.
   */
  matchLabels?: { [key: string]: string };
}

/**
 * A label requirement.
 */
export interface MatchExpression {
  /**
   * The label key.
   */
  key: string;
  /**
   * In, NotIn, Exists or DoesNotExist.
   */
  operator: Operator;
  /**
   * Values for In and NotIn; empty for Exists and DoesNotExist.
   */
  values?: string[];
}

/**
 * In, NotIn, Exists or DoesNotExist.
 */
export type Operator = 'DoesNotExist' | 'Exists' | 'In' | 'NotIn';

/**
 * What Patchline observed and did.
 */
export interface ImagePolicyStatus {
  /**
   * Ready, Reconciling and Stalled (kstatus), Compliant (every selected container runs an
   * acceptable image) and RolloutProgressing (a rollout is under way).
   */
  conditions?: Condition[];
  /**
   * A digest whose rollout failed; it is not tried again until a newer digest is accepted or
   * a reconcile is requested.
   */
  failedDigest?: string;
  /**
   * GitOps mode, what git should say for this policy and where it stands.
   */
  gitOps?: StatusGitOps;
  /**
   * The last value of the patchline.dev/reconcile-requested-at annotation acted upon.
   */
  lastHandledReconcileAt?: string;
  /**
   * The newest candidate and whether it was accepted.
   */
  latest?: Latest;
  /**
   * The metadata.generation this status reflects.
   */
  observedGeneration?: number;
  /**
   * Containers running the desired digest out of those selected, as n/m (for display).
   */
  upToDate?: string;
  /**
   * Containers that run images breaking a rule of spec.verify (unapproved registry, not
   * pinned, too old, ...).
   */
  violations?: Violation[];
  /**
   * Every selected workload container, what it runs and what it should run.
   */
  workloads?: Workload[];
}

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
 * GitOps mode, what git should say for this policy and where it stands.
 */
export interface StatusGitOps {
  /**
   * The commit that carries the desired value, once the GitWriteBack pushed it.
   */
  commit?: string;
  /**
   * When that commit was pushed.
   */
  committedAt?: string;
  /**
   * The value to write (the accepted digest, or the previous one to revert a failed rollout).
   */
  desired?: Desired;
  /**
   * What the GitWriteBack said of this policy (why nothing was written, when nothing was).
   */
  message?: string;
  /**
   * The value git said before the desired one (what a revert writes back).
   */
  previous?: Previous;
  /**
   * The pull request that proposes the desired value, while it waits for review.
   */
  pullRequest?: string;
}

/**
 * The value to write (the accepted digest, or the previous one to revert a failed rollout).
 */
export interface Desired {
  /**
   * The digest.
   */
  digest?: string;
  /**
   * Rollout (a newly accepted digest) or Revert (a failed rollout undone).
   */
  reason?: Reason;
  /**
   * When this value was decided.
   */
  since?: string;
  /**
   * The tag written with it.
   */
  tag?: string;
}

/**
 * Rollout (a newly accepted digest) or Revert (a failed rollout undone).
 */
export type Reason = 'Revert' | 'Rollout';

/**
 * The value git said before the desired one (what a revert writes back).
 */
export interface Previous {
  /**
   * The digest.
   */
  digest?: string;
  /**
   * The tag written with it.
   */
  tag?: string;
}

/**
 * The newest candidate and whether it was accepted.
 */
export interface Latest {
  /**
   * When the candidate was last checked.
   */
  checkedAt?: string;
  /**
   * The result of each check.
   */
  checks?: Check[];
  /**
   * The tag's digest (the index digest for multi-platform images).
   */
  digest?: string;
  /**
   * Since when the candidate has been waiting for a registry scanner still scanning it
   * (verify.vulnerabilities.scanTimeout counts from here).
   */
  pendingSince?: string;
  /**
   * The first 12 hex digits of digest, for display.
   */
  shortDigest?: string;
  /**
   * The tag chosen.
   */
  tag?: string;
  /**
   * Whether every check passed.
   */
  verified?: boolean;
}

/**
 * One check's result.
 */
export interface Check {
  /**
   * The vulnerabilities check only, the scan's findings by severity (for the evidence of a
   * pull request).
   */
  findings?: Findings;
  /**
   * Why it passed or failed.
   */
  message?: string;
  /**
   * The check (registry, digest, age, provenance, signature, vulnerabilities, user, secrets).
   */
  name: string;
  /**
   * Whether it passed.
   */
  passed: boolean;
  /**
   * Not passed yet, but not refused: the answer is being waited for (a registry scanner still
   * scanning the candidate).
   */
  pending?: boolean;
}

/**
 * The vulnerabilities check only, the scan's findings by severity (for the evidence of a
 * pull request).
 */
export interface Findings {
  /**
   * Findings of severity CRITICAL.
   */
  critical?: number;
  /**
   * Findings of severity HIGH.
   */
  high?: number;
  /**
   * Findings of severity LOW.
   */
  low?: number;
  /**
   * Findings of severity MEDIUM.
   */
  medium?: number;
  /**
   * Findings of severity UNKNOWN.
   */
  unknown?: number;
}

/**
 * One broken rule.
 */
export interface Violation {
  /**
   * Name of the container.
   */
  container: string;
  /**
   * The image the container runs.
   */
  image?: string;
  /**
   * Details.
   */
  message?: string;
  /**
   * The rule broken (registry, digest, age, provenance, signature, vulnerabilities, user,
   * secrets).
   */
  rule: string;
  /**
   * Kind/name of the workload.
   */
  workload: string;
}

/**
 * One container of one workload.
 */
export interface Workload {
  /**
   * When the image at runningDigest was built: the created time in its config (absent when
   * the config has none, or has the epoch as reproducible builds do).
   */
  builtAt?: string;
  /**
   * GitOps mode, the commit that carries the desired digest (set once it is pushed).
   */
  commit?: string;
  /**
   * Name of the container.
   */
  container: string;
  /**
   * Digest the container should run.
   */
  desiredDigest?: string;
  /**
   * Deployment, StatefulSet or DaemonSet.
   */
  kind: Kind;
  /**
   * Details of the state.
   */
  message?: string;
  /**
   * Name of the workload.
   */
  name: string;
  /**
   * Digest before the last rollout; the rollback target.
   */
  previousDigest?: string;
  /**
   * The field manager that last set the image back.
   */
  revertedBy?: string;
  /**
   * How many times another field manager set the image back after Patchline pinned the
   * desired digest; at 2 Patchline stops re-pinning it (state Blocked).
   */
  reverts?: number;
  /**
   * Digest the workload's ready pods run, from their containerStatuses; empty when they
   * disagree.
   */
  runningDigest?: string;
  /**
   * What the secret scan of the running digest found (Trivy Operator ExposedSecretReport):
   * counts and rule ids, never the secrets; absent until the digest has been scanned.
   */
  secrets?: WorkloadSecrets;
  /**
   * When the container entered this state.
   */
  since?: string;
  /**
   * UpToDate, Rolling, Failed, Blocked (a check or the window holds it back), PendingApproval
   * (Manual mode) or Pending.
   */
  state?: State;
  /**
   * With verify.runAsNonRoot, who the container runs as and where that comes from: "uid 65532
   * (image)", "root (pod securityContext)", or a name that only the image's /etc/passwd
   * resolves.
   */
  user?: string;
  /**
   * What the scan of the running digest found, by severity (Trivy Operator
   * VulnerabilityReport); absent until the digest has been scanned.
   */
  vulnerabilities?: WorkloadVulnerabilities;
}

/**
 * What the secret scan of the running digest found (Trivy Operator ExposedSecretReport):
 * counts and rule ids, never the secrets; absent until the digest has been scanned.
 */
export interface WorkloadSecrets {
  /**
   * Secrets above verify.secrets.maxSeverity that no allow-list entry covers.
   */
  blocking?: number;
  /**
   * Secrets of severity CRITICAL.
   */
  critical?: number;
  /**
   * Secrets of severity HIGH.
   */
  high?: number;
  /**
   * Secrets of severity LOW.
   */
  low?: number;
  /**
   * Secrets of severity MEDIUM.
   */
  medium?: number;
  /**
   * The ExposedSecretReport read (namespace/name).
   */
  report?: string;
  /**
   * The rule ids found.
   */
  rules?: string[];
}

/**
 * UpToDate, Rolling, Failed, Blocked (a check or the window holds it back), PendingApproval
 * (Manual mode) or Pending.
 */
export type State = 'Blocked' | 'Failed' | 'Pending' | 'PendingApproval' | 'Rolling' | 'UpToDate';

/**
 * What the scan of the running digest found, by severity (Trivy Operator
 * VulnerabilityReport); absent until the digest has been scanned.
 */
export interface WorkloadVulnerabilities {
  /**
   * Findings above verify.vulnerabilities.maxSeverity that no allow-list entry covers.
   */
  blocking?: number;
  /**
   * Findings of severity CRITICAL.
   */
  critical?: number;
  /**
   * Findings of severity HIGH.
   */
  high?: number;
  /**
   * Findings of severity LOW.
   */
  low?: number;
  /**
   * Findings of severity MEDIUM.
   */
  medium?: number;
  /**
   * The VulnerabilityReport read (namespace/name).
   */
  report?: string;
  /**
   * When the scan was made (the report's updateTimestamp).
   */
  scannedAt?: string;
  /**
   * Findings of unknown severity.
   */
  unknown?: number;
}
