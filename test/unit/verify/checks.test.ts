import assert from 'node:assert/strict';
import { approvedRegistry, firstFailure, runChecks } from '../../../src/verify/checks.ts';

const D = `sha256:${'d'.repeat(64)}`;
const now = new Date('2026-11-22T10:00:00Z');
const candidate = { image: 'myregistry.azurecr.io/shop/web:1.4', digest: D };
/** The registry serves the candidate's digest (the digest check's fact). */
const served = { matches: true, message: 'myregistry.azurecr.io/shop/web serves sha256:dddddddddddd' };

describe('candidate checks', () => {
  it('approves registries by host or by whole path prefix', () => {
    assert.ok(approvedRegistry('myregistry.azurecr.io/shop/web:1.4', ['myregistry.azurecr.io']));
    assert.ok(approvedRegistry('ghcr.io/acme/web@' + D, ['ghcr.io/acme']));
    assert.ok(!approvedRegistry('ghcr.io/acme-evil/web:1', ['ghcr.io/acme']), 'whole segments only');
    assert.ok(approvedRegistry('nginx:1.27', ['docker.io/library']), 'Docker Hub names are normalised');
    assert.ok(!approvedRegistry('evil.example/myregistry.azurecr.io/web:1', ['myregistry.azurecr.io']));
    assert.ok(!approvedRegistry('::not an image::', ['myregistry.azurecr.io']));
  });

  it('passes a recent image from an approved registry with verified provenance', () => {
    const results = runChecks(
      { registries: ['myregistry.azurecr.io'], maxAge: '720h', provenance: { requireBase: true } },
      candidate,
      {
        served,
        created: new Date('2026-11-20T10:00:00Z'),
        provenance: { verdict: 'Verified', message: 'built on sha256:… (annotation)' },
      },
      now,
    );
    assert.deepEqual(
      results.map((r) => [r.name, r.passed]),
      [
        ['registry', true],
        ['digest', true],
        ['age', true],
        ['provenance', true],
      ],
    );
    assert.equal(firstFailure(results), undefined);
    assert.equal(results[2]!.message, 'built 2026-11-20T10:00:00Z, within the maximum age 720h');
    const later = runChecks(
      { maxAge: '720h' },
      candidate,
      { created: new Date('2026-11-20T10:00:00Z') },
      new Date('2026-11-26T00:00:00Z'),
    );
    assert.equal(later[1]!.message, results[2]!.message, 'the message does not change as the image ages');
  });

  it('names the check that failed and why', () => {
    const results = runChecks(
      { registries: ['other.example'], maxAge: '24h', provenance: { requireBase: true } },
      candidate,
      {
        created: new Date('2026-11-01T10:00:00Z'),
        provenance: { verdict: 'Mismatch', message: 'declares base sha256:x, not the current base digest' },
      },
      now,
    );
    assert.equal(firstFailure(results)?.name, 'registry');
    assert.match(results.find((r) => r.name === 'age')!.message, /older than the maximum age 24h/);
    assert.equal(results.find((r) => r.name === 'provenance')?.passed, false);
  });

  it('fails closed: no created time for maxAge, no signature verdict, no scan', () => {
    const results = runChecks(
      { maxAge: '24h', signature: { keys: [{ secretRef: { name: 'k' } }] }, vulnerabilities: { maxSeverity: 'HIGH' } },
      candidate,
      { served, created: new Date(0) },
      now,
    );
    assert.deepEqual(
      results.filter((r) => !r.passed).map((r) => r.name),
      ['age', 'signature', 'vulnerabilities'],
    );
    assert.deepEqual(
      runChecks(undefined, candidate, {}, now).map((r) => r.name),
      ['digest'],
    );
  });

  it('passes on a verified signature and a scan within the gate; says which source refused', () => {
    const verify = {
      signature: { keys: [{ secretRef: { name: 'k' } }] },
      vulnerabilities: { maxSeverity: 'HIGH' as const, requireScan: true },
    };
    const passing = runChecks(
      verify,
      candidate,
      {
        served,
        signature: { verified: true, message: 'signed by key k/cosign.pub' },
        scan: { findings: [{ id: 'CVE-1', severity: 'HIGH' }], source: 'VulnerabilityReport shop/replicaset-web-web' },
      },
      now,
    );
    assert.ok(passing.every((r) => r.passed));
    const refused = runChecks(
      verify,
      candidate,
      {
        signature: { verified: false, message: 'no cosign signature found' },
        scan: { findings: [{ id: 'CVE-2', severity: 'CRITICAL' }], source: 'attestation by key k/cosign.pub' },
      },
      now,
    );
    assert.equal(refused.find((r) => r.name === 'signature')?.message, 'no cosign signature found');
    const vuln = refused.find((r) => r.name === 'vulnerabilities');
    assert.equal(vuln?.passed, false);
    assert.match(vuln?.message ?? '', /^attestation by key k\/cosign\.pub: .*CVE-2/);
  });

  it('lets an unscanned candidate through only with requireScan false', () => {
    const unscanned = (requireScan: boolean) =>
      runChecks({ vulnerabilities: { maxSeverity: 'HIGH', requireScan } }, candidate, {}, now).find(
        (r) => r.name === 'vulnerabilities',
      );
    assert.equal(unscanned(true)?.passed, false);
    assert.match(unscanned(true)?.message ?? '', /no scan of sha256:/);
    assert.equal(unscanned(false)?.passed, true);
  });
});

describe('the digest check', () => {
  it('passes only when the registry serves a manifest that hashes to the digest', () => {
    const digest = (facts: Parameters<typeof runChecks>[2]) =>
      runChecks(undefined, candidate, facts, now).find((r) => r.name === 'digest');
    assert.deepEqual(digest({ served }), { name: 'digest', passed: true, message: served.message });
    const altered = {
      matches: false,
      message: `the manifest myregistry.azurecr.io/shop/web serves for ${D} hashes to sha256:…`,
    };
    assert.deepEqual(digest({ served: altered }), { name: 'digest', passed: false, message: altered.message });
    assert.deepEqual(digest({}), {
      name: 'digest',
      passed: false,
      message: `the manifest of ${D} was not read yet`,
    });
  });
});

describe('the user check (verify.runAsNonRoot)', () => {
  const user = (verify: Parameters<typeof runChecks>[0], runAs: Parameters<typeof runChecks>[2]['runAs']) =>
    runChecks(verify, candidate, { served, ...(runAs ? { runAs } : {}) }, now).find((r) => r.name === 'user');
  const web = (pod = {}, own = {}) => ({ container: 'Deployment/web/app', pod, own });

  it('refuses a candidate that would run as root in a selected container, naming where the user comes from', () => {
    const root = user({ runAsNonRoot: true }, { imageUser: '', containers: [web()] });
    assert.equal(root?.passed, false);
    assert.equal(root?.message, 'Deployment/web/app: would run as root (image)');
    // The workload's runAsUser settles it, whatever the image says.
    const settled = user({ runAsNonRoot: true }, { imageUser: '0:0', containers: [web({ runAsUser: 1000 })] });
    assert.equal(settled?.passed, true);
    assert.equal(settled?.message, 'runs as uid 1000 (pod securityContext)');
    const rootByContext = user({ runAsNonRoot: true }, { imageUser: '1000', containers: [web({}, { runAsUser: 0 })] });
    assert.equal(rootByContext?.message, 'Deployment/web/app: would run as root (container securityContext)');
  });

  it('refuses a candidate the kubelet would not start: runAsNonRoot set and a user it cannot check', () => {
    const named = user({ runAsNonRoot: true }, { imageUser: 'app', containers: [web({ runAsNonRoot: true })] });
    assert.equal(named?.passed, false);
    assert.match(
      named?.message ?? '',
      /the kubelet would not start it: runAsNonRoot is set and the image's user "app"/,
    );
    // Without runAsNonRoot on the workload, a named user is only unknown: not refused.
    assert.equal(user({ runAsNonRoot: true }, { imageUser: 'app', containers: [web()] })?.passed, true);
  });

  it('holds the user to allowedUserIds when set: a name, whose uid is unknown, is refused then', () => {
    const verify = { runAsNonRoot: true, allowedUserIds: [65532] };
    assert.equal(user(verify, { imageUser: '65532:65532', containers: [web()] })?.passed, true);
    assert.equal(
      user(verify, { imageUser: '1000', containers: [web()] })?.message,
      'Deployment/web/app: would run as uid 1000 (image), not one of 65532',
    );
    assert.equal(user(verify, { imageUser: 'nonroot', containers: [web()] })?.passed, false);
  });

  it('is not asked without runAsNonRoot, and fails closed until the image user is read', () => {
    assert.equal(user({}, { imageUser: '', containers: [web()] }), undefined);
    assert.equal(user({ runAsNonRoot: true }, undefined)?.passed, false);
  });
});

describe('the secrets check (verify.secrets)', () => {
  const secrets = (verify: Parameters<typeof runChecks>[0], scan?: Parameters<typeof runChecks>[2]['secretScan']) =>
    runChecks(verify, candidate, { served, ...(scan ? { secretScan: scan } : {}) }, now).find(
      (r) => r.name === 'secrets',
    );
  it('refuses a candidate with an exposed secret above the gate, naming the report and the rule', () => {
    const r = secrets(
      { secrets: { maxSeverity: 'LOW' } },
      {
        secrets: [{ ruleId: 'private-key', target: '/etc/ssl/key.pem', severity: 'HIGH' }],
        source: 'ExposedSecretReport ci/replicaset-web-app',
      },
    );
    assert.equal(r?.passed, false);
    assert.equal(
      r?.message,
      'ExposedSecretReport ci/replicaset-web-app: 1 exposed secret(s) above LOW: private-key (HIGH) in /etc/ssl/key.pem',
    );
  });

  it('lets an unscanned candidate through unless requireScan', () => {
    assert.equal(secrets({ secrets: { maxSeverity: 'NONE' } })?.passed, true);
    assert.equal(secrets({ secrets: { maxSeverity: 'NONE', requireScan: true } })?.passed, false);
    assert.equal(secrets({}), undefined);
  });
});
