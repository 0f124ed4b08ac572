// Registry economy and detection latency of the digest watcher, against a real registry
// (Debian's docker-registry, token auth with a local token issuer) on 127.0.0.1.
//
//   node --expose-gc bench/registry.ts
//
// Prints:
//   - memory of the watcher with 1,000 and 100,000 subscriptions (measured first, on a quiet heap);
//   - requests per check cycle, by kind and method (token requests included), for 1,000
//     subscribers over 50 references, without and with changes;
//   - detection latency from push to subscriber notification, by webhook (also from the
//     webhook's arrival), by webhook under a flood of 1,000 forged deliveries a second, and by
//     polling (p50, p99);
// and ends with one line of JSON holding the latency figures.
import { Agent, request } from 'node:http';
import { anonymousSource, StaticCredentials, parseDockerConfig } from '../src/registry/auth/credentials.ts';
import { RegistryClient } from '../src/registry/client.ts';
import { parseReference } from '../src/registry/reference.ts';
import { DigestWatcher, type DigestEvent } from '../src/registry/watcher.ts';
import { WebhookServer } from '../src/registry/webhooks/server.ts';
import { silentLogger } from '../src/runtime/logger.ts';
import { createRegistry } from '../src/runtime/metrics.ts';
import { waitFor } from '../test/support/manual-clock.ts';
import { OciPusher } from '../test/support/oci-push.ts';
import { freePort, startRegistry } from '../test/support/registry-server.ts';
import { TokenIssuer } from '../test/support/token-issuer.ts';

const REFS = 50;
const FLOOD_RPS = 1000;
const SUBSCRIBERS = 1000;
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
const run = (section: string): boolean => !only || only === section;
let latency: Record<string, number> = {};

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function requestCounts(metrics: ReturnType<typeof createRegistry>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const text = await metrics.getSingleMetricAsString('patchline_registry_requests_total');
  for (const line of text.split('\n')) {
    const m = /kind="(\w+)",method="(\w+)",code="[^"]*"\} (\d+)/.exec(line);
    if (m) out.set(`${m[1]} ${m[2]}`, (out.get(`${m[1]} ${m[2]}`) ?? 0) + Number(m[3]));
  }
  return out;
}

function diff(after: Map<string, number>, before: Map<string, number>): string {
  const keys = [...new Set([...after.keys(), ...before.keys()])].sort();
  const parts = keys
    .map((k) => `${k}: ${(after.get(k) ?? 0) - (before.get(k) ?? 0)}`)
    .filter((p) => !p.endsWith(': 0'));
  return parts.join(', ') || 'none';
}

// --- memory ------------------------------------------------------------------------------------
if (run('memory')) {
  const gc = (globalThis as { gc?: () => void }).gc;
  const heap = () => {
    gc?.();
    return process.memoryUsage().heapUsed;
  };
  const fake = { head: () => Promise.resolve({ digest: `sha256:${'0'.repeat(64)}`, mediaType: 'x', size: 1 }) };
  for (const [subs, refs] of [
    [1_000, 50],
    [100_000, 5_000],
  ] as const) {
    const w = new DigestWatcher({ client: fake, logger: silentLogger() });
    const base = heap();
    const handles = [];
    for (let i = 0; i < subs; i++) {
      handles.push(
        w.subscribe(
          {
            reference: parseReference(`registry.example.com/team/app${i % refs}:1.0`),
            source: anonymousSource,
            intervalMs: 300_000,
          },
          () => undefined,
        ),
      );
    }
    await new Promise((resolve) => setImmediate(resolve));
    const used = heap() - base;
    console.log(
      `watcher memory: ${subs} subscriptions on ${refs} references: ${(used / 1024 / 1024).toFixed(2)} MiB (${Math.round(used / subs)} bytes per subscription)${gc ? '' : ' (run with --expose-gc for exact figures)'}`,
    );
    for (const h of handles) h.unsubscribe();
  }
}

// --- requests per cycle --------------------------------------------------------------------
if (run('cycles')) {
  const issuer = new TokenIssuer({ users: { bench: 'bench-pass' }, expiresInSeconds: 60 });
  await issuer.start();
  const registry = await startRegistry({
    auth: {
      token: { realm: issuer.realm, service: issuer.service, issuer: issuer.issuer, rootCertBundle: issuer.certFile },
    },
  });
  const push = new OciPusher(registry.url, { username: 'bench', password: 'bench-pass' });
  for (let i = 0; i < REFS; i++)
    await push.pushImage(`bench/app${i}`, 'stable', { platforms: ['linux/amd64', 'linux/arm64'] });
  const creds = new StaticCredentials(
    'bench',
    parseDockerConfig(
      JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('bench:bench-pass').toString('base64') } } }),
    ),
  );
  const metrics = createRegistry(false);
  const client = new RegistryClient({
    hosts: [{ host: registry.host, insecure: true, requestsPerMinute: 100_000, maxConcurrency: 16 }],
    registry: metrics,
  });
  // A one-minute interval with 60-second tokens: every cycle needs fresh tokens, the worst case.
  const interval = 60_000;
  const watcher = new DigestWatcher({ client, logger: silentLogger() });
  watcher.start();
  let events = 0;
  for (let i = 0; i < SUBSCRIBERS; i++) {
    watcher.subscribe(
      {
        reference: parseReference(`${registry.host}/bench/app${i % REFS}:stable`),
        source: creds,
        intervalMs: interval,
      },
      () => events++,
    );
  }
  const cycleDone = async (n: number) =>
    waitFor(() => watcher.states().every((s) => s.checkedAt !== undefined && s.nextCheckAt > n), 'cycle', 180_000, 50);
  let before = await requestCounts(metrics);
  await cycleDone(0);
  let after = await requestCounts(metrics);
  console.log(
    `first cycle (${SUBSCRIBERS} subscribers, ${REFS} references; learns the auth scheme): ${diff(after, before)}; events ${events}`,
  );
  const slot = Math.max(...watcher.states().map((s) => s.nextCheckAt));
  before = after;
  await cycleDone(slot);
  after = await requestCounts(metrics);
  console.log(
    `cycle without changes: ${diff(after, before)}; token service saw ${issuer.requests.length} requests in all`,
  );
  const changed = 10;
  for (let i = 0; i < changed; i++)
    await push.pushImage(`bench/app${i}`, 'stable', { platforms: ['linux/amd64', 'linux/arm64'], seed: `new-${i}` });
  const eventsBefore = events;
  const slot2 = Math.max(...watcher.states().map((s) => s.nextCheckAt));
  before = after;
  await cycleDone(slot2);
  after = await requestCounts(metrics);
  console.log(
    `cycle with ${changed} changed references: ${diff(after, before)}; subscriber notifications ${events - eventsBefore}`,
  );
  watcher.stop();
  await client.close();
  await registry.stop();
  await issuer.stop();
}

// --- detection latency -----------------------------------------------------------------------
if (run('latency')) {
  const webhookPort = await freePort();
  const registry = await startRegistry({
    notifications: [{ url: `http://127.0.0.1:${webhookPort}/hooks/bench`, headers: { Authorization: 'Bearer t' } }],
  });
  const push = new OciPusher(registry.url);
  const client = new RegistryClient({ hosts: [{ host: registry.host, insecure: true, requestsPerMinute: 100_000 }] });
  const watcher = new DigestWatcher({ client, logger: silentLogger(), minTriggerGapMs: 100 });
  watcher.start();
  const noticedAt = new Map<string, number>();
  const webhooks = new WebhookServer({
    host: '127.0.0.1',
    port: webhookPort,
    receivers: [
      { name: 'bench', format: 'distribution', registry: registry.host, auth: { type: 'bearer', token: () => 't' } },
    ],
    sink: {
      checkNow: (notice) => {
        // The first notice announcing each digest: where "webhook to subscriber" starts.
        const key = `${registry.host}/${notice.repository}:${notice.tag ?? ''}@${notice.digest ?? ''}`;
        if (notice.digest && !noticedAt.has(key)) noticedAt.set(key, Date.now());
        return watcher.checkNow(notice);
      },
    },
    logger: silentLogger(),
    requestsPerSecond: 1000,
    burst: 1000,
  });
  await webhooks.start();

  const seenAt = new Map<string, number>();
  const seenDigest = new Map<string, string>();
  const measure = async (prefix: string, n: number, interval: number, spreadMs: number): Promise<number[]> => {
    seenAt.clear();
    for (let i = 0; i < n; i++) await push.pushImage(`${prefix}${i}`, 'v1', { seed: `${prefix}${i}-a` });
    const initial: DigestEvent[] = [];
    for (let i = 0; i < n; i++) {
      watcher.subscribe(
        {
          reference: parseReference(`${registry.host}/${prefix}${i}:v1`),
          source: anonymousSource,
          intervalMs: interval,
        },
        (e) => {
          if (e.previousDigest) {
            seenAt.set(e.reference, Date.now());
            seenDigest.set(e.reference, e.digest);
          } else initial.push(e);
        },
      );
    }
    await waitFor(() => initial.length === n, 'initial digests', 60_000);
    const pushedAt = new Map<string, number>();
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * spreadMs));
        await push.pushImage(`${prefix}${i}`, 'v1', { seed: `${prefix}${i}-b` });
        pushedAt.set(`${registry.host}/${prefix}${i}:v1`, Date.now());
      }),
    );
    await waitFor(() => seenAt.size === n, 'all detected', interval * 3 + 60_000, 20);
    return [...pushedAt].map(([reference, at]) => seenAt.get(reference)! - at);
  };

  const byWebhook = await measure('hook/app', 100, 3_600_000, 5_000);
  // From the notice that announced the digest the subscriber was told of.
  const fromNotice = [...seenAt].map(
    ([reference, at]) => at - noticedAt.get(`${reference}@${seenDigest.get(reference)!}`)!,
  );
  console.log(
    `detection by webhook (100 pushes, poll interval 1h): push to subscriber p50 ${percentile(byWebhook, 50)} ms, p99 ${percentile(byWebhook, 99)} ms; webhook to subscriber p50 ${percentile(fromNotice, 50)} ms, p99 ${percentile(fromNotice, 99)} ms`,
  );
  latency = {
    webhookPushToSubscriberP50Ms: percentile(byWebhook, 50),
    webhookPushToSubscriberP99Ms: percentile(byWebhook, 99),
    webhookToSubscriberP50Ms: percentile(fromNotice, 50),
    webhookToSubscriberP99Ms: percentile(fromNotice, 99),
  };
  // The same under a flood of forged deliveries (a wrong token) at FLOOD_RPS: authentication
  // comes before the receiver's budget, so the flood must not delay the real ones.
  const forged = new Map<number, number>();
  let flooding = true;
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const forge = () =>
    new Promise<void>((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: webhookPort,
          method: 'POST',
          path: '/hooks/bench',
          agent,
          headers: { authorization: 'Bearer forged', 'content-type': 'application/json' },
        },
        (res) => {
          forged.set(res.statusCode ?? 0, (forged.get(res.statusCode ?? 0) ?? 0) + 1);
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', () => {
        forged.set(-1, (forged.get(-1) ?? 0) + 1);
        resolve();
      });
      req.end(JSON.stringify({ events: [{ action: 'push', target: { repository: 'hook2/app0', tag: 'v1' } }] }));
    });
  const flood = (async () => {
    const started = Date.now();
    let sent = 0;
    while (flooding) {
      const due = Math.floor(((Date.now() - started) / 1000) * FLOOD_RPS) - sent;
      for (let i = 0; i < due; i++) void forge();
      sent += Math.max(0, due);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return { sent, seconds: (Date.now() - started) / 1000 };
  })();
  const underFlood = await measure('hook2/app', 100, 3_600_000, 5_000);
  flooding = false;
  const { sent, seconds } = await flood;
  agent.destroy();
  const forgedCodes = Object.fromEntries([...forged].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v]));
  console.log(
    `detection by webhook under ${Math.round(sent / seconds)} forged requests a second (${sent} sent, answers ${JSON.stringify(forgedCodes)}): push to subscriber p50 ${percentile(underFlood, 50)} ms, p99 ${percentile(underFlood, 99)} ms`,
  );
  latency.forgedRequestsPerSecond = Math.round(sent / seconds);
  latency.underFloodPushToSubscriberP50Ms = percentile(underFlood, 50);
  latency.underFloodPushToSubscriberP99Ms = percentile(underFlood, 99);
  latency.forgedAnswered401 = forged.get(401) ?? 0;
  await webhooks.stop();
  const byPolling = await measure('poll/app', 100, 30_000, 30_000);
  console.log(
    `detection by polling (100 pushes, interval 30s, no webhook): p50 ${percentile(byPolling, 50)} ms, p99 ${percentile(byPolling, 99)} ms`,
  );
  latency.pollingP50Ms = percentile(byPolling, 50);
  latency.pollingP99Ms = percentile(byPolling, 99);
  watcher.stop();
  await client.close();
  await registry.stop();
}

console.log(JSON.stringify({ bench: 'registry', ...latency }));
