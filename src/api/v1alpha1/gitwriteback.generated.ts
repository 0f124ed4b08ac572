// Generated from crds/gitwritebacks.patchline.dev.yaml by scripts/generate-api-types.ts. Do not edit: change the CRD and run
// `npm run generate`. Timestamps are RFC 3339 strings, as the API server sends them.
import type { ObjectMeta } from '../../runtime/kube-types.ts';

/**
 * GitWriteBack writes the digests accepted by the ImagePolicies that name it
 * (spec.rollout.gitOps.writeBackRef) back to a git repository, so that git stays the source
 * of truth for a GitOps engine such as Argo CD or Flux: it edits only image values (marker
 * comments, Kustomize images entries), commits every policy's change in one commit per run,
 * and pushes to the branch, or to a push branch rebuilt on the branch's head each run. The
 * intended change is recorded in status before the push and the pushed commit after it, so
 * that a crash neither loses an update nor makes a second commit. The ImagePolicies then
 * follow the workloads until the pods run the digest.
 */
export interface GitWriteBack {
  /**
   * APIVersion of this object (patchline.dev/v1alpha1).
   */
  apiVersion?: string;
  /**
   * Kind of this object (GitWriteBack).
   */
  kind?: string;
  metadata?: ObjectMeta;
  /**
   * The repository, what to edit in it, and how to commit.
   */
  spec: GitWriteBackSpec;
  /**
   * What Patchline wrote and where.
   */
  status?: GitWriteBackStatus;
}

/**
 * The repository, what to edit in it, and how to commit.
 */
export interface GitWriteBackSpec {
  /**
   * How long to wait for more policies to change before committing, so that changes arriving
   * together (a base image patch that rebuilds many images) share one commit.
   */
  batchWindow?: string;
  /**
   * The branch read, and committed to unless push.branch is set.
   */
  branch?: string;
  /**
   * The commits Patchline makes.
   */
  commit?: Commit;
  /**
   * How often the repository is read again even when no policy changed, to restore values
   * edited away by hand.
   */
  interval?: string;
  /**
   * Where to announce what happens to the changes, so that teams hear of patches without
   * watching Events: pull request opened, merged or closed, a commit pushed, the workloads
   * rolled out to the new digest or rolled back. Each entry is a Secret with the key address
   * (an https URL) and, for the generic format, token: the key of the HMAC-SHA256 signature
   * sent in X-Patchline-Signature.
   */
  notify?: Notify[];
  /**
   * Files or folders to edit, relative to the repository root; every YAML file under them
   * (and files named Kustomization) is read. The whole repository when empty.
   */
  paths?: string[];
  /**
   * Propose every change as a pull request (merge request) from push.branch into branch
   * instead of letting it land: one open request per GitWriteBack, found again by its head
   * branch before one is opened, updated (branch force-pushed with a lease, title and body
   * rewritten) when newer digests arrive. Its body carries the evidence a reviewer needs:
   * every check the digest passed, the signer, the base it was built on, vulnerability counts
   * of the new and the replaced digest, the rebuild that produced it and the workloads it
   * reaches. Merged: the policies follow the rollout of the merge commit. Closed without
   * merging: the digests it proposed are declined (condition, Event) and not proposed again
   * until a newer digest arrives or a reconcile is requested. Credentials: a token in the
   * Secret's password (or bearerToken), or a GitHub App (githubAppID, githubAppInstallationID
   * or githubAppInstallationOwner, githubAppPrivateKey), which git over HTTPS uses too.
   */
  pullRequest?: SpecPullRequest;
  /**
   * Where commits go when not to branch directly: a branch Patchline owns, rebuilt on the
   * head of branch on every run and replaced (force-with-lease against what Patchline saw),
   * for a pull request or a review. branch itself is never force-pushed.
   */
  push?: Push;
  /**
   * A Secret in this namespace with the credentials: username and password (a token may be
   * the password), or bearerToken, for HTTPS; ca.crt for a private CA; identity (an OpenSSH
   * private key) and known_hosts for SSH. Anonymous when absent (reads work, pushes usually
   * need credentials).
   */
  secretRef?: SpecSecretRef;
  /**
   * Stop writing to the repository; the policies keep their decisions.
   */
  suspend?: boolean;
  /**
   * The repository: https://host/path (or http:// for a server on the cluster network),
   * ssh://user@host/path or user@host:path. SSH needs identity and known_hosts in the Secret;
   * host keys are never trusted on first use.
   */
  url: string;
}

/**
 * The commits Patchline makes.
 */
export interface Commit {
  /**
   * Author and committer of the commits.
   */
  author?: Author;
  /**
   * The commit message. Placeholders: {{summary}} (one line naming every change), {{changes}}
   * (per policy: image, old and new value, the checks the digest passed, the rebuild that
   * produced it, the files edited), {{count}} (policies changed), {{writeBack}}
   * (namespace/name). The default is "{{summary}}", a blank line, then "{{changes}}". A
   * Patchline-Change trailer is always appended: it is how a commit is found again after a
   * crash.
   */
  messageTemplate?: string;
  /**
   * Sign every commit. ssh: an OpenSSH private key in the Secret's key identity
   * (unencrypted), verified with git's allowed signers; openpgp: an armored OpenPGP private
   * key in the Secret's key git.asc, with passphrase when it has one (Flux's key names).
   */
  signingKey?: SigningKey;
}

/**
 * Author and committer of the commits.
 */
export interface Author {
  /**
   * The e-mail address.
   */
  email?: string;
  /**
   * The name.
   */
  name?: string;
}

/**
 * Sign every commit. ssh: an OpenSSH private key in the Secret's key identity
 * (unencrypted), verified with git's allowed signers; openpgp: an armored OpenPGP private
 * key in the Secret's key git.asc, with passphrase when it has one (Flux's key names).
 */
export interface SigningKey {
  /**
   * ssh or openpgp.
   */
  format?: SigningKeyFormat;
  /**
   * The Secret (in this namespace) holding the key.
   */
  secretRef: SigningKeySecretRef;
}

/**
 * ssh or openpgp.
 */
export type SigningKeyFormat = 'openpgp' | 'ssh';

/**
 * The Secret (in this namespace) holding the key.
 */
export interface SigningKeySecretRef {
  /**
   * Name of the Secret.
   */
  name: string;
}

export interface Notify {
  /**
   * The events to send; every event when empty.
   */
  events?: Event[];
  /**
   * generic (Patchline's signed JSON) or slack (a Slack-compatible incoming-webhook body).
   */
  format?: NotifyFormat;
  /**
   * The Secret (in this namespace) with address and token.
   */
  secretRef: NotifySecretRef;
}

export type Event =
  'Committed' | 'PullRequestClosed' | 'PullRequestMerged' | 'PullRequestOpened' | 'RolledBack' | 'RolledOut';

/**
 * generic (Patchline's signed JSON) or slack (a Slack-compatible incoming-webhook body).
 */
export type NotifyFormat = 'generic' | 'slack';

/**
 * The Secret (in this namespace) with address and token.
 */
export interface NotifySecretRef {
  /**
   * Name of the Secret.
   */
  name: string;
}

/**
 * Propose every change as a pull request (merge request) from push.branch into branch
 * instead of letting it land: one open request per GitWriteBack, found again by its head
 * branch before one is opened, updated (branch force-pushed with a lease, title and body
 * rewritten) when newer digests arrive. Its body carries the evidence a reviewer needs:
 * every check the digest passed, the signer, the base it was built on, vulnerability counts
 * of the new and the replaced digest, the rebuild that produced it and the workloads it
 * reaches. Merged: the policies follow the rollout of the merge commit. Closed without
 * merging: the digests it proposed are declined (condition, Event) and not proposed again
 * until a newer digest arrives or a reconcile is requested. Credentials: a token in the
 * Secret's password (or bearerToken), or a GitHub App (githubAppID, githubAppInstallationID
 * or githubAppInstallationOwner, githubAppPrivateKey), which git over HTTPS uses too.
 */
export interface SpecPullRequest {
  /**
   * The forge's API. Derived from url when absent: https://api.github.com for github.com,
   * https://<host>/api/v3 (GitHub Enterprise), https://<host>/api/v4 (GitLab),
   * https://dev.azure.com/<organization>/<project> (Azure DevOps), https://<host>/api/v1
   * (Gitea).
   */
  apiURL?: string;
  /**
   * The body (Markdown). Placeholders: {{evidence}} (per image: old and new digest, the
   * checks passed with the signer and the base, vulnerabilities of the new and the replaced
   * digest, the rebuild, the workloads reached, the files edited), {{summary}}, {{changes}},
   * {{count}}, {{writeBack}}. Default "{{evidence}}".
   */
  bodyTemplate?: string;
  /**
   * Open it as a draft.
   */
  draft?: boolean;
  /**
   * Labels set on the request when it is opened.
   */
  labels?: string[];
  /**
   * github (and GitHub Enterprise Server), gitlab, azure (Azure DevOps Repos) or gitea
   * (Gitea, Forgejo).
   */
  provider: Provider;
  /**
   * The repository as the forge names it when url does not say it: owner/name (GitHub,
   * Gitea), group/subgroup/project (GitLab), the repository name (Azure DevOps).
   */
  repository?: string;
  /**
   * Reviewers requested when it is opened: user names (GitHub, GitLab, Gitea), org/team for
   * GitHub teams, identity ids for Azure DevOps.
   */
  reviewers?: string[];
  /**
   * The title; the same placeholders as commit.messageTemplate. Default "{{summary}}".
   */
  titleTemplate?: string;
}

/**
 * github (and GitHub Enterprise Server), gitlab, azure (Azure DevOps Repos) or gitea
 * (Gitea, Forgejo).
 */
export type Provider = 'azure' | 'gitea' | 'github' | 'gitlab';

/**
 * Where commits go when not to branch directly: a branch Patchline owns, rebuilt on the
 * head of branch on every run and replaced (force-with-lease against what Patchline saw),
 * for a pull request or a review. branch itself is never force-pushed.
 */
export interface Push {
  /**
   * The push branch.
   */
  branch?: string;
}

/**
 * A Secret in this namespace with the credentials: username and password (a token may be
 * the password), or bearerToken, for HTTPS; ca.crt for a private CA; identity (an OpenSSH
 * private key) and known_hosts for SSH. Anonymous when absent (reads work, pushes usually
 * need credentials).
 */
export interface SpecSecretRef {
  /**
   * Name of the Secret.
   */
  name: string;
}

/**
 * What Patchline wrote and where.
 */
export interface GitWriteBackStatus {
  /**
   * Ready, Reconciling and Stalled (kstatus).
   */
  conditions?: Condition[];
  /**
   * Digests whose pull request was closed without merging: not proposed again until the
   * policy accepts a newer digest or a reconcile is requested
   * (patchline.dev/reconcile-requested-at).
   */
  declined?: Declined[];
  /**
   * The last commit Patchline pushed.
   */
  lastCommit?: LastCommit;
  /**
   * The value of the patchline.dev/reconcile-requested-at annotation last acted upon.
   */
  lastHandledReconcileAt?: string;
  /**
   * The metadata.generation this status reflects.
   */
  observedGeneration?: number;
  /**
   * The change being written: recorded before the push, cleared once the pushed commit is
   * recorded, so that a crash or failover in between neither loses it nor commits it twice.
   */
  pending?: Pending;
  /**
   * Per ImagePolicy naming this write-back, the digest git says and the commit that says it.
   */
  policies?: StatusPolicy[];
  /**
   * The pull request Patchline opened last, and where it stands.
   */
  pullRequest?: StatusPullRequest;
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

export interface Declined {
  /**
   * When it was closed.
   */
  at?: string;
  /**
   * The digest declined.
   */
  digest?: string;
  /**
   * The ImagePolicy.
   */
  name: string;
  /**
   * The pull request that was closed.
   */
  pullRequest?: string;
  /**
   * Its tag.
   */
  tag?: string;
}

/**
 * The last commit Patchline pushed.
 */
export interface LastCommit {
  /**
   * The branch it was pushed to.
   */
  branch?: string;
  /**
   * The Patchline-Change trailer it carries.
   */
  changeID?: string;
  /**
   * The first line of its message.
   */
  message?: string;
  /**
   * Its SHA.
   */
  sha?: string;
  /**
   * The first 12 characters of the SHA.
   */
  shortSHA?: string;
  /**
   * When it was pushed.
   */
  time?: string;
}

/**
 * The change being written: recorded before the push, cleared once the pushed commit is
 * recorded, so that a crash or failover in between neither loses it nor commits it twice.
 */
export interface Pending {
  /**
   * The head of branch the change was made on.
   */
  baseCommit?: string;
  /**
   * The trailer its commit carries.
   */
  changeID?: string;
  /**
   * The values it writes, per policy.
   */
  policies?: PendingPolicy[];
  /**
   * When it was recorded.
   */
  since?: string;
}

export interface PendingPolicy {
  /**
   * The digest written.
   */
  digest?: string;
  /**
   * The ImagePolicy.
   */
  name: string;
  /**
   * The tag written with it.
   */
  tag?: string;
}

export interface StatusPolicy {
  /**
   * The commit that wrote it (or the head it was found in, when git already said it).
   */
  commit?: string;
  /**
   * When that commit was pushed (or found).
   */
  committedAt?: string;
  /**
   * The digest the files say.
   */
  digest?: string;
  /**
   * The files that carry its image (at most 20 listed).
   */
  files?: string[];
  /**
   * Why nothing was written for it, when nothing was (no file names its image, a conflict, a
   * pull request waiting for review or declined).
   */
  message?: string;
  /**
   * The ImagePolicy.
   */
  name: string;
  /**
   * The pull request that proposes its digest, while it is open.
   */
  pullRequest?: string;
  /**
   * The tag written with it.
   */
  tag?: string;
}

/**
 * The pull request Patchline opened last, and where it stands.
 */
export interface StatusPullRequest {
  /**
   * The Patchline-Change trailer of that commit.
   */
  changeID?: string;
  /**
   * When it was closed without merging.
   */
  closedAt?: string;
  /**
   * The branch it proposes (push.branch).
   */
  headBranch?: string;
  /**
   * The commit Patchline last pushed to it.
   */
  headCommit?: string;
  /**
   * The commit on branch that carries it once merged.
   */
  mergeCommit?: string;
  /**
   * When it was merged.
   */
  mergedAt?: string;
  /**
   * Its number (GitLab iid, Azure DevOps id).
   */
  number?: number;
  /**
   * When Patchline opened (or found) it.
   */
  openedAt?: string;
  /**
   * The values it proposes, per policy.
   */
  policies?: PullRequestPolicy[];
  /**
   * Open, Merged or Closed (without merging).
   */
  state?: State;
  /**
   * Its title.
   */
  title?: string;
  /**
   * When Patchline last pushed to it or rewrote it.
   */
  updatedAt?: string;
  /**
   * Its page.
   */
  url?: string;
}

export interface PullRequestPolicy {
  /**
   * The digest proposed.
   */
  digest?: string;
  /**
   * The ImagePolicy.
   */
  name: string;
  /**
   * The tag proposed with it.
   */
  tag?: string;
}

/**
 * Open, Merged or Closed (without merging).
 */
export type State = 'Closed' | 'Merged' | 'Open';
