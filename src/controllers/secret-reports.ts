// Trivy Operator's ExposedSecretReports: secrets (keys, tokens, passwords) a scan found baked
// into an image, indexed by the digest scanned, as VulnerabilityReports are. Only what the
// gate and the status need is kept — rule id, file, severity, category — and never the
// matched text (`match`): the report quotes the secret, Patchline does not hold it or say it.
// The CRD is optional: without Trivy Operator the index is simply empty.
import { intern } from '../runtime/intern.ts';
import type { KubeObject, ResourceType } from '../runtime/kube-types.ts';
import type { ExposedSecret } from '../verify/secrets.ts';
import type { Severity } from '../verify/vulnerabilities.ts';
import { ReportIndex, type IndexedReport } from './vulnerability-reports.ts';

export const ExposedSecretReportType: ResourceType = {
  group: 'aquasecurity.github.io',
  version: 'v1alpha1',
  plural: 'exposedsecretreports',
  kind: 'ExposedSecretReport',
  namespaced: true,
};

export interface SlimSecretReport extends KubeObject, IndexedReport {
  metadata: { name: string; namespace: string; resourceVersion?: string; uid?: string };
  secrets: ExposedSecret[];
}

export class SecretReportIndex extends ReportIndex<SlimSecretReport> {}

/** The most secrets read from one report: a bound on memory for hostile or huge reports. */
const MAX_SECRETS = 1_000;
const SEVERITIES: readonly Severity[] = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'];
const severityOf = (v: unknown): Severity =>
  typeof v === 'string' && (SEVERITIES as readonly string[]).includes(v.toUpperCase())
    ? (v.toUpperCase() as Severity)
    : 'UNKNOWN';

/** The informer's transform: the report slim, its secrets without their text. */
export function slimSecretReport(received: KubeObject): SlimSecretReport {
  const metadata = {
    name: received.metadata?.name ?? '',
    namespace: intern(received.metadata?.namespace ?? ''),
    ...(received.metadata?.resourceVersion ? { resourceVersion: received.metadata.resourceVersion } : {}),
    ...(received.metadata?.uid ? { uid: received.metadata.uid } : {}),
  };
  const body = (received as { report?: unknown }).report;
  if (!body || typeof body !== 'object')
    return { metadata, secrets: [], problem: 'not an ExposedSecretReport: no report' };
  const r = body as { artifact?: { digest?: unknown }; secrets?: unknown; updateTimestamp?: unknown };
  const list = r.secrets ?? [];
  if (!Array.isArray(list)) return { metadata, secrets: [], problem: 'report.secrets is not a list' };
  if (list.length > MAX_SECRETS)
    return { metadata, secrets: [], problem: `the report lists ${list.length} secrets (limit ${MAX_SECRETS})` };
  const secrets: ExposedSecret[] = [];
  for (const s of list as Record<string, unknown>[]) {
    if (!s || typeof s !== 'object' || typeof s.ruleID !== 'string' || !s.ruleID) continue;
    secrets.push({
      ruleId: intern(s.ruleID.slice(0, 128)),
      target: typeof s.target === 'string' ? s.target.slice(0, 1024) : '',
      severity: severityOf(s.severity),
      ...(typeof s.category === 'string' ? { category: intern(s.category.slice(0, 64)) } : {}),
    });
  }
  const digest = typeof r.artifact?.digest === 'string' && r.artifact.digest ? intern(r.artifact.digest) : undefined;
  return {
    metadata,
    secrets,
    ...(digest ? { digest } : {}),
    ...(typeof r.updateTimestamp === 'string' ? { updated: r.updateTimestamp } : {}),
  };
}
