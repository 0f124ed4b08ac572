// Microsoft Defender for Containers (vulnerability assessment powered by Microsoft Defender
// Vulnerability Management) for Azure Container Registry images, read through Azure Resource
// Graph with the operator's Entra identity (workload identity): its findings are
// `securityresources` rows of type microsoft.security/assessments/subassessments whose
// additionalData.assessedResourceType is AzureContainerRegistryVulnerability, one per CVE and
// package, naming the image by registry host, repository and digest.
//   POST https://management.azure.com/providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01
// Defender shows no queue: an image it has not assessed has no rows, so "unknown", never "pending".
import { jsonApi } from '../../runtime/http.ts';
import type { ImageReference } from '../../registry/reference.ts';
import { severityOf, type Finding } from '../vulnerabilities.ts';
import {
  finding,
  list,
  MAX_FINDINGS,
  record,
  str,
  ScannerError,
  type RegistryScanner,
  type ScanAnswer,
} from './types.ts';

const API = 'https://management.azure.com/providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01';
const MAX_PAGES = 20;

export interface DefenderOptions {
  /** Subscriptions to query; default: every subscription the identity can read. */
  subscriptions?: readonly string[];
  /** An Entra ID token for https://management.azure.com; default: DefaultAzureCredential. */
  token?: () => Promise<string>;
}

/** The Resource Graph query for one image's sub-assessments (values checked: no quotes can reach it). */
export function defenderQuery(image: ImageReference, digest: string): string {
  for (const v of [image.registry, image.repository, digest])
    if (!/^[A-Za-z0-9._:/@-]+$/.test(v)) throw new ScannerError(`"${v}" cannot be used in a Resource Graph query`);
  return [
    'securityresources',
    "| where type == 'microsoft.security/assessments/subassessments'",
    "| where properties.additionalData.assessedResourceType == 'AzureContainerRegistryVulnerability'",
    '| extend artifact = properties.additionalData.artifactDetails',
    `| where tolower(tostring(artifact.registryHost)) == '${image.registry.toLowerCase()}'`,
    `| where tostring(artifact.repositoryName) == '${image.repository}'`,
    `| where tostring(artifact.digest) == '${digest}'`,
    '| project id = tostring(properties.id), cve = tostring(properties.additionalData.vulnerabilityDetails.cveId),',
    '  status = tostring(properties.status.code), severity = tostring(properties.status.severity),',
    '  package = tostring(properties.additionalData.softwareDetails.packageName),',
    '  version = tostring(properties.additionalData.softwareDetails.version),',
    '  fixedVersion = tostring(properties.additionalData.softwareDetails.fixedVersion),',
    '  generated = tostring(properties.timeGenerated)',
  ].join('\n');
}

/** The findings among the rows (healthy rows say the image was assessed, and add nothing). */
export function defenderFindings(rows: readonly unknown[]): Finding[] {
  return rows.flatMap((row): Finding[] => {
    const r = record(row);
    if (r.status === 'Healthy' || r.status === 'NotApplicable') return [];
    const id = str(r.cve) ?? str(r.id);
    if (!id) return [];
    return [
      finding(id, severityOf(r.severity), {
        resource: str(r.package),
        installedVersion: str(r.version),
        fixedVersion: str(r.fixedVersion),
      }),
    ];
  });
}

async function defaultToken(): Promise<string> {
  const { DefaultAzureCredential } = await import('@azure/identity');
  const token = await new DefaultAzureCredential().getToken('https://management.azure.com/.default');
  if (!token) throw new ScannerError('no Entra ID token for Azure Resource Graph');
  return token.token;
}

export class DefenderScanner implements RegistryScanner {
  readonly kind = 'defender';
  readonly name = 'Microsoft Defender for Containers';
  private readonly options: DefenderOptions;

  constructor(options: DefenderOptions = {}) {
    this.options = options;
  }

  async scan(image: ImageReference, digest: string, signal?: AbortSignal): Promise<ScanAnswer> {
    const query = defenderQuery(image, digest);
    const token = await (this.options.token ?? defaultToken)();
    const rows: unknown[] = [];
    let skipToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const body = record(
        await jsonApi(API, 'Azure Resource Graph', {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
          body: {
            ...(this.options.subscriptions ? { subscriptions: this.options.subscriptions } : {}),
            query,
            options: { resultFormat: 'objectArray', $top: 1000, ...(skipToken ? { $skipToken: skipToken } : {}) },
          },
          limit: 32 * 1024 * 1024,
          ...(signal ? { signal } : {}),
        }),
      );
      rows.push(...list(body.data));
      skipToken = str(body.$skipToken);
      if (!skipToken || rows.length >= MAX_FINDINGS) break;
    }
    if (rows.length === 0) return { state: 'unknown', detail: 'Defender has no assessment of it' };
    const generated = rows.map((r) => Date.parse(str(record(r).generated) ?? '')).filter(Number.isFinite);
    return {
      state: 'scanned',
      findings: defenderFindings(rows).slice(0, MAX_FINDINGS),
      ...(generated.length > 0 ? { scannedAt: new Date(Math.max(...generated)) } : {}),
    };
  }
}
