// The operator against the real API server: observedGeneration and Ready, suspend, the
// reconcile-on-demand annotation, Events, and no status write when nothing changed.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { OciPusher } from '../support/oci-push.ts';
import { freePort, startRegistry, type RegistryServer } from '../support/registry-server.ts';
import type { ImagePolicy, RebuildTrigger } from '../../src/api/v1alpha1/index.ts';
import { statusWrites } from './support/audit.ts';
import { OPERATOR_USER, env, kubectl, newNamespace } from './support/env.ts';
import { Operator, type LogLine } from './support/operator.ts';

const policyPath = (ns: string, name: string) => `/apis/patchline.dev/v1alpha1/namespaces/${ns}/imagepolicies/${name}`;
const triggerPath = (ns: string, name: string) =>
  `/apis/patchline.dev/v1alpha1/namespaces/${ns}/rebuildtriggers/${name}`;

// The policies follow an image in a real local registry, so that they reach Ready.
let registry: RegistryServer;
let configArgs: string[] = [];

function policyManifest(name: string, extra: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name },
    spec: {
      image: `${registry.host}/team/app`,
      follow: { tag: '1.0' },
      workloads: { selector: { matchLabels: { app: name } } },
      ...extra,
    },
  });
}

interface EventObj {
  type: string;
  reason: string;
  note: string;
  action: string;
  reportingController: string;
  reportingInstance: string;
  regarding: { kind: string; name: string };
  series?: { count: number };
}

async function events(ns: string, name: string): Promise<EventObj[]> {
  const list = await env().admin.requestJson<{ items: EventObj[] }>(
    'GET',
    `/apis/events.k8s.io/v1/namespaces/${ns}/events`,
  );
  return list.items.filter((e) => e.regarding.name === name);
}

const ready = (o: {
  status?: { conditions?: { type: string; status: string; reason: string; observedGeneration?: number }[] };
}) => o.status?.conditions?.find((c) => c.type === 'Ready');

describe('operator reconciles against the real API server', () => {
  let operator: Operator;
  let ns: string;

  before(async () => {
    registry = await startRegistry();
    await new OciPusher(registry.url).pushImage('team/app', '1.0');
    const dir = mkdtempSync(join(tmpdir(), 'patchline-op-'));
    writeFileSync(join(dir, 'config.yaml'), stringify({ registries: [{ host: registry.host, insecure: true }] }));
    configArgs = ['--config-file', join(dir, 'config.yaml')];
    operator = await Operator.start({ identity: 'op-main', leaseName: 'e2e-main', args: configArgs });
    await operator.waitForLog((l) => l.message === 'controllers started', 'leading');
  });

  after(async () => {
    assert.equal(await operator.stop(), 0, 'clean exit on SIGTERM');
    await registry.stop();
  });

  beforeEach(() => {
    ns = newNamespace('op');
  });

  async function policy(name: string): Promise<ImagePolicy> {
    return env().admin.requestJson<ImagePolicy>('GET', policyPath(ns, name));
  }

  async function waitForPolicy(name: string, what: string, test: (p: ImagePolicy) => boolean): Promise<ImagePolicy> {
    let last: ImagePolicy | undefined;
    await operator.waitUntil(async () => test((last = await policy(name))), `${name}: ${what}`);
    return last!;
  }

  function reconciles(name: string): LogLine[] {
    return operator.logs.filter((l) => l.message === 'reconciled' && l.resource === `${ns}/${name}`);
  }

  it('elected itself and serves /healthz, /readyz and /metrics', async () => {
    assert.deepEqual(await operator.get('/healthz'), { status: 200, body: 'ok\n' });
    assert.equal((await operator.get('/readyz')).status, 200);
    assert.equal(await operator.metric('leader_election_master_status'), 1);
    assert.ok((await operator.metric('rest_client_requests_total')) > 0);
    assert.ok((await operator.metric('patchline_informer_watches_total', { informer: 'imagepolicies' })) >= 1);
    assert.match((await operator.get('/metrics')).body, /^process_resident_memory_bytes \d+/m);
    assert.equal((await operator.get('/nothing')).status, 404);
  });

  it('receives registry webhooks when receivers are configured', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-hooks-'));
    writeFileSync(join(dir, 'token'), 'hook-token\n');
    writeFileSync(
      join(dir, 'config.yaml'),
      stringify({
        webhooks: {
          receivers: [{ name: 'local', format: 'generic', auth: { type: 'bearer', tokenFile: join(dir, 'token') } }],
        },
      }),
    );
    const port = await freePort();
    const hooks = await Operator.start({
      identity: 'op-hooks',
      leaseName: 'e2e-hooks',
      args: ['--config-file', join(dir, 'config.yaml'), '--webhook-address', `127.0.0.1:${port}`],
    });
    try {
      await hooks.waitForLog((l) => l.message === 'controllers started', 'leading');
      const post = (token: string) =>
        fetch(`http://127.0.0.1:${port}/hooks/local`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
          body: JSON.stringify({ image: 'registry.example.com/team/app:1.0' }),
        });
      const ok = await post('hook-token');
      assert.equal(ok.status, 202);
      assert.deepEqual(await ok.json(), { notices: 1, matched: 0 });
      assert.equal((await post('wrong')).status, 401);
      assert.ok(hooks.findLog((l) => l.message === 'receiving registry webhooks'));
    } finally {
      await hooks.stop();
    }
  });

  it('refuses to start with an invalid config file, saying why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-badconfig-'));
    writeFileSync(
      join(dir, 'config.yaml'),
      stringify({ webhooks: { receivers: [{ name: 'open', format: 'generic' }] } }),
    );
    await assert.rejects(
      Operator.start({ identity: 'op-bad', leaseName: 'e2e-bad', args: ['--config-file', join(dir, 'config.yaml')] }),
      /every receiver is authenticated/,
    );
  });

  it('sets observedGeneration and Ready, and follows spec changes', async () => {
    kubectl(['apply', '-n', ns, '-f', '-'], { input: policyManifest('web') });
    let p = await waitForPolicy('web', 'Ready', (x) => ready(x)?.status === 'True');
    assert.equal(p.metadata?.generation, 1);
    assert.equal(p.status?.observedGeneration, 1);
    assert.equal(ready(p)?.reason, 'Accepted');
    assert.equal(ready(p)?.observedGeneration, 1);

    kubectl(['patch', '-n', ns, 'imagepolicy/web', '--type=merge', '-p', '{"spec":{"interval":"10m"}}']);
    p = await waitForPolicy('web', 'observedGeneration 2', (x) => x.status?.observedGeneration === 2);
    assert.equal(ready(p)?.observedGeneration, 2);
  });

  it('reports a spec the API server cannot reject as Stalled, with a Warning Event', async () => {
    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: policyManifest('tz', { rollout: { window: { schedule: '0 2 * * *', timeZone: 'Mars/Olympus_Mons' } } }),
    });
    const p = await waitForPolicy('tz', 'stalled', (x) => ready(x)?.reason === 'InvalidSpec');
    assert.equal(ready(p)?.status, 'False');
    assert.equal(p.status?.conditions?.find((c) => c.type === 'Stalled')?.status, 'True');
    await operator.waitUntil(
      async () => (await events(ns, 'tz')).some((e) => e.reason === 'InvalidSpec'),
      'warning event',
    );
    const e = (await events(ns, 'tz')).find((x) => x.reason === 'InvalidSpec')!;
    assert.equal(e.type, 'Warning');
    assert.match(e.note, /spec\.rollout\.window\.timeZone: unknown time zone "Mars\/Olympus_Mons"/);
    assert.equal(e.reportingController, 'patchline.dev/operator');
    assert.equal(e.reportingInstance, 'op-main');
    assert.equal(e.regarding.kind, 'ImagePolicy');
  });

  it('honours spec.suspend on both kinds, and resumes', async () => {
    kubectl(['apply', '-n', ns, '-f', '-'], { input: policyManifest('susp') });
    await waitForPolicy('susp', 'Ready', (x) => ready(x)?.reason === 'Accepted');
    kubectl(['patch', '-n', ns, 'imagepolicy/susp', '--type=merge', '-p', '{"spec":{"suspend":true}}']);
    const suspended = await waitForPolicy('susp', 'suspended', (x) => ready(x)?.reason === 'Suspended');
    assert.equal(ready(suspended)?.status, 'True', 'suspension keeps the last Ready status');
    kubectl(['patch', '-n', ns, 'imagepolicy/susp', '--type=merge', '-p', '{"spec":{"suspend":false}}']);
    await waitForPolicy('susp', 'resumed', (x) => ready(x)?.reason === 'Accepted');

    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: stringify({
        apiVersion: 'patchline.dev/v1alpha1',
        kind: 'RebuildTrigger',
        metadata: { name: 'rb' },
        spec: {
          suspend: true,
          baseImages: [{ image: 'registry.example.com/base/python:3.12' }],
          target: { image: 'registry.example.com/team/app:1.0' },
          build: { webhook: { url: 'https://builds.example.com/hook' } },
        },
      }),
    });
    await operator.waitUntil(async () => {
      const t = await env().admin.requestJson<RebuildTrigger>('GET', triggerPath(ns, 'rb'));
      return t.status?.phase === 'Suspended' && ready(t)?.reason === 'Suspended';
    }, 'trigger suspended');
    assert.ok((await events(ns, 'susp')).some((e) => e.reason === 'Suspended'));
  });

  it('honours the reconcile-on-demand annotation and echoes it in status', async () => {
    kubectl(['apply', '-n', ns, '-f', '-'], { input: policyManifest('req') });
    await waitForPolicy('req', 'Ready', (x) => ready(x)?.status === 'True');
    const before = reconciles('req').length;
    const at = new Date().toISOString();
    kubectl(['annotate', '-n', ns, 'imagepolicy/req', `patchline.dev/reconcile-requested-at=${at}`, '--overwrite']);
    const p = await waitForPolicy('req', 'request handled', (x) => x.status?.lastHandledReconcileAt === at);
    assert.equal(p.status?.lastHandledReconcileAt, at);
    await operator.waitUntil(() => reconciles('req').length > before, 'reconcile logged');
  });

  it('does not write status when nothing changed', async () => {
    kubectl(['apply', '-n', ns, '-f', '-'], { input: policyManifest('quiet') });
    await waitForPolicy('quiet', 'Ready', (x) => ready(x)?.status === 'True');
    await operator.waitUntil(() => reconciles('quiet').length >= 1, 'first reconcile logged');
    const writes = statusWrites(OPERATOR_USER, 'imagepolicies', ns, 'quiet').length;
    assert.ok(writes <= 2, 'at most two writes to go from no status to Ready (looking up the digest, accepted)');

    // Three changes that wake the controller but change nothing it reports.
    const runs = reconciles('quiet').length;
    kubectl(['label', '-n', ns, 'imagepolicy/quiet', 'team=shop']);
    await operator.waitUntil(() => reconciles('quiet').length >= runs + 1, 'reconcile after label');
    kubectl(['annotate', '-n', ns, 'imagepolicy/quiet', 'owner=platform']);
    await operator.waitUntil(() => reconciles('quiet').length >= runs + 2, 'reconcile after annotation');
    kubectl(['label', '-n', ns, 'imagepolicy/quiet', 'team-']);
    await operator.waitUntil(() => reconciles('quiet').length >= runs + 3, 'reconcile after label removal');

    assert.equal(statusWrites(OPERATOR_USER, 'imagepolicies', ns, 'quiet').length, writes, 'no further status write');
    assert.ok((await operator.metric('patchline_status_writes_total', { result: 'unchanged' })) >= 3);
  });

  it('restarting the operator rewrites no status', async () => {
    kubectl(['apply', '-n', ns, '-f', '-'], { input: policyManifest('stable') });
    await waitForPolicy('stable', 'Ready', (x) => ready(x)?.status === 'True');
    // The API server writes its audit log asynchronously: count once the write that made the
    // policy Ready is in it.
    await operator.waitUntil(
      () => statusWrites(OPERATOR_USER, 'imagepolicies', ns, 'stable').length >= 1,
      'the status write in the audit log',
    );
    const writes = statusWrites(OPERATOR_USER, 'imagepolicies', ns, 'stable').length;
    await operator.stop();
    operator = await Operator.start({ identity: 'op-main', leaseName: 'e2e-main', args: configArgs });
    await operator.waitUntil(() => reconciles('stable').length >= 1, 'reconciled after restart');
    assert.equal(statusWrites(OPERATOR_USER, 'imagepolicies', ns, 'stable').length, writes);
  });
});
