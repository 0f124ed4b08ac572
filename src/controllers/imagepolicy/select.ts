// Which workload containers an ImagePolicy governs, and which running containers break its
// rules. Pure functions over the workloads in the policy's namespace.
import type { ImagePolicy, ImagePolicyStatus } from '../../api/v1alpha1/index.ts';
import { parseReference } from '../../registry/reference.ts';
import { parseDuration } from '../../runtime/duration.ts';
import { isOfRepository } from '../../rollout/running.ts';
import { approvedRegistry } from '../../verify/checks.ts';
import { describeUser, effectiveUser, type EffectiveUser, type SecurityContextUser } from '../../verify/run-as-user.ts';

type Workloads = ImagePolicy['spec']['workloads'];
type Selector = NonNullable<Workloads['selector']>;
export type Violation = NonNullable<ImagePolicyStatus['violations']>[number];

export interface WorkloadObject {
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: {
    template?: {
      spec?: {
        securityContext?: SecurityContextUser;
        containers?: { name: string; image?: string; securityContext?: SecurityContextUser }[];
      };
    };
  };
}

export interface SelectedContainer {
  kind: WorkloadObject['kind'];
  name: string;
  container: string;
  image: string;
  /** Who the pod and the container say they run as (securityContext). */
  runAs?: { pod?: SecurityContextUser; own?: SecurityContextUser };
}

/** A Kubernetes label selector, matched as the API server does (all terms must hold). */
export function matchesSelector(selector: Selector | undefined, labels: Record<string, string> = {}): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || !(e.values ?? []).includes(value!)) return false;
        break;
      case 'NotIn':
        if (has && (e.values ?? []).includes(value!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** Whether a policy governs a workload: of its kinds, and named by it and/or matching its selector. */
export function selectsWorkload(policy: ImagePolicy, w: Pick<WorkloadObject, 'kind' | 'metadata'>): boolean {
  const spec = policy.spec.workloads;
  const name = w.metadata?.name ?? '';
  if (spec.kinds?.length && !spec.kinds.includes(w.kind)) return false;
  if (spec.names?.length && !spec.names.includes(name)) return false;
  if (spec.selector && !matchesSelector(spec.selector, w.metadata?.labels)) return false;
  return !!spec.selector || !!spec.names?.length; // the CRD requires one; select nothing rather than everything
}

/**
 * The containers a policy governs: workloads of the allowed kinds, selected by label and/or
 * name, and within them the named containers — or, with none named, every container whose
 * image is of the followed repository (a sidecar from another repository is not touched).
 */
export function selectContainers(policy: ImagePolicy, workloads: readonly WorkloadObject[]): SelectedContainer[] {
  const spec = policy.spec.workloads;
  const followed = parseReference(policy.spec.image);
  const out: SelectedContainer[] = [];
  for (const w of workloads) {
    const name = w.metadata?.name ?? '';
    if (!selectsWorkload(policy, w)) continue;
    const pod = w.spec?.template?.spec?.securityContext;
    for (const c of w.spec?.template?.spec?.containers ?? []) {
      const image = c.image ?? '';
      const wanted = spec.containers?.length ? spec.containers.includes(c.name) : isOfRepository(image, followed);
      if (!wanted) continue;
      const runAs = { ...(pod ? { pod } : {}), ...(c.securityContext ? { own: c.securityContext } : {}) };
      out.push({ kind: w.kind, name, container: c.name, image, ...(pod || c.securityContext ? { runAs } : {}) });
    }
  }
  return out.sort((a, b) => (`${a.kind}/${a.name}/${a.container}` < `${b.kind}/${b.name}/${b.container}` ? -1 : 1));
}

/**
 * Who a selected container runs as (verify.runAsNonRoot): from the image config User of what it
 * runs (`imageUser`, undefined when not read) and its securityContext; undefined when unknown.
 */
export function containerUser(c: SelectedContainer, imageUser: string | undefined): EffectiveUser | undefined {
  const settled = c.runAs?.own?.runAsUser !== undefined || c.runAs?.pod?.runAsUser !== undefined;
  if (imageUser === undefined && !settled) return undefined;
  return effectiveUser(imageUser, c.runAs?.pod, c.runAs?.own);
}

/**
 * The rules a running container breaks: an unapproved registry, an image not pinned by digest,
 * too old, or (verify.runAsNonRoot) running as root or as a user not allowed.
 */
export function violationsOf(
  policy: ImagePolicy,
  selected: readonly SelectedContainer[],
  createdOf: (image: string) => Date | undefined = () => undefined,
  now: Date = new Date(),
  userOf: (image: string) => string | undefined = () => undefined,
): Violation[] {
  const verify = policy.spec.verify ?? {};
  const out: Violation[] = [];
  for (const c of selected) {
    const workload = `${c.kind}/${c.name}`;
    if (verify.registries?.length && !approvedRegistry(c.image, verify.registries)) {
      out.push({
        workload,
        container: c.container,
        image: c.image,
        rule: 'registry',
        message: `not from an approved registry (${verify.registries.join(', ')})`,
      });
    }
    if (verify.requireDigest && !c.image.includes('@sha256:')) {
      out.push({ workload, container: c.container, image: c.image, rule: 'digest', message: 'not pinned by digest' });
    }
    const created = createdOf(c.image);
    if (verify.maxAge && created) {
      const maxMs = parseMaxAge(verify.maxAge);
      if (now.getTime() - created.getTime() > maxMs) {
        out.push({
          workload,
          container: c.container,
          image: c.image,
          rule: 'age',
          message: `built ${created.toISOString()}, older than ${verify.maxAge}`,
        });
      }
    }
    const user = verify.runAsNonRoot ? containerUser(c, userOf(c.image)) : undefined;
    if (user) {
      const allowed = verify.allowedUserIds ?? [];
      const message =
        user.root === true
          ? `runs as ${describeUser(user)}`
          : allowed.length > 0 && (user.uid === undefined || !allowed.includes(user.uid))
            ? `runs as ${describeUser(user)}, not one of ${allowed.join(', ')}`
            : undefined;
      if (message) out.push({ workload, container: c.container, image: c.image, rule: 'user', message });
    }
  }
  return out;
}

function parseMaxAge(value: string): number {
  // Durations are validated by the CRD; an unreadable one never flags anything.
  try {
    return parseDuration(value);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
