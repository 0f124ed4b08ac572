// The vulnerability gate, as pure functions: findings (from a Trivy Operator
// VulnerabilityReport, or a cosign vulnerability attestation) judged against an ImagePolicy's
// verify.vulnerabilities — a maximum severity, unfixed findings optionally ignored, and an
// allow-list of ids each with a reason and an expiry date (an expired entry no longer allows,
// and is reported, so that waivers do not outlive their review).
import type { ImagePolicy } from '../api/v1alpha1/index.ts';

export type VulnerabilitySpec = NonNullable<NonNullable<ImagePolicy['spec']['verify']>['vulnerabilities']>;

const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface Finding {
  id: string;
  severity: Severity;
  /** The package the finding is in. */
  resource?: string;
  installedVersion?: string;
  /** Empty or absent: no fixed version exists yet. */
  fixedVersion?: string;
}

export type SeverityCounts = Record<Severity, number>;

export interface GateResult {
  passed: boolean;
  counts: SeverityCounts;
  /** Findings above the threshold that nothing allows, most severe first. */
  blocking: Finding[];
  /** Allow-list entries that matched a finding but have expired. */
  expiredAllows: string[];
  message: string;
}

const RANK: Record<Severity, number> = { CRITICAL: 4, HIGH: 3, MEDIUM: 2, LOW: 1, UNKNOWN: 0 };
const MAX_NAMED = 5;

export function severityOf(value: unknown): Severity {
  const s = typeof value === 'string' ? value.toUpperCase() : '';
  return (SEVERITIES as readonly string[]).includes(s) ? (s as Severity) : 'UNKNOWN';
}

function countBySeverity(findings: readonly Finding[]): SeverityCounts {
  const counts: SeverityCounts = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
  for (const f of findings) counts[f.severity]++;
  return counts;
}

/**
 * Judges findings against the policy. A finding blocks when its severity is above
 * `maxSeverity`, unless it has no fix and unfixed findings are ignored, or an unexpired
 * allow-list entry names it. UNKNOWN severities never block (there is nothing to compare).
 */
export function gateVulnerabilities(spec: VulnerabilitySpec, findings: readonly Finding[], now: Date): GateResult {
  const max = RANK[severityOf(spec.maxSeverity)];
  const allows = new Map((spec.allow ?? []).map((a) => [a.id, a]));
  const blocking: Finding[] = [];
  const expired = new Set<string>();
  const seen = new Set<string>();
  for (const f of findings) {
    if (f.severity === 'UNKNOWN' || RANK[f.severity] <= max) continue;
    if (spec.ignoreUnfixed && !f.fixedVersion) continue;
    const allow = allows.get(f.id);
    if (allow) {
      const until = Date.parse(allow.expires);
      if (Number.isFinite(until) && now.getTime() < until) continue;
      expired.add(f.id);
    }
    const key = `${f.id}|${f.resource ?? ''}`;
    if (seen.has(key)) continue; // the same finding reported for several targets
    seen.add(key);
    blocking.push(f);
  }
  blocking.sort((a, b) => RANK[b.severity] - RANK[a.severity] || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const counts = countBySeverity(findings);
  const expiredAllows = [...expired].sort();
  const named = blocking
    .slice(0, MAX_NAMED)
    .map((f) => `${f.id} (${f.severity}${f.resource ? ` in ${f.resource}` : ''})`)
    .join(', ');
  const more = blocking.length > MAX_NAMED ? ` and ${blocking.length - MAX_NAMED} more` : '';
  const expiredNote = expiredAllows.length > 0 ? `; allow-list entries expired: ${expiredAllows.join(', ')}` : '';
  const message =
    blocking.length === 0
      ? `no finding above ${severityOf(spec.maxSeverity)} that is not allowed${expiredNote}`
      : `${blocking.length} finding(s) above ${severityOf(spec.maxSeverity)}: ${named}${more}${expiredNote}`;
  return { passed: blocking.length === 0, counts, blocking, expiredAllows, message };
}

/** The most findings read from one report: a bound on memory for hostile or huge reports. */
export const MAX_FINDINGS = 20_000;

/**
 * The findings of a Trivy Operator VulnerabilityReport (`report.vulnerabilities[]`), read
 * defensively: entries without an id are skipped, severities normalised. Throws on a body
 * that is not a report at all, or holds more than MAX_FINDINGS findings.
 */
export function findingsFromTrivyReport(report: unknown): { digest?: string; findings: Finding[] } {
  const body = (report as { report?: unknown } | null)?.report;
  if (!body || typeof body !== 'object') throw new Error('not a VulnerabilityReport: no report');
  const r = body as { artifact?: { digest?: unknown }; vulnerabilities?: unknown };
  const list = r.vulnerabilities ?? [];
  if (!Array.isArray(list)) throw new Error('not a VulnerabilityReport: report.vulnerabilities is not a list');
  if (list.length > MAX_FINDINGS) throw new Error(`the report lists ${list.length} findings (limit ${MAX_FINDINGS})`);
  const findings: Finding[] = [];
  for (const v of list as Record<string, unknown>[]) {
    if (!v || typeof v !== 'object' || typeof v.vulnerabilityID !== 'string' || !v.vulnerabilityID) continue;
    const f: Finding = { id: v.vulnerabilityID, severity: severityOf(v.severity) };
    if (typeof v.resource === 'string') f.resource = v.resource;
    if (typeof v.installedVersion === 'string') f.installedVersion = v.installedVersion;
    if (typeof v.fixedVersion === 'string' && v.fixedVersion) f.fixedVersion = v.fixedVersion;
    findings.push(f);
  }
  const digest = typeof r.artifact?.digest === 'string' && r.artifact.digest ? r.artifact.digest : undefined;
  return { ...(digest ? { digest } : {}), findings };
}

const VULN_PREDICATES = ['cosign.sigstore.dev/attestation/vuln/v1', 'https://cosign.sigstore.dev/attestation/vuln/v1'];

/**
 * The findings of a cosign vulnerability attestation: an in-toto Statement whose predicate
 * carries the scanners' raw results (Trivy JSON, SchemaVersion 2: Results[].Vulnerabilities[]).
 * The statement must name `digest` as its subject (an attestation about another image says
 * nothing about this one). Verifying the envelope's signature is the caller's part; this only
 * reads a statement already trusted. The spec mixes `scanner`/`scanners` and scan/build
 * timestamp names: both are accepted.
 */
export function findingsFromVulnAttestation(
  statement: unknown,
  digest: string,
): { findings: Finding[]; scannedAt?: Date; scanner?: string } {
  const s = statement as {
    subject?: unknown;
    predicateType?: unknown;
    predicate?: {
      scanner?: unknown;
      scanners?: unknown;
      metadata?: { scanFinishedOn?: unknown; buildFinishedOn?: unknown };
    };
  } | null;
  if (!s || typeof s !== 'object') throw new Error('not an in-toto statement');
  if (typeof s.predicateType !== 'string' || !VULN_PREDICATES.includes(s.predicateType))
    throw new Error(`not a vulnerability attestation: predicateType ${String(s.predicateType)}`);
  const hex = digest.replace(/^sha256:/, '');
  const subjects = Array.isArray(s.subject) ? (s.subject as { digest?: { sha256?: unknown } }[]) : [];
  if (!subjects.some((x) => x?.digest?.sha256 === hex)) throw new Error(`the attestation's subject is not ${digest}`);
  const p = s.predicate ?? {};
  const scanners = (Array.isArray(p.scanners) ? p.scanners : p.scanner ? [p.scanner] : []) as {
    uri?: unknown;
    result?: { Results?: unknown };
  }[];
  const findings: Finding[] = [];
  for (const scanner of scanners) {
    const results = Array.isArray(scanner?.result?.Results)
      ? (scanner.result.Results as { Vulnerabilities?: unknown }[])
      : [];
    for (const r of results) {
      const vulns = Array.isArray(r?.Vulnerabilities) ? (r.Vulnerabilities as Record<string, unknown>[]) : [];
      for (const v of vulns) {
        if (findings.length >= MAX_FINDINGS)
          throw new Error(`the attestation lists more than ${MAX_FINDINGS} findings`);
        if (!v || typeof v.VulnerabilityID !== 'string' || !v.VulnerabilityID) continue;
        const f: Finding = { id: v.VulnerabilityID, severity: severityOf(v.Severity) };
        if (typeof v.PkgName === 'string') f.resource = v.PkgName;
        if (typeof v.InstalledVersion === 'string') f.installedVersion = v.InstalledVersion;
        if (typeof v.FixedVersion === 'string' && v.FixedVersion) f.fixedVersion = v.FixedVersion;
        findings.push(f);
      }
    }
  }
  const out: { findings: Finding[]; scannedAt?: Date; scanner?: string } = { findings };
  const finished = p.metadata?.scanFinishedOn ?? p.metadata?.buildFinishedOn;
  if (typeof finished === 'string' && Number.isFinite(Date.parse(finished))) out.scannedAt = new Date(finished);
  const uri = scanners[0]?.uri;
  if (typeof uri === 'string') out.scanner = uri;
  return out;
}
