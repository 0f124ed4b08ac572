// The memory of the VulnerabilityReport index: 10,000 Trivy Operator reports (by default; a
// report per workload revision and container), as the informer hands them over, slimmed as
// they arrive (the transform) and indexed by digest. Compared with keeping the reports as the
// API server sends them, which is what a cache without a transform would hold.
//
//   node --expose-gc bench/reports.ts [--reports 10000] [--images 2000] [--findings 60]
//
// Images are shared by several reports (a digest run by several workloads), as in a cluster:
// their findings lists are held once. Prints heap figures and ends with one JSON line.
import { parseArgs } from 'node:util';
import {
  FindingsPool,
  ReportIndex,
  slimReportSharing,
  type SlimReport,
} from '../src/controllers/vulnerability-reports.ts';
import type { KubeObject } from '../src/runtime/kube-types.ts';

const { values } = parseArgs({
  options: {
    reports: { type: 'string', default: '10000' },
    images: { type: 'string', default: '2000' },
    findings: { type: 'string', default: '60' },
  },
});
const REPORTS = Number(values.reports);
const IMAGES = Number(values.images);
const FINDINGS = Number(values.findings);
const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'];

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function heapMiB(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

const hex = (n: number, width = 64): string => n.toString(16).padStart(width, '0');

/** A report as Trivy Operator writes it (the fields it sets; what the API server sends back). */
function trivyReport(i: number): KubeObject {
  const image = i % IMAGES;
  const vulnerabilities = Array.from({ length: FINDINGS }, (_, j) => ({
    vulnerabilityID: `CVE-2025-${(image * 7 + j) % 50_000}`,
    resource: `lib${j % 40}`,
    installedVersion: `1.${j}.0-r${image % 5}`,
    fixedVersion: j % 3 === 0 ? '' : `1.${j}.1`,
    severity: SEVERITIES[j % SEVERITIES.length],
    title: `A ${SEVERITIES[j % SEVERITIES.length]!.toLowerCase()} flaw in lib${j % 40} lets an attacker do something`,
    primaryLink: `https://avd.aquasec.com/nvd/cve-2025-${(image * 7 + j) % 50_000}`,
    score: 5 + (j % 5),
    target: '',
    links: [],
  }));
  return {
    apiVersion: 'aquasecurity.github.io/v1alpha1',
    kind: 'VulnerabilityReport',
    metadata: {
      name: `replicaset-web-${hex(i, 10)}-app`,
      namespace: `team-${i % 50}`,
      uid: `uid-${hex(i, 12)}`,
      resourceVersion: String(1000 + i),
      creationTimestamp: '2026-12-01T10:00:00Z',
      labels: {
        'trivy-operator.resource.kind': 'ReplicaSet',
        'trivy-operator.resource.name': `web-${hex(i, 10)}`,
        'trivy-operator.resource.namespace': `team-${i % 50}`,
        'trivy-operator.container.name': 'app',
      },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `web-${hex(i, 10)}`, uid: `rs-${i}` }],
      managedFields: [
        { manager: 'trivy-operator', operation: 'Update', apiVersion: 'aquasecurity.github.io/v1alpha1' },
      ],
    },
    report: {
      updateTimestamp: '2026-12-01T10:00:00Z',
      scanner: { name: 'Trivy', vendor: 'Aqua Security', version: '0.58.0' },
      registry: { server: 'registry.example.com' },
      artifact: { repository: `team/app${image % 100}`, tag: '1.0', digest: `sha256:${hex(image)}` },
      os: { family: 'alpine', name: '3.20.3' },
      summary: { criticalCount: 12, highCount: 12, mediumCount: 12, lowCount: 12, unknownCount: 12 },
      vulnerabilities,
    },
  } as unknown as KubeObject;
}

const base = heapMiB();

// As a cache without a transform holds them: every report as received (measured while held,
// then let go when the function returns).
function measureRaw(): number {
  const raw: KubeObject[] = [];
  for (let i = 0; i < REPORTS; i++) raw.push(JSON.parse(JSON.stringify(trivyReport(i))) as KubeObject);
  const held = heapMiB() - base;
  if (raw.length !== REPORTS) throw new Error('lost reports');
  return held;
}
const rawMiB = measureRaw();
const afterRaw = heapMiB();

// As the operator holds them: slimmed as they arrive, findings shared, indexed by digest.
const started = performance.now();
const transform = slimReportSharing(new FindingsPool());
const index = new ReportIndex();
const cache = new Map<string, SlimReport>();
for (let i = 0; i < REPORTS; i++) {
  // Parsed fresh, as from the watch stream; the received object is garbage once transformed.
  const slim = transform(JSON.parse(JSON.stringify(trivyReport(i))) as KubeObject);
  cache.set(`${slim.metadata.namespace}/${slim.metadata.name}`, slim);
  index.set(slim);
}
const ingestMs = performance.now() - started;
const slimMiB = heapMiB() - afterRaw;

// Looking a digest up (what a reconcile does per running container).
const lookups = 100_000;
const t0 = performance.now();
let found = 0;
for (let i = 0; i < lookups; i++) if (index.forDigest(`sha256:${hex(i % IMAGES)}`, `team-${i % 50}`)) found++;
const lookupUs = ((performance.now() - t0) * 1000) / lookups;

console.log(
  `${REPORTS} VulnerabilityReports (${IMAGES} images, ${FINDINGS} findings each): as received ${rawMiB.toFixed(1)} MiB of heap, ` +
    `slimmed and indexed ${slimMiB.toFixed(1)} MiB (${((slimMiB * 2 ** 20) / REPORTS / 1024).toFixed(2)} KiB a report)`,
);
console.log(
  `ingest ${ingestMs.toFixed(0)} ms (${((ingestMs * 1000) / REPORTS).toFixed(0)} µs a report, parse included); lookup by digest ${lookupUs.toFixed(2)} µs (${found} of ${lookups} found)`,
);
console.log(
  JSON.stringify({
    bench: 'reports',
    reports: REPORTS,
    images: IMAGES,
    findings_per_report: FINDINGS,
    raw_heap_mib: Number(rawMiB.toFixed(1)),
    slim_heap_mib: Number(slimMiB.toFixed(1)),
    slim_kib_per_report: Number(((slimMiB * 2 ** 20) / REPORTS / 1024).toFixed(2)),
    ingest_ms: Math.round(ingestMs),
    lookup_us: Number(lookupUs.toFixed(2)),
    cached: cache.size,
  }),
);
