// Trust end to end, on the real control plane and registry, the operator running as its
// ServiceAccount: only signed images are rolled out (keyless with the trust root from the
// operator's config, and keys from Secrets); Trivy Operator reports are mapped to what runs,
// a new report makes a policy non-compliant without any rollout, and a report on a
// candidate refuses it before it runs anywhere here. Notary Project signatures (notation-go's)
// are accepted by a trust policy whose trust store is a ConfigMap.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { SIGN_PREDICATE } from '../../src/verify/signatures.ts';
import { BUNDLE_PREDICATE_ANNOTATION } from '../../src/verify/cosign-artifacts.ts';
import { waitFor } from '../support/manual-clock.ts';
import { kubectl, newNamespace } from './support/env.ts';
import type { Operator } from './support/operator.ts';
import {
  applyPolicy,
  applyWorkload,
  requestReconcile,
  specImage,
  waitForPolicy,
  workload,
} from './support/policies.ts';
import { RebuildEnv, eventReasons } from './support/rebuild-env.ts';
import { ecKeyPair, SigstoreFixtures, statementFor } from '../support/sigstore.ts';
import { NotaryFixtures } from '../support/notation.ts';
import { MediaTypes } from '../../src/registry/manifest.ts';

const GITHUB = 'https://token.actions.githubusercontent.com';
const WORKFLOW = 'https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main';
const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const CRD = fileURLToPath(new URL('../fixtures/trivy-vulnerabilityreports-crd.yaml', import.meta.url));
const SECRETS_CRD = fileURLToPath(new URL('../fixtures/trivy-exposedsecretreports-crd.yaml', import.meta.url));

function applyReport(
  ns: string,
  name: string,
  digest: string,
  vulns: { id: string; severity: string; fixed?: string }[],
) {
  kubectl(['apply', '-n', ns, '-f', '-'], {
    input: stringify({
      apiVersion: 'aquasecurity.github.io/v1alpha1',
      kind: 'VulnerabilityReport',
      metadata: {
        name,
        labels: { 'trivy-operator.container.name': 'app', 'app.kubernetes.io/managed-by': 'trivy-operator' },
      },
      report: {
        updateTimestamp: new Date().toISOString(),
        scanner: { name: 'Trivy', vendor: 'Aqua Security', version: '0.57.0' },
        artifact: { repository: 'shop/scan', digest },
        summary: { criticalCount: vulns.filter((v) => v.severity === 'CRITICAL').length },
        vulnerabilities: vulns.map((v) => ({
          vulnerabilityID: v.id,
          resource: 'openssl',
          installedVersion: '3.0.1',
          severity: v.severity,
          ...(v.fixed ? { fixedVersion: v.fixed } : {}),
        })),
      },
    }),
  });
}

describe('Trust: signatures and vulnerability reports', () => {
  let e: RebuildEnv;
  let operator: Operator;
  let fx: SigstoreFixtures;
  const key = ecKeyPair();

  before(async () => {
    // Trivy Operator's CRDs, as a cluster running it has: the operator watches its reports.
    kubectl(['apply', '-f', CRD, '-f', SECRETS_CRD]);
    kubectl([
      'wait',
      '--for=condition=Established',
      'crd/vulnerabilityreports.aquasecurity.github.io',
      'crd/exposedsecretreports.aquasecurity.github.io',
    ]);
    fx = await SigstoreFixtures.create();
    e = await RebuildEnv.start({}, {}, fx.trustedRoot());
    operator = await e.operator('op-trust', `e2e-trust-${Date.now()}`);
    await operator.waitForLog((l) => l.message === 'controllers started', 'leading');
  });

  after(async () => {
    if (operator) assert.equal(await operator.stop(), 0);
    await e?.stop();
  });

  it('rolls out signed digests only: an unsigned one is refused and holds the Deployment, until it is signed', async () => {
    const ns = newNamespace('sig');
    kubectl(['create', 'secret', 'generic', 'cosign', '-n', ns, `--from-literal=cosign.pub=${key.publicPem}`]);
    const repo = `${e.registry.host}/shop/signed`;
    const v1 = await e.pusher.pushImage('shop/signed', '1.0', { seed: 'signed-v1' });
    // cosign 2 keyless: a .sig tag with a Fulcio certificate and a Rekor SET.
    await e.pusher.pushCosignTag('shop/signed', v1.digest, 'sig', [
      await fx.legacySignature(repo, v1.digest, { identity: { subject: WORKFLOW, issuer: GITHUB } }),
    ]);
    applyWorkload(ns, 'Deployment', 'web', e.image('shop/signed', '1.0'));
    applyPolicy(ns, 'web', {
      image: repo,
      follow: { tag: '1.0' },
      workloads: { names: ['web'] },
      verify: {
        signature: {
          keyless: [{ issuer: GITHUB, subjectRegExp: 'https://github\\.com/acme/shop/.*' }],
          keys: [{ secretRef: { name: 'cosign' } }],
        },
      },
    });
    let s = await waitForPolicy(operator, ns, 'web', 'v1 accepted and rolled out', (x) => {
      const w = workload(x, 'Deployment', 'web');
      return x.latest?.digest === v1.digest && x.latest.verified === true && w?.state === 'UpToDate';
    });
    assert.match(
      s.latest?.checks?.find((c) => c.name === 'signature')?.message ?? '',
      /signed by https:\/\/github\.com\/acme\/shop/,
    );
    assert.equal(specImage(ns, 'Deployment', 'web'), `${repo}@${v1.digest}`);

    // An unsigned digest lands on the tag: refused, the Deployment stays where it is.
    const v2 = await e.pusher.pushImage('shop/signed', '1.0', { seed: 'signed-v2' });
    s = await waitForPolicy(
      operator,
      ns,
      'web',
      'v2 refused',
      (x) => x.latest?.digest === v2.digest && x.latest.verified === false,
    );
    const ready = s.conditions?.find((c) => c.type === 'Ready');
    assert.equal(ready?.reason, 'CandidateRefused');
    assert.match(ready?.message ?? '', new RegExp(`signature: no cosign signature found for ${v2.digest}`));
    assert.equal(workload(s, 'Deployment', 'web')?.state, 'Blocked');
    assert.equal(specImage(ns, 'Deployment', 'web'), `${repo}@${v1.digest}`);
    assert.ok(eventReasons(ns, 'web').includes('CandidateRefused'));

    // A signature by a key nobody trusts changes nothing; one by the Secret's key (cosign 3:
    // a bundle in the referrers) is accepted on the next look, asked for with the annotation.
    const subject = {
      digest: v2.digest,
      mediaType: MediaTypes.ociManifest,
      size: await e.pusher.manifestSize('shop/signed', v2.digest),
    };
    const attach = async (
      by: ReturnType<typeof ecKeyPair>,
      existing: Awaited<ReturnType<typeof e.pusher.pushReferrer>>[],
    ) =>
      e.pusher.pushReferrer('shop/signed', subject, BUNDLE_TYPE, existing, {
        mediaType: BUNDLE_TYPE,
        body: Buffer.from(JSON.stringify(await fx.signatureBundle(repo, v2.digest, { key: by }))),
        annotations: { [BUNDLE_PREDICATE_ANNOTATION]: SIGN_PREDICATE },
      });
    const forged = await attach(ecKeyPair(), []);
    requestReconcile(ns, 'web');
    await waitForPolicy(operator, ns, 'web', 'forged signature refused', (x) =>
      /SIGNATURE_ERROR/.test(x.latest?.checks?.find((c) => c.name === 'signature')?.message ?? ''),
    );
    assert.equal(specImage(ns, 'Deployment', 'web'), `${repo}@${v1.digest}`);
    await attach(key, [forged]);
    requestReconcile(ns, 'web');
    s = await waitForPolicy(operator, ns, 'web', 'v2 accepted and rolled out', (x) => {
      const w = workload(x, 'Deployment', 'web');
      return x.latest?.digest === v2.digest && x.latest.verified === true && w?.state === 'UpToDate';
    });
    assert.equal(s.latest?.checks?.find((c) => c.name === 'signature')?.message, 'signed by key cosign/cosign.pub');
    assert.equal(specImage(ns, 'Deployment', 'web'), `${repo}@${v2.digest}`);
    const audit = await operator.waitForLog(
      (l) => l.audit === true && l.reason === 'CandidateAccepted' && l.namespace === ns && l.digest === v2.digest,
      'the acceptance in the audit trail',
    );
    assert.equal(audit.digest, v2.digest);
    assert.deepEqual(audit.checks, ['digest:passed', 'signature:passed']);
    const refusal = operator.findLog(
      (l) => l.audit === true && l.reason === 'CandidateRefused' && l.namespace === ns && l.digest === v2.digest,
    );
    assert.equal(refusal?.check, 'signature');
    const rollout = await operator.waitForLog(
      (l) => l.audit === true && l.reason === 'RolloutStarted' && l.namespace === ns && l.digest === v2.digest,
      'the rollout in the audit trail',
    );
    assert.deepEqual(
      [rollout.workload, rollout.container, rollout.previousImage],
      ['Deployment/web', 'app', `${repo}@${v1.digest}`],
    );
  });

  it("Notary Project signatures: a digest notation-go signed is rolled out (trust store in a ConfigMap); a stranger's signature is refused", async () => {
    const ns = newNamespace('notary');
    const notary = await NotaryFixtures.create();
    kubectl(['create', 'configmap', 'notary-roots', '-n', ns, `--from-literal=roots.pem=${notary.rootPem}`]);
    const repo = `${e.registry.host}/shop/notary`;
    const v1 = await e.pusher.pushImage('shop/notary', '1.0', { seed: 'notary-v1' });
    await notary.sign(`${repo}@${v1.digest}`, 'leaf', { envelope: 'cose' });
    applyWorkload(ns, 'Deployment', 'web', e.image('shop/notary', '1.0'));
    applyPolicy(ns, 'web', {
      image: repo,
      follow: { tag: '1.0' },
      workloads: { names: ['web'] },
      verify: {
        signature: {
          notation: [
            {
              name: 'acme-release',
              trustStores: [{ configMapRef: { name: 'notary-roots' } }],
              trustedIdentities: ['x509.subject: C=US, ST=WA, O=Acme'],
            },
          ],
        },
      },
    });
    let s = await waitForPolicy(operator, ns, 'web', 'v1 accepted and rolled out', (x) => {
      const w = workload(x, 'Deployment', 'web');
      return x.latest?.digest === v1.digest && x.latest.verified === true && w?.state === 'UpToDate';
    });
    assert.equal(
      s.latest?.checks?.find((c) => c.name === 'signature')?.message,
      'signed by C=US, ST=WA, L=Seattle, O=Acme, CN=release (Notary COSE, trust policy acme-release)',
    );
    assert.equal(specImage(ns, 'Deployment', 'web'), `${repo}@${v1.digest}`);

    // Signed before it is tagged, as a pipeline does: the operator sees it signed from the start.
    const v2 = await e.pusher.pushImage('shop/notary', undefined, { seed: 'notary-v2' });
    await notary.sign(`${repo}@${v2.digest}`, 'other', { envelope: 'jws' });
    await e.pusher.copyManifest('shop/notary', v2.digest, '1.0', v2.mediaType);
    s = await waitForPolicy(
      operator,
      ns,
      'web',
      'v2 refused',
      (x) => x.latest?.digest === v2.digest && x.latest.verified === false,
    );
    assert.match(
      s.conditions?.find((c) => c.type === 'Ready')?.message ?? '',
      /signature: no valid Notary signature: referrer sha256:[0-9a-f]{64}: C=US, ST=WA, L=Seattle, O=Evil Corp, CN=release is not a trusted identity/,
    );
    assert.equal(specImage(ns, 'Deployment', 'web'), `${repo}@${v1.digest}`);
  });

  it('asks the registry scanner (Harbor API) before the candidate runs: it waits while Harbor scans, then is judged by its findings', async () => {
    const ns = newNamespace('harbor');
    kubectl([
      'create',
      'secret',
      'generic',
      'harbor-robot',
      '-n',
      ns,
      '--from-literal=username=robot$shop',
      '--from-literal=password=s3cret',
    ]);
    // Harbor's API for this test's registry, on loopback: the scan status is the test's to set.
    const REPORT = 'application/vnd.security.vulnerability.report; version=1.1';
    const harbor = { status: 'Running', vulnerabilities: [] as object[], requests: [] as string[] };
    const server = createServer((req, res) => {
      harbor.requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      const expected = `Basic ${Buffer.from('robot$shop:s3cret').toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401).end('{"errors":[{"message":"unauthorized"}]}');
        return;
      }
      const body = req.url?.includes('/additions/vulnerabilities')
        ? { [REPORT]: { vulnerabilities: harbor.vulnerabilities } }
        : { scan_overview: { [REPORT]: { scan_status: harbor.status, end_time: new Date().toISOString() } } };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const repo = `${e.registry.host}/shop/harbored`;
      const v1 = await e.pusher.pushImage('shop/harbored', '1.0', { seed: 'harbored-v1' });
      applyWorkload(ns, 'Deployment', 'web', e.image('shop/harbored', '1.0'));
      applyPolicy(ns, 'web', {
        image: repo,
        follow: { tag: '1.0' },
        workloads: { names: ['web'] },
        verify: {
          vulnerabilities: {
            maxSeverity: 'HIGH',
            scanners: [{ type: 'harbor', url: `http://127.0.0.1:${port}`, secretRef: { name: 'harbor-robot' } }],
          },
        },
      });
      let s = await waitForPolicy(
        operator,
        ns,
        'web',
        'v1 waits for Harbor',
        (x) => x.conditions?.some((c) => c.type === 'Ready' && c.reason === 'ScanPending') === true,
      );
      assert.match(
        s.conditions?.find((c) => c.type === 'Ready')?.message ?? '',
        new RegExp(
          `waiting for Harbor ${e.registry.host.replace(/\./g, '\\.')} to finish scanning ${v1.digest} \\(Harbor scan Running\\)`,
        ),
      );
      assert.ok(
        harbor.requests[0]?.startsWith(
          `GET /api/v2.0/projects/shop/repositories/harbored/artifacts/${v1.digest}?with_scan_overview=true`,
        ),
      );
      assert.equal(specImage(ns, 'Deployment', 'web'), `${repo}:1.0`);
      // Harbor finishes: a HIGH (allowed by maxSeverity HIGH) and a LOW.
      harbor.status = 'Success';
      harbor.vulnerabilities = [
        { id: 'CVE-2026-7001', package: 'openssl', version: '3.0.1', fix_version: '3.0.2', severity: 'High' },
        { id: 'CVE-2026-7002', package: 'zlib', version: '1.2.13', severity: 'Low' },
      ];
      requestReconcile(ns, 'web');
      s = await waitForPolicy(operator, ns, 'web', 'v1 accepted on the Harbor scan and rolled out', (x) => {
        const w = workload(x, 'Deployment', 'web');
        return x.latest?.digest === v1.digest && x.latest.verified === true && w?.state === 'UpToDate';
      });
      const check = s.latest?.checks?.find((c) => c.name === 'vulnerabilities');
      assert.match(
        check?.message ?? '',
        new RegExp(`^Harbor ${e.registry.host.replace(/\./g, '\\.')} scan of \\d{4}-`),
      );
      assert.deepEqual(check?.findings, { critical: 0, high: 1, medium: 0, low: 1, unknown: 0 });
      assert.equal(specImage(ns, 'Deployment', 'web'), `${repo}@${v1.digest}`);
    } finally {
      server.close();
    }
  });

  it('scans a never-run candidate on demand: a Job per digest, waited for, its signed attestation accepts or refuses it, then the Job is deleted', async () => {
    const ns = newNamespace('ondemand');
    const scanKey = ecKeyPair();
    kubectl(['create', 'secret', 'generic', 'scan-key', '-n', ns, '--from-literal=cosign.key=unused-here']);
    kubectl(['create', 'secret', 'generic', 'scan-pub', '-n', ns, `--from-literal=cosign.pub=${scanKey.publicPem}`]);
    const repo = `${e.registry.host}/shop/ondemand`;
    const v1 = await e.pusher.pushImage('shop/ondemand', '1.0', { seed: 'ondemand-v1' });
    applyWorkload(ns, 'Deployment', 'web', e.image('shop/ondemand', '1.0'));
    applyPolicy(ns, 'web', {
      image: repo,
      follow: { tag: '1.0' },
      workloads: { names: ['web'] },
      verify: {
        vulnerabilities: {
          maxSeverity: 'HIGH',
          onDemandScan: {
            signingKeySecretName: 'scan-key',
            publicKey: { secretRef: { name: 'scan-pub' } },
            // The fakelet runs Job pods to completion: this one for 20 s, during which the test
            // does what Trivy and cosign would (no image runs here).
            template: {
              metadata: { annotations: { 'testcp.patchline.dev/run-for': '20s' } },
              spec: {
                containers: [{ name: 'scan', image: 'scanner.example/trivy-cosign:1', args: ['scan', '$(image)'] }],
              },
            },
          },
        },
      },
    });
    // Trivy's cosign-vuln predicate, signed with the scan key and no transparency-log entry
    // (cosign attest --tlog-upload=false), attached as cosign's .att tag.
    const attest = async (digest: string, vulns: { id: string; severity: string }[]) => {
      const predicate = {
        scanner: {
          uri: 'pkg:github/aquasecurity/trivy@0.58.1',
          result: {
            SchemaVersion: 2,
            Results: [
              {
                Target: 'debian 12',
                Vulnerabilities: vulns.map((v) => ({
                  VulnerabilityID: v.id,
                  PkgName: 'openssl',
                  Severity: v.severity,
                })),
              },
            ],
          },
        },
        metadata: { scanStartedOn: new Date().toISOString(), scanFinishedOn: new Date().toISOString() },
      };
      const statement = statementFor(digest, repo, 'https://cosign.sigstore.dev/attestation/vuln/v1', predicate);
      await e.pusher.pushCosignTag('shop/ondemand', digest, 'att', [
        await fx.legacyAttestation(statement, { key: scanKey }, { tlog: false }),
      ]);
    };
    const jobOf = (digest: string) => `scan-web-${digest.slice(7, 19)}`;
    const job = (name: string) =>
      JSON.parse(kubectl(['get', 'job', name, '-n', ns, '-o', 'json', '--ignore-not-found']).stdout || 'null') as {
        metadata: { ownerReferences: { kind: string; name: string }[] };
        spec: { template: { spec: { restartPolicy: string; containers: { args: string[] }[] } } };
      } | null;

    let s = await waitForPolicy(
      operator,
      ns,
      'web',
      'v1 waits for its scan Job',
      (x) => x.conditions?.some((c) => c.type === 'Ready' && c.reason === 'ScanPending') === true,
    );
    assert.match(
      s.conditions?.find((c) => c.type === 'Ready')?.message ?? '',
      new RegExp(
        `waiting for the scan Job ${ns}/${jobOf(v1.digest)} to finish scanning ${v1.digest} \\((Queued|Running)\\) since `,
      ),
    );
    assert.ok(s.latest?.pendingSince);
    const created = job(jobOf(v1.digest));
    assert.deepEqual(created?.spec.template.spec.containers[0]?.args, ['scan', `${repo}@${v1.digest}`]);
    assert.equal(created?.spec.template.spec.restartPolicy, 'Never');
    assert.deepEqual(
      created?.metadata.ownerReferences.map((o) => `${o.kind}/${o.name}`),
      ['ImagePolicy/web'],
    );
    assert.equal(specImage(ns, 'Deployment', 'web'), `${repo}:1.0`); // nothing rolled while it waits
    await attest(v1.digest, [{ id: 'CVE-2026-0100', severity: 'LOW' }]);
    // The Job's end wakes the policy (it is watched): accepted, rolled out, the Job deleted.
    s = await waitForPolicy(operator, ns, 'web', 'v1 accepted on its scan and rolled out', (x) => {
      const w = workload(x, 'Deployment', 'web');
      return x.latest?.digest === v1.digest && x.latest.verified === true && w?.state === 'UpToDate';
    });
    assert.match(
      s.latest?.checks?.find((c) => c.name === 'vulnerabilities')?.message ?? '',
      /^vulnerability attestation \(pkg:github\/aquasecurity\/trivy@0\.58\.1\): /,
    );
    assert.equal(specImage(ns, 'Deployment', 'web'), `${repo}@${v1.digest}`);
    await waitFor(() => job(jobOf(v1.digest)) === null, 'the scan Job of v1 deleted', 30_000, 250);

    // v2 carries a CRITICAL finding: its scan refuses it, and the Deployment stays on v1.
    const v2 = await e.pusher.pushImage('shop/ondemand', '1.0', { seed: 'ondemand-v2' });
    await waitForPolicy(
      operator,
      ns,
      'web',
      'v2 waits for its scan Job',
      (x) =>
        x.latest?.digest === v2.digest &&
        x.conditions?.some((c) => c.type === 'Ready' && c.reason === 'ScanPending') === true,
    );
    await attest(v2.digest, [{ id: 'CVE-2026-0200', severity: 'CRITICAL' }]);
    s = await waitForPolicy(
      operator,
      ns,
      'web',
      'v2 refused on its scan',
      (x) =>
        x.latest?.digest === v2.digest &&
        x.conditions?.some((c) => c.type === 'Ready' && c.reason === 'CandidateRefused') === true,
    );
    assert.match(
      s.conditions?.find((c) => c.type === 'Ready')?.message ?? '',
      /vulnerabilities: vulnerability attestation .*CVE-2026-0200/,
    );
    assert.equal(specImage(ns, 'Deployment', 'web'), `${repo}@${v1.digest}`);
    await waitFor(() => job(jobOf(v2.digest)) === null, 'the scan Job of v2 deleted', 30_000, 250);
    assert.ok(eventReasons(ns, 'web').includes('ScanPending'));
  });

  it("maps reports both ways through an index: a running index by its platform manifest's report, a running platform manifest by its index's", async () => {
    const ns = newNamespace('multiarch');
    const push = (name: string) =>
      e.pusher.pushImage(`shop/${name}`, '1.0', { seed: `${name}-v1`, platforms: ['linux/amd64', 'linux/arm64'] });
    const platform = (img: Awaited<ReturnType<typeof push>>, p: string) =>
      img.children.find((c) => c.platform === p)!.digest;
    const spec = (name: string, mode: string) => ({
      image: `${e.registry.host}/shop/${name}`,
      follow: { tag: '1.0' },
      workloads: { names: [name] },
      rollout: { mode },
      verify: { vulnerabilities: { maxSeverity: 'HIGH', requireScan: false } },
    });
    // "amd" runs an index (what a pull by tag reports); Trivy Operator scanned its amd64 manifest.
    const a = await push('amd');
    applyWorkload(ns, 'Deployment', 'amd', e.image('shop/amd', '1.0'));
    applyPolicy(ns, 'amd', spec('amd', 'Auto'));
    applyReport(ns, 'replicaset-amd-app', platform(a, 'linux/amd64'), [
      { id: 'CVE-2026-5555', severity: 'CRITICAL', fixed: '1.1' },
    ]);
    // "arm" runs the arm64 manifest by digest (what some runtimes report), kept there by Manual
    // mode; the scan on record names the index.
    const b = await push('arm');
    const arm64 = platform(b, 'linux/arm64');
    applyWorkload(ns, 'Deployment', 'arm', `${e.registry.host}/shop/arm@${arm64}`);
    applyPolicy(ns, 'arm', spec('arm', 'Manual'));
    applyReport(ns, 'index-scan', b.digest, [{ id: 'CVE-2026-6666', severity: 'MEDIUM' }]);

    let s = await waitForPolicy(
      operator,
      ns,
      'amd',
      'the running index judged by its amd64 report',
      (x) => workload(x, 'Deployment', 'amd')?.vulnerabilities?.report === `${ns}/replicaset-amd-app`,
    );
    assert.equal(workload(s, 'Deployment', 'amd')?.runningDigest, a.digest);
    assert.equal(workload(s, 'Deployment', 'amd')?.vulnerabilities?.critical, 1);
    assert.equal(s.conditions?.find((c) => c.type === 'Compliant')?.status, 'False');
    s = await waitForPolicy(
      operator,
      ns,
      'arm',
      'the running arm64 manifest judged by its index report',
      (x) => workload(x, 'Deployment', 'arm')?.vulnerabilities?.report === `${ns}/index-scan`,
    );
    assert.equal(workload(s, 'Deployment', 'arm')?.runningDigest, arm64);
    assert.equal(workload(s, 'Deployment', 'arm')?.vulnerabilities?.medium, 1);
    assert.equal(s.conditions?.find((c) => c.type === 'Compliant')?.status, 'True');
  });

  it('maps scans to what runs: a new report makes the policy non-compliant without a rollout; a scanned candidate is refused', async () => {
    const ns = newNamespace('scan');
    const repo = `${e.registry.host}/shop/scan`;
    const v1 = await e.pusher.pushImage('shop/scan', '1.0', { seed: 'scan-v1' });
    applyWorkload(ns, 'Deployment', 'api', e.image('shop/scan', '1.0'));
    const spec = (allow: object[] = []) => ({
      image: repo,
      follow: { tag: '1.0' },
      workloads: { names: ['api'] },
      verify: { vulnerabilities: { maxSeverity: 'HIGH', requireScan: false, ignoreUnfixed: true, allow } },
    });
    applyPolicy(ns, 'api', spec());
    let s = await waitForPolicy(
      operator,
      ns,
      'api',
      'v1 rolled out, not scanned',
      (x) => workload(x, 'Deployment', 'api')?.state === 'UpToDate',
    );
    assert.equal(workload(s, 'Deployment', 'api')?.vulnerabilities, undefined);
    assert.equal(s.conditions?.find((c) => c.type === 'Compliant')?.status, 'True');
    const generation = kubectl(['get', 'deployment', 'api', '-n', ns, '-o', 'jsonpath={.metadata.generation}']).stdout;

    // Trivy Operator scans the running ReplicaSet and finds a fixed CRITICAL and an unfixed one.
    applyReport(ns, 'replicaset-api-7d9c-app', v1.digest, [
      { id: 'CVE-2026-1111', severity: 'CRITICAL', fixed: '3.0.9' },
      { id: 'CVE-2026-2222', severity: 'CRITICAL' },
      { id: 'CVE-2026-3333', severity: 'HIGH', fixed: '3.0.9' },
      { id: 'CVE-2026-4444', severity: 'LOW' },
    ]);
    s = await waitForPolicy(
      operator,
      ns,
      'api',
      'non-compliant from the report',
      (x) => x.conditions?.some((c) => c.type === 'Compliant' && c.status === 'False') ?? false,
    );
    assert.deepEqual(workload(s, 'Deployment', 'api')?.vulnerabilities, {
      critical: 2,
      high: 1,
      medium: 0,
      low: 1,
      unknown: 0,
      blocking: 1,
      report: `${ns}/replicaset-api-7d9c-app`,
      scannedAt: workload(s, 'Deployment', 'api')?.vulnerabilities?.scannedAt,
    });
    const violation = s.violations?.find((v) => v.rule === 'vulnerabilities');
    assert.equal(violation?.workload, 'Deployment/api');
    assert.equal(violation?.image, v1.digest);
    assert.match(violation?.message ?? '', /1 finding\(s\) above HIGH: CVE-2026-1111 \(CRITICAL in openssl\)/);
    assert.equal(
      kubectl(['get', 'deployment', 'api', '-n', ns, '-o', 'jsonpath={.metadata.generation}']).stdout,
      generation,
      'no rollout happened',
    );
    assert.ok(eventReasons(ns, 'api').includes('PolicyViolation'));

    // An allow-list entry with a reason and an expiry makes it compliant again.
    applyPolicy(
      ns,
      'api',
      spec([{ id: 'CVE-2026-1111', expires: '2099-01-01', reason: 'not reachable: no TLS server' }]),
    );
    s = await waitForPolicy(
      operator,
      ns,
      'api',
      'compliant with the exception',
      (x) => x.conditions?.some((c) => c.type === 'Compliant' && c.status === 'True') ?? false,
    );
    assert.equal(workload(s, 'Deployment', 'api')?.vulnerabilities?.blocking, 0);

    // A candidate already scanned where it runs elsewhere (staging) with a CRITICAL: refused.
    const staging = newNamespace('staging');
    const v2 = await e.pusher.pushImage('shop/scan', undefined, { seed: 'scan-v2' });
    applyReport(staging, 'replicaset-api-5f6b-app', v2.digest, [
      { id: 'CVE-2026-9999', severity: 'CRITICAL', fixed: '1.2' },
    ]);
    await e.pusher.copyManifest('shop/scan', v2.digest, '1.0', v2.mediaType);
    s = await waitForPolicy(
      operator,
      ns,
      'api',
      'v2 refused by its scan',
      (x) => x.latest?.digest === v2.digest && x.latest.verified === false,
    );
    assert.match(
      s.conditions?.find((c) => c.type === 'Ready')?.message ?? '',
      new RegExp(
        `vulnerabilities: VulnerabilityReport ${staging}/replicaset-api-5f6b-app: 1 finding\\(s\\) above HIGH: CVE-2026-9999`,
      ),
    );
    assert.equal(specImage(ns, 'Deployment', 'api'), `${repo}@${v1.digest}`);

    // A multi-platform candidate whose scan names one of its platform manifests (Trivy scans
    // what a node pulled): judged by it, so refused too.
    const v3 = await e.pusher.pushImage('shop/scan', undefined, {
      seed: 'scan-v3',
      platforms: ['linux/amd64', 'linux/arm64'],
    });
    const arm64 = v3.children.find((c) => c.platform === 'linux/arm64')!.digest;
    const reportsBefore = await operator.metric('patchline_informer_objects', { informer: 'vulnerabilityreports' });
    applyReport(staging, 'replicaset-api-arm64-app', arm64, [
      { id: 'CVE-2026-7777', severity: 'CRITICAL', fixed: '1.3' },
    ]);
    // The report is in the operator's cache before the candidate appears (otherwise the
    // candidate is judged unscanned first, and this test would race the watch).
    await operator.waitUntil(
      async () =>
        (await operator.metric('patchline_informer_objects', { informer: 'vulnerabilityreports' })) > reportsBefore,
      'the report cached',
    );
    await e.pusher.copyManifest('shop/scan', v3.digest, '1.0', v3.mediaType);
    s = await waitForPolicy(
      operator,
      ns,
      'api',
      'v3 refused by the scan of its arm64 manifest',
      (x) => x.latest?.digest === v3.digest && x.latest.verified === false,
    );
    assert.match(
      s.conditions?.find((c) => c.type === 'Ready')?.message ?? '',
      new RegExp(
        `vulnerabilities: VulnerabilityReport ${staging}/replicaset-api-arm64-app \\(of its platform manifests\\): 1 finding\\(s\\) above HIGH: CVE-2026-7777`,
      ),
    );
    assert.equal(specImage(ns, 'Deployment', 'api'), `${repo}@${v1.digest}`);
  });

  it('runAsNonRoot: a candidate whose image runs as root is refused, and the Deployment keeps its digest', async () => {
    const ns = newNamespace('nonroot');
    const repo = `${e.registry.host}/shop/nonroot`;
    const v1 = await e.pusher.pushImage('shop/nonroot', '1.0', { seed: `${ns}-v1`, user: '65532:65532' });
    applyWorkload(ns, 'Deployment', 'app', e.image('shop/nonroot', '1.0'));
    applyPolicy(ns, 'app', {
      image: repo,
      follow: { tag: '1.0' },
      workloads: { names: ['app'] },
      verify: { runAsNonRoot: true, allowedUserIds: [65532] },
    });
    let s = await waitForPolicy(
      operator,
      ns,
      'app',
      'v1 (uid 65532) rolled out',
      (x) => workload(x, 'Deployment', 'app')?.state === 'UpToDate' && x.latest?.digest === v1.digest,
    );
    assert.equal(s.latest?.checks?.find((c) => c.name === 'user')?.message, 'runs as uid 65532 (image)');
    assert.equal(workload(s, 'Deployment', 'app')?.user, 'uid 65532 (image)', 'who it runs as, in status');
    assert.equal(s.conditions?.find((c) => c.type === 'Compliant')?.status, 'True');
    // The next build forgot its USER line: it would run as root.
    const v2 = await e.pusher.pushImage('shop/nonroot', '1.0', { seed: `${ns}-v2` });
    s = await waitForPolicy(
      operator,
      ns,
      'app',
      'v2 refused',
      (x) => x.latest?.digest === v2.digest && x.latest.verified === false,
    );
    assert.match(
      s.conditions?.find((c) => c.type === 'Ready')?.message ?? '',
      /user: Deployment\/app\/app: would run as root \(image\)/,
    );
    assert.equal(specImage(ns, 'Deployment', 'app'), `${repo}@${v1.digest}`, 'the Deployment keeps its digest');

    // Someone sets the pod to run as root: a violation, without any new image.
    kubectl([
      'patch',
      'deployment',
      'app',
      '-n',
      ns,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { template: { spec: { securityContext: { runAsUser: 0 } } } } }),
    ]);
    s = await waitForPolicy(operator, ns, 'app', 'the root container reported', (x) =>
      (x.violations ?? []).some((v) => v.rule === 'user'),
    );
    assert.deepEqual(
      s.violations?.filter((v) => v.rule === 'user').map((v) => [v.workload, v.container, v.message]),
      [['Deployment/app', 'app', 'runs as root (pod securityContext)']],
    );
    assert.equal(s.conditions?.find((c) => c.type === 'Compliant')?.status, 'False');
    assert.equal(workload(s, 'Deployment', 'app')?.user, 'root (pod securityContext)');
  });

  it('verify.secrets: an ExposedSecretReport for a running digest makes the policy non-compliant without a rollout; an allow-list entry clears it', async () => {
    const ns = newNamespace('secrets');
    const v1 = await e.pusher.pushImage('shop/secrets', '1.0', { seed: `${ns}-v1` });
    applyWorkload(ns, 'Deployment', 'api', e.image('shop/secrets', '1.0'));
    const spec = (allow: object[] = []) => ({
      image: `${e.registry.host}/shop/secrets`,
      follow: { tag: '1.0' },
      workloads: { names: ['api'] },
      verify: { secrets: { maxSeverity: 'NONE', allow } },
    });
    applyPolicy(ns, 'api', spec());
    await waitForPolicy(
      operator,
      ns,
      'api',
      'v1 rolled out',
      (x) => workload(x, 'Deployment', 'api')?.state === 'UpToDate' && x.latest?.digest === v1.digest,
    );
    const generation = kubectl(['get', 'deployment', 'api', '-n', ns, '-o', 'jsonpath={.metadata.generation}']).stdout;
    // Trivy Operator finds a key baked into what runs.
    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: stringify({
        apiVersion: 'aquasecurity.github.io/v1alpha1',
        kind: 'ExposedSecretReport',
        metadata: { name: 'replicaset-api-5f6b-app', labels: { 'trivy-operator.container.name': 'app' } },
        report: {
          updateTimestamp: new Date().toISOString(),
          scanner: { name: 'Trivy', vendor: 'Aqua Security', version: '0.57.0' },
          artifact: { repository: 'shop/secrets', digest: v1.digest },
          summary: { criticalCount: 1, highCount: 0, mediumCount: 0, lowCount: 0 },
          secrets: [
            {
              target: '/app/.env',
              ruleID: 'aws-access-key-id',
              title: 'AWS Access Key ID',
              category: 'AWS',
              severity: 'CRITICAL',
              match: 'AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE',
            },
          ],
        },
      }),
    });
    let s = await waitForPolicy(operator, ns, 'api', 'non-compliant', (x) =>
      (x.violations ?? []).some((v) => v.rule === 'secrets'),
    );
    assert.equal(s.conditions?.find((c) => c.type === 'Compliant')?.status, 'False');
    assert.deepEqual(
      s.violations?.filter((v) => v.rule === 'secrets').map((v) => v.message),
      ['1 exposed secret(s) above NONE: aws-access-key-id (CRITICAL) in /app/.env'],
    );
    assert.deepEqual(workload(s, 'Deployment', 'api')?.secrets, {
      critical: 1,
      high: 0,
      medium: 0,
      low: 0,
      blocking: 1,
      rules: ['aws-access-key-id'],
      report: `${ns}/replicaset-api-5f6b-app`,
    });
    assert.ok(!JSON.stringify(s).includes('AKIAIOSFODNN7EXAMPLE'), 'the secret itself is never in status');
    assert.ok(eventReasons(ns, 'api').includes('PolicyViolation'));
    assert.equal(
      kubectl(['get', 'deployment', 'api', '-n', ns, '-o', 'jsonpath={.metadata.generation}']).stdout,
      generation,
      'no rollout happened',
    );
    // Accepted for a while, with a reason: compliant again.
    applyPolicy(
      ns,
      'api',
      spec([
        { ruleId: 'aws-access-key-id', path: '/app/.env', expires: '2099-01-01', reason: 'a revoked example key' },
      ]),
    );
    s = await waitForPolicy(
      operator,
      ns,
      'api',
      'compliant with the exception',
      (x) => x.conditions?.some((c) => c.type === 'Compliant' && c.status === 'True') ?? false,
    );
    assert.equal(workload(s, 'Deployment', 'api')?.secrets?.blocking, 0);
  });
});
