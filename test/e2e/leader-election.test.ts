// Two operator replicas: only the leader reconciles; after a kill -9 of the leader the
// other takes over within the lease duration plus one retry period; on SIGTERM the leader
// releases the lease and the other takes over at once; registry webhooks delivered to
// either replica are all acted on, also across a leader change.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { ImagePolicy } from '../../src/api/v1alpha1/index.ts';
import { OciPusher } from '../support/oci-push.ts';
import { freePort, startRegistry } from '../support/registry-server.ts';
import { auditEvents } from './support/audit.ts';
import { OPERATOR_NAMESPACE, OPERATOR_USER, kubectl, newNamespace } from './support/env.ts';
import { Operator } from './support/operator.ts';

const LEASE_MS = 15_000;
const RETRY_MS = 2_000;

function policy(name: string): string {
  return stringify({
    apiVersion: 'patchline.dev/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name },
    spec: { image: 'registry.example.com/team/app', follow: { tag: '1.0' }, workloads: { names: [name] } },
  });
}

function readyReason(ns: string, name: string): string {
  return kubectl(
    ['get', 'imagepolicy', name, '-n', ns, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].reason}'],
    {
      allowFailure: true,
    },
  ).stdout;
}

async function leaderOf(ops: Operator[]): Promise<{ leader: Operator; follower: Operator }> {
  let states: number[] = [];
  await ops[0]!.waitUntil(async () => {
    states = await Promise.all(ops.map((o) => o.metric('leader_election_master_status')));
    return states.filter((s) => s === 1).length === 1;
  }, 'exactly one leader');
  const leader = ops[states.indexOf(1)]!;
  return { leader, follower: ops.find((o) => o !== leader)! };
}

function startedLeadingAt(op: Operator): number | undefined {
  const line = op.findLog((l) => l.message === 'started leading');
  return line ? Date.parse(line.timestamp) : undefined;
}

describe('leader election with two replicas', () => {
  const running: Operator[] = [];

  afterEach(async () => {
    await Promise.all(running.splice(0).map((o) => o.stop()));
  });

  it('only the leader reconciles; after kill -9 the other takes over within lease duration + retry period', async function () {
    this.timeout(120_000);
    const lease = `e2e-failover-${Date.now()}`;
    const a = await Operator.start({ identity: 'replica-a', leaseName: lease });
    const b = await Operator.start({ identity: 'replica-b', leaseName: lease });
    running.push(a, b);
    const { leader, follower } = await leaderOf([a, b]);

    const ns = newNamespace('le');
    kubectl(['apply', '-n', ns, '-f', '-'], { input: policy('before') });
    await leader.waitUntil(() => readyReason(ns, 'before') !== '', 'reconciled by the leader');
    await leader.waitForLog(
      (l) => l.message === 'status updated' && l.resource === `${ns}/before`,
      'status write logged',
    );
    assert.equal(
      follower.findLog((l) => l.message === 'reconciled' || l.message === 'status updated'),
      undefined,
    );
    assert.equal(await follower.metric('controller_runtime_reconcile_total'), 0, 'the follower never reconciles');
    const writers = new Set(
      auditEvents()
        .filter(
          (e) =>
            e.user.username === OPERATOR_USER && e.objectRef?.subresource === 'status' && e.objectRef.namespace === ns,
        )
        .map((e) => e.userAgent),
    );
    assert.deepEqual([...writers], [`patchline/0.1.0 (${leader.identity})`], 'status written by the leader only');

    const killedAt = Date.now();
    await leader.kill();
    running.splice(running.indexOf(leader), 1);
    await follower.waitForLog((l) => l.message === 'started leading', 'take over', LEASE_MS + 3 * RETRY_MS + 10_000);
    const takeoverMs = startedLeadingAt(follower)! - killedAt;
    console.log(`      failover after kill -9: ${takeoverMs} ms (lease ${LEASE_MS} ms, retry ${RETRY_MS} ms)`);
    // The follower counts the lease duration from the last renew it saw, which it saw at most
    // one jittered retry period (1.2 x) after it happened.
    assert.ok(takeoverMs <= LEASE_MS + RETRY_MS * 1.2 + 1_000, `took ${takeoverMs} ms`);
    assert.ok(takeoverMs >= LEASE_MS - RETRY_MS * 1.2 - 1_000, `took ${takeoverMs} ms: did not wait for the lease`);

    kubectl(['apply', '-n', ns, '-f', '-'], { input: policy('after') });
    await follower.waitUntil(() => readyReason(ns, 'after') !== '', 'reconciled by the new leader');
  });

  it('on SIGTERM the leader releases the lease and the other takes over at once', async function () {
    this.timeout(60_000);
    const lease = `e2e-release-${Date.now()}`;
    const a = await Operator.start({ identity: 'replica-c', leaseName: lease });
    const b = await Operator.start({ identity: 'replica-d', leaseName: lease });
    running.push(a, b);
    const { leader, follower } = await leaderOf([a, b]);
    const stoppedAt = Date.now();
    assert.equal(await leader.stop(), 0);
    running.splice(running.indexOf(leader), 1);
    assert.ok(leader.findLog((l) => l.message === 'released the leader lease'));
    await follower.waitForLog((l) => l.message === 'started leading', 'take over', 10_000);
    const takeoverMs = startedLeadingAt(follower)! - stoppedAt;
    console.log(`      handover after SIGTERM: ${takeoverMs} ms`);
    assert.ok(takeoverMs <= RETRY_MS * 1.2 + 1_500, `took ${takeoverMs} ms`);
  });

  it('split brain: a leader paused past its lease writes nothing once resumed, and exits; the new leader carries on', async function () {
    this.timeout(120_000);
    const ns = newNamespace('pause');
    const lease = `e2e-pause-${Date.now()}`;
    const a = await Operator.start({ identity: 'replica-p', leaseName: lease, args: ['--watch-namespaces', ns] });
    const b = await Operator.start({ identity: 'replica-q', leaseName: lease, args: ['--watch-namespaces', ns] });
    running.push(a, b);
    const { leader, follower } = await leaderOf([a, b]);
    kubectl(['apply', '-n', ns, '-f', '-'], { input: policy('before') });
    await leader.waitUntil(() => readyReason(ns, 'before') !== '', 'reconciled by the leader');

    // Frozen past the lease: the other replica takes over and works.
    leader.pause();
    await follower.waitForLog((l) => l.message === 'started leading', 'take over', LEASE_MS + 3 * RETRY_MS + 10_000);
    // Work the frozen replica will see the moment it wakes: a new policy, a changed one.
    kubectl(['apply', '-n', ns, '-f', '-'], { input: policy('during') });
    kubectl(['patch', '-n', ns, 'imagepolicy/before', '--type=merge', '-p', '{"spec":{"interval":"10m"}}']);
    await follower.waitUntil(() => readyReason(ns, 'during') !== '', 'reconciled by the new leader');

    const resumedAt = Date.now();
    leader.resume();
    assert.equal(await leader.exit(), 1, 'the old leader exits, to restart as a follower');
    running.splice(running.indexOf(leader), 1);
    assert.ok(leader.findLog((l) => l.message === 'leader lease lost'));
    const agent = `patchline/0.1.0 (${leader.identity})`;
    const writes = auditEvents().filter(
      (e) =>
        e.userAgent === agent &&
        !['get', 'list', 'watch'].includes(e.verb) &&
        Date.parse(e.requestReceivedTimestamp ?? '') >= resumedAt,
    );
    const fenced = leader.logs.filter((l) => l.message === 'write refused: the leader lease is not confirmed').length;
    console.log(
      `      writes refused by the fence after waking: ${fenced}; writes that reached the API server: ${writes.length}`,
    );
    assert.deepEqual(
      writes.map((e) => `${e.verb} ${e.requestURI}`),
      [],
      'nothing written after it lost the lease',
    );
    // The new leader carries on.
    kubectl(['apply', '-n', ns, '-f', '-'], { input: policy('after') });
    await follower.waitUntil(() => readyReason(ns, 'after') !== '', 'reconciled by the new leader');
  });

  it('every replica accepts registry webhooks: none lost with two replicas, nor across a leader change', async function () {
    this.timeout(180_000);
    // A registry that notifies no one: the test delivers each push itself, to one replica at a
    // time, as a Service spreading deliveries over the replicas would.
    const registry = await startRegistry();
    try {
      const pusher = new OciPusher(registry.url);
      const dir = mkdtempSync(join(tmpdir(), 'patchline-hooks-ha-'));
      writeFileSync(join(dir, 'token'), 'ha-hook-token\n');
      writeFileSync(
        join(dir, 'config.yaml'),
        stringify({
          registries: [{ host: registry.host, insecure: true }],
          webhooks: {
            receivers: [
              { name: 'registry', format: 'distribution', auth: { type: 'bearer', tokenFile: join(dir, 'token') } },
            ],
          },
        }),
      );
      const ns = newNamespace('hooks-ha');
      const lease = `e2e-hooks-ha-${Date.now()}`;
      const start = async (identity: string): Promise<{ op: Operator; port: number }> => {
        const port = await freePort();
        const op = await Operator.start({
          identity,
          leaseName: lease,
          args: [
            '--config-file',
            join(dir, 'config.yaml'),
            '--webhook-address',
            `127.0.0.1:${port}`,
            '--watch-namespaces',
            ns,
          ],
        });
        running.push(op);
        return { op, port };
      };
      const replicas = [await start('replica-e'), await start('replica-f')];
      const { leader, follower } = await leaderOf(replicas.map((r) => r.op));
      const portOf = (op: Operator): number => replicas.find((r) => r.op === op)!.port;

      const repo = 'shop/hooked';
      const v0 = await pusher.pushImage(repo, '1.0', { seed: `${ns}-0` });
      kubectl(['apply', '-n', ns, '-f', '-'], {
        input: stringify({
          apiVersion: 'patchline.dev/v1alpha1',
          kind: 'ImagePolicy',
          metadata: { name: 'hooked' },
          // Checked by polling once an hour: within this test only a webhook makes it look.
          spec: {
            image: `${registry.host}/${repo}`,
            follow: { tag: '1.0' },
            interval: '1h',
            workloads: { names: ['hooked'] },
          },
        }),
      });
      const latest = (): string | undefined => {
        const out = kubectl(['get', 'imagepolicy', 'hooked', '-n', ns, '-o', 'json'], { allowFailure: true }).stdout;
        return out ? (JSON.parse(out) as ImagePolicy).status?.latest?.digest : undefined;
      };
      await leader.waitUntil(() => latest() === v0.digest, 'the first digest');

      let seed = 0;
      const deliveries: { to: string; status: number; tookMs?: number }[] = [];
      /** Pushes a new digest and delivers the registry's notification to one replica. */
      const pushAndDeliver = async (to: Operator): Promise<string> => {
        const pushed = await pusher.pushImage(repo, '1.0', { seed: `${ns}-${++seed}` });
        const res = await fetch(`http://127.0.0.1:${portOf(to)}/hooks/registry`, {
          method: 'POST',
          headers: { authorization: 'Bearer ha-hook-token', 'content-type': 'application/json' },
          body: JSON.stringify({
            events: [
              {
                action: 'push',
                target: {
                  mediaType: 'application/vnd.oci.image.manifest.v1+json',
                  repository: repo,
                  tag: '1.0',
                  digest: pushed.digest,
                },
                request: { host: registry.host },
              },
            ],
          }),
        });
        deliveries.push({ to: to.identity, status: res.status });
        return pushed.digest;
      };
      const actedOn = async (digest: string, what: string, by: Operator, timeoutMs = 20_000): Promise<void> => {
        const sent = Date.now();
        await by.waitUntil(() => latest() === digest, what, timeoutMs);
        deliveries[deliveries.length - 1]!.tookMs = Date.now() - sent;
      };

      // Both replicas up: deliveries alternate between them; each is acted on by the leader.
      for (const to of [follower, leader, follower, leader, follower]) {
        const digest = await pushAndDeliver(to);
        await actedOn(digest, `a delivery to ${to.identity} acted on`, leader);
      }
      assert.ok(
        (await leader.metric('patchline_webhook_inbox_entries_total', { stage: 'handled' })) >= 3,
        "the follower's deliveries reached the leader through the inbox",
      );
      assert.equal(await follower.metric('patchline_webhook_inbox_entries_total', { stage: 'queued' }), 3);

      // The leader dies: deliveries to the other replica, before and while it takes over, are
      // stored and acted on once it leads.
      await leader.kill();
      running.splice(running.indexOf(leader), 1);
      const during = [await pushAndDeliver(follower), await pushAndDeliver(follower)];
      await follower.waitForLog((l) => l.message === 'started leading', 'take over', LEASE_MS + 3 * RETRY_MS + 10_000);
      await actedOn(during[1]!, 'the deliveries made during the leader change acted on', follower, 30_000);
      await follower.waitUntil(
        async () => (await follower.metric('patchline_webhook_inbox_entries_total', { stage: 'handled' })) >= 2,
        'the new leader handled what was stored while no one led',
      );
      // A new replica joins as follower; its deliveries reach the new leader.
      const joined = await start('replica-g');
      replicas.push(joined);
      await joined.op.waitForLog((l) => l.message === 'leader observed', 'a follower that knows the leader');
      for (const to of [joined.op, follower, joined.op]) {
        const digest = await pushAndDeliver(to);
        await actedOn(digest, `a delivery to ${to.identity} acted on by the new leader`, follower);
      }
      console.log(
        `      deliveries: ${deliveries.length}, statuses ${[...new Set(deliveries.map((d) => d.status))].join(',')}; ` +
          `push to acted on (ms): ${deliveries.map((d) => d.tookMs ?? '-').join(' ')}`,
      );
      assert.deepEqual(
        deliveries.filter((d) => d.status !== 202),
        [],
        'every delivery accepted',
      );
      // Everything handled is removed: the inbox ends empty.
      await follower.waitUntil(() => {
        const out = kubectl(
          ['get', 'configmap', `${lease}-webhook-inbox`, '-n', OPERATOR_NAMESPACE, '-o', 'jsonpath={.data}'],
          { allowFailure: true },
        ).stdout.trim();
        return out === '' || out === '{}';
      }, 'the inbox drained');
    } finally {
      await registry.stop();
    }
  });
});
