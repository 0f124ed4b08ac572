// Admission review, the pure part: read an AdmissionReview v1, find the images a Pod or a
// pod-owning workload introduces, judge them by the namespace's ImagePolicies, and write the
// answer. The rules, from the policies of the object's namespace:
//   - registry: the image must come from a registry one of the policies approves (the union
//     of their verify.registries; no rule when none lists any);
//   - digest: a Pod's image must be pinned by digest when a policy asks for it
//     (verify.requireDigest). Workload templates are not held to it: Patchline pins the
//     containers it governs, and the pods they create carry the digest;
//   - signature: an image of a repository a policy follows with verify.signature must carry
//     a valid signature by one of its authorities (checked by the caller: I/O).
// Only images the request introduces are judged (on UPDATE, those not in the old object), so
// scaling or relabelling a workload is never blocked by what already runs.
import type { ImagePolicy } from '../api/v1alpha1/index.ts';
import { parseReference, repositoryName } from '../registry/reference.ts';
import { repositoryOf } from '../rollout/running.ts';
import { approvedRegistry } from '../verify/checks.ts';

export type AdmissionMode = 'enforce' | 'warn';

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
      if (isObject(c) && typeof c.image === 'string')
        out.push({ container: `${field}[${typeof c.name === 'string' ? c.name : '?'}]`, image: c.image });
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
}

/** What needs a signature check: an image, its digest, and the policies that ask for it. */
export interface SignatureDemand {
  container: string;
  image: string;
  digest?: string;
  policies: ImagePolicy[];
}

/** Judges the registry and digest rules; lists the signature checks the caller must run. */
export function judgeImages(
  kind: string,
  images: readonly PodImage[],
  policies: readonly ImagePolicy[],
): { findings: AdmissionFinding[]; signatures: SignatureDemand[] } {
  const registries = [...new Set(policies.flatMap((p) => p.spec.verify?.registries ?? []))].sort();
  const requireDigest = kind === 'Pod' && policies.some((p) => p.spec.verify?.requireDigest !== false);
  const findings: AdmissionFinding[] = [];
  const signatures: SignatureDemand[] = [];
  for (const { container, image } of images) {
    let digest: string | undefined;
    let repository: string | undefined;
    try {
      const ref = parseReference(image);
      digest = ref.digest;
      repository = repositoryName(ref);
    } catch (err) {
      // An unparsable image cannot be from an approved registry; without that rule the
      // kubelet is left to refuse it.
      if (registries.length > 0)
        findings.push({
          container,
          image,
          rule: 'registry',
          message: err instanceof Error ? err.message : String(err),
        });
      continue;
    }
    if (registries.length > 0 && !approvedRegistry(image, registries)) {
      findings.push({
        container,
        image,
        rule: 'registry',
        message: `not from an approved registry (${registries.join(', ')})`,
      });
    }
    if (requireDigest && !digest) findings.push({ container, image, rule: 'digest', message: 'not pinned by digest' });
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
  return `${f.container} ${f.image}: ${f.rule}: ${f.message}`;
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
