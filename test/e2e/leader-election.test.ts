// Two operator replicas: only the leader reconciles; after a kill -9 of the leader the
// other takes over within the lease duration plus one retry period; on SIGTERM the leader
// releases the lease and the other takes over at once.
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { auditEvents } from './support/audit.ts';
import { OPERATOR_USER, kubectl, newNamespace } from './support/env.ts';
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
});
