// Admission review, the pure part: read an AdmissionReview v1, find the images a Pod or a
// pod-owning workload introduces, judge them by the namespace's ImagePolicies, and write the
// answer.
//
// Which policies judge a container (the scope):
//   - governed (the default): the policies that govern it — it runs an image of the
//     repository the policy follows, or it is a container the policy selects by name in a
//     workload it selects (for a Pod or ReplicaSet: the Deployment, StatefulSet or DaemonSet
//     that owns it). An injected sidecar, or a workload no policy governs, is not judged:
//     refusing it would fail far from whoever applied it (FailedCreate on a ReplicaSet).
//   - all (a namespace labelled patchline.dev/admission-scope=all): every policy of the
//     namespace judges every container, so that the registry rule has teeth for everything.
// The rules, from the judging policies:
//   - registry: the image must come from a registry one of them approves (the union of
//     their verify.registries; no rule when none lists any);
//   - digest: a Pod's image must be pinned by digest when one of them asks for it
//     (verify.requireDigest). Workload templates are not held to it: Patchline pins the
//     containers it governs, and the pods they create carry the digest;
//   - signature: an image of a repository a policy follows with verify.signature must carry
//     a valid signature by one of its authorities (checked by the caller: I/O).
// Every finding names the policies behind it. Only images the request introduces are judged
// (on UPDATE, those not in the old object), so scaling or relabelling a workload is never
// blocked by what already runs.
import type { ImagePolicy } from '../api/v1alpha1/index.ts';
import { selectsWorkload, type WorkloadObject } from '../controllers/imagepolicy/select.ts';
import { parseReference, repositoryName } from '../registry/reference.ts';
import { repositoryOf } from '../rollout/running.ts';
import { approvedRegistry } from '../verify/checks.ts';

export type AdmissionMode = 'enforce' | 'warn';
export type AdmissionScope = 'governed' | 'all';

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  namespace: string;
  name: string;
  operation: string;
  dryRun: boolean;
  object: unknown;
  oldObject?: unknown;
  username?: string;
}

export class AdmissionFormatError extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObject(body) || body.kind !== 'AdmissionReview' || body.apiVersion !== 'admission.k8s.io/v1')
    throw new AdmissionFormatError('not an admission.k8s.io/v1 AdmissionReview');
  const r = body.request;
  if (!isObject(r) || typeof r.uid !== 'string' || !r.uid)
    throw new AdmissionFormatError('the review has no request.uid');
  const kind = isObject(r.kind) ? r.kind : {};
  if (typeof kind.kind !== 'string') throw new AdmissionFormatError('the review has no request.kind');
  const object = r.object;
  const metadata = isObject(object) && isObject(object.metadata) ? object.metadata : {};
  const name = typeof r.name === 'string' && r.name ? r.name : typeof metadata.name === 'string' ? metadata.name : '';
  const generateName = typeof metadata.generateName === 'string' ? metadata.generateName : '';
  const userInfo = isObject(r.userInfo) ? r.userInfo : {};
  return {
    uid: r.uid,
    kind: {
      group: typeof kind.group === 'string' ? kind.group : '',
      version: typeof kind.version === 'string' ? kind.version : '',
      kind: kind.kind,
    },
    namespace: typeof r.namespace === 'string' ? r.namespace : '',
    name: name || (generateName ? `${generateName}*` : ''),
    operation: typeof r.operation === 'string' ? r.operation : '',
    dryRun: r.dryRun === true,
    object,
    ...(r.oldObject !== undefined && r.oldObject !== null ? { oldObject: r.oldObject } : {}),
    ...(typeof userInfo.username === 'string' ? { username: userInfo.username } : {}),
  };
}

export interface PodImage {
  /** containers[web], initContainers[migrate], ephemeralContainers[debug]. */
  container: string;
  /** The container's name (web). */
  name: string;
  image: string;
}

/** Where the pod template sits in each kind that owns pods. */
function podSpecOf(kind: string, object: unknown): unknown {
  const o = isObject(object) ? object : {};
  const spec = isObject(o.spec) ? o.spec : {};
  const template = (t: unknown) => (isObject(t) && isObject(t.spec) ? t.spec : undefined);
  switch (kind) {
    case 'Pod':
      return spec;
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
      return template(spec.template);
    case 'CronJob':
      return isObject(spec.jobTemplate) && isObject(spec.jobTemplate.spec)
        ? template(spec.jobTemplate.spec.template)
        : undefined;
    default:
      return undefined;
  }
}

const ADMITTED_KINDS = ['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob'] as const;

/** Every image a pod spec names; undefined for kinds that own no pods. */
export function imagesOf(kind: string, object: unknown): PodImage[] | undefined {
  if (!(ADMITTED_KINDS as readonly string[]).includes(kind)) return undefined;
  const spec = podSpecOf(kind, object);
  if (!isObject(spec)) return [];
  const out: PodImage[] = [];
  for (const field of ['initContainers', 'containers', 'ephemeralContainers']) {
    const list = spec[field];
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      if (isObject(c) && typeof c.image === 'string') {
        const name = typeof c.name === 'string' ? c.name : '?';
        out.push({ container: `${field}[${name}]`, name, image: c.image });
      }
    }
  }
  return out;
}

/** The images of the request that the old object did not already run. */
export function introducedImages(request: AdmissionRequest): PodImage[] {
  const now = imagesOf(request.kind.kind, request.object) ?? [];
  if (request.operation !== 'UPDATE' || request.oldObject === undefined) return now;
  const before = new Set((imagesOf(request.kind.kind, request.oldObject) ?? []).map((i) => i.image));
  return now.filter((i) => !before.has(i.image));
}

export type AdmissionRule = 'registry' | 'digest' | 'signature';

export interface AdmissionFinding {
  container: string;
  image: string;
  rule: AdmissionRule;
  message: string;
  /** The ImagePolicies whose rule this is. */
  policies?: string[];
}

/** The workload whose containers a request's pod spec is: policies select workloads, not pods. */
export type OwningWorkload = Pick<WorkloadObject, 'kind' | 'metadata'>;

const SELECTABLE = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;
const isSelectable = (kind: unknown): kind is OwningWorkload['kind'] =>
  typeof kind === 'string' && (SELECTABLE as readonly string[]).includes(kind);

/**
 * The Deployment, StatefulSet or DaemonSet a request's pod spec belongs to: the object itself,
 * or the owner of a ReplicaSet or Pod (a Deployment's Pod through its ReplicaSet, named
 * <deployment>-<pod-template-hash>). `lookup` returns the cached workload, for its labels.
 */
export function owningWorkload(
  request: AdmissionRequest,
  lookup: (kind: OwningWorkload['kind'], name: string) => OwningWorkload | undefined,
): OwningWorkload | undefined {
  const o = isObject(request.object) ? request.object : {};
  const meta = isObject(o.metadata) ? o.metadata : {};
  const labels = isObject(meta.labels) ? (meta.labels as Record<string, string>) : {};
  const kind = request.kind.kind;
  if (isSelectable(kind)) return { kind, metadata: { name: request.name, labels } };
  const owners = Array.isArray(meta.ownerReferences) ? meta.ownerReferences.filter(isObject) : [];
  const owner = owners.find((r) => r.controller === true) ?? owners[0];
  if (!owner || typeof owner.name !== 'string') return undefined;
  let ownerKind = owner.kind;
  let ownerName = owner.name;
  if (ownerKind === 'ReplicaSet' && kind === 'Pod') {
    const hash = labels['pod-template-hash'];
    if (!hash || !ownerName.endsWith(`-${hash}`)) return undefined;
    ownerKind = 'Deployment';
    ownerName = ownerName.slice(0, -hash.length - 1);
  }
  if (!isSelectable(ownerKind)) return undefined;
  return lookup(ownerKind, ownerName) ?? { kind: ownerKind, metadata: { name: ownerName } };
}

/** Whether a policy governs a container: an image of its repository, or a container it selects by name. */
function governs(
  policy: ImagePolicy,
  image: PodImage,
  repository: string | undefined,
  owner?: OwningWorkload,
): boolean {
  if (repository !== undefined && repositoryOf(policy.spec.image) === repository) return true;
  const named = policy.spec.workloads.containers;
  return !!owner && !!named?.includes(image.name) && selectsWorkload(policy, owner);
}

const policyName = (p: ImagePolicy): string => p.metadata?.name ?? '';

/** What needs a signature check: an image, its digest, and the policies that ask for it. */
export interface SignatureDemand {
  container: string;
  image: string;
  digest?: string;
  policies: ImagePolicy[];
}

export interface JudgeOptions {
  /** Default governed: each container is judged by the policies that govern it. */
  scope?: AdmissionScope;
  /** The workload the pod spec belongs to, for policies that select containers by name. */
  owner?: OwningWorkload;
}

/** Judges the registry and digest rules; lists the signature checks the caller must run. */
export function judgeImages(
  kind: string,
  images: readonly PodImage[],
  policies: readonly ImagePolicy[],
  options: JudgeOptions = {},
): { findings: AdmissionFinding[]; signatures: SignatureDemand[] } {
  const findings: AdmissionFinding[] = [];
  const signatures: SignatureDemand[] = [];
  for (const item of images) {
    const { container, image } = item;
    let digest: string | undefined;
    let repository: string | undefined;
    let unparsable: string | undefined;
    try {
      const ref = parseReference(image);
      digest = ref.digest;
      repository = repositoryName(ref);
    } catch (err) {
      unparsable = err instanceof Error ? err.message : String(err);
    }
    const judging =
      options.scope === 'all' ? policies : policies.filter((p) => governs(p, item, repository, options.owner));
    const listing = judging.filter((p) => (p.spec.verify?.registries ?? []).length > 0);
    const registries = [...new Set(listing.flatMap((p) => p.spec.verify?.registries ?? []))].sort();
    const by = (ps: readonly ImagePolicy[]) => ({ policies: ps.map(policyName) });
    if (unparsable !== undefined) {
      // An unparsable image cannot be from an approved registry; without that rule the
      // kubelet is left to refuse it.
      if (registries.length > 0)
        findings.push({ container, image, rule: 'registry', message: unparsable, ...by(listing) });
      continue;
    }
    if (registries.length > 0 && !approvedRegistry(image, registries)) {
      findings.push({
        container,
        image,
        rule: 'registry',
        message: `not from an approved registry (${registries.join(', ')})`,
        ...by(listing),
      });
    }
    const pinning = kind === 'Pod' ? judging.filter((p) => p.spec.verify?.requireDigest !== false) : [];
    if (pinning.length > 0 && !digest)
      findings.push({ container, image, rule: 'digest', message: 'not pinned by digest', ...by(pinning) });
    const signing = policies.filter((p) => p.spec.verify?.signature && repositoryOf(p.spec.image) === repository);
    if (signing.length > 0) signatures.push({ container, image, ...(digest ? { digest } : {}), policies: signing });
  }
  return { findings, signatures };
}

export interface AdmissionResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    status?: { code: number; reason: string; message: string };
    warnings?: string[];
    auditAnnotations?: Record<string, string>;
  };
}

const MAX_WARNINGS = 10;

export function describeFinding(f: AdmissionFinding): string {
  const policies = f.policies?.length ? ` (ImagePolicy ${f.policies.join(', ')})` : '';
  return `${f.container} ${f.image}: ${f.rule}${policies}: ${f.message}`;
}

/** The answer: allowed with nothing to say, warned (warn mode), or refused naming every finding. */
export function admissionResponse(
  uid: string,
  mode: AdmissionMode,
  findings: readonly AdmissionFinding[],
): AdmissionResponse {
  const base = { apiVersion: 'admission.k8s.io/v1' as const, kind: 'AdmissionReview' as const };
  if (findings.length === 0) return { ...base, response: { uid, allowed: true } };
  const lines = findings.map(describeFinding);
  const audit = { 'patchline.dev/findings': lines.join('; ').slice(0, 2048) };
  if (mode === 'warn') {
    const warnings = lines.slice(0, MAX_WARNINGS).map((l) => `patchline: ${l}`.slice(0, 512));
    return { ...base, response: { uid, allowed: true, warnings, auditAnnotations: audit } };
  }
  return {
    ...base,
    response: {
      uid,
      allowed: false,
      status: {
        code: 403,
        reason: 'Forbidden',
        message:
          `patchline: ${lines.slice(0, MAX_WARNINGS).join('; ')}${lines.length > MAX_WARNINGS ? ` (and ${lines.length - MAX_WARNINGS} more)` : ''}`.slice(
            0,
            4096,
          ),
      },
      auditAnnotations: audit,
    },
  };
}
