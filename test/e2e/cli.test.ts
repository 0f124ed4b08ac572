// kubectl patchline against the real control plane, run as the user runs it: from the entry
// point the krew manifest names (plugins/krew/patchline.yaml), with a kubeconfig. Resources in
// several states (accepted and rolled out, refused, waiting for approval in Manual mode, none
// governing a workload); each command's JSON output checked field by field; the verbs; and a
// reader whose kubeconfig may only read, told which permission a verb lacks.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ROOT } from '../support/fixtures.ts';
import { writeServiceAccountKubeconfig } from '../support/install.ts';
import { waitFor } from '../support/manual-clock.ts';
import { env, kubectl, newNamespace } from './support/env.ts';
import type { Operator } from './support/operator.ts';
import { applyPolicy, applyWorkload, specImage, waitForPolicy, workload } from './support/policies.ts';
import { applyTrigger, RebuildEnv, triggerStatus } from './support/rebuild-env.ts';

/** The plugin's entry point, as krew installs it: the manifest's `bin`, mapped back through `files`. */
function entryPoint(): string {
  const manifest = parse(readFileSync(join(ROOT, 'plugins', 'krew', 'patchline.yaml'), 'utf8')) as {
    spec: { platforms: { bin: string; files: { from: string; to: string }[] }[] };
  };
  const platform = manifest.spec.platforms[0]!;
  const file = platform.files.find((f) => f.from === platform.bin);
  assert.ok(file, `the manifest's files install ${platform.bin}`);
  return join(ROOT, file.from);
}

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

describe('kubectl patchline (the CLI)', () => {
  let e: RebuildEnv;
  let operator: Operator;
  let ns: string;
  let readerKubeconfig: string;
  const plugin = entryPoint();
  const cli = (args: string[], kubeconfig = env().cp.kubeconfig): Run => {
    const r = spawnSync(plugin, args, {
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: kubeconfig, NO_COLOR: undefined },
      timeout: 60_000,
    });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const json = <T>(args: string[], kubeconfig?: string): T => {
    const r = cli([...args, '-n', ns, '-o', 'json'], kubeconfig);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };

  before(async () => {
    e = await RebuildEnv.start();
    operator = await e.operator('op-cli', `e2e-cli-${Date.now()}`);
    await operator.waitForLog((l) => l.message === 'controllers started', 'leading');
    // Trivy Operator's report CRD, as a cluster running it has (inventory --cve reads its reports).
    kubectl(['apply', '-f', join(ROOT, 'test', 'fixtures', 'trivy-vulnerabilityreports-crd.yaml')]);
    kubectl(['wait', '--for=condition=Established', 'crd/vulnerabilityreports.aquasecurity.github.io']);
    ns = newNamespace('cli');
    const repo = (name: string) => `${e.registry.host}/cli/${name}`;
    await e.pusher.pushImage('cli/web', '1.0', { seed: 'cli-web' });
    const base = await e.pusher.pushImage('cli/base', '1', { seed: 'cli-base' });
    // web is rebuilt on cli/base by a Job (the build chain `tree` draws).
    applyTrigger(ns, 'web', {
      baseImages: [{ image: e.image('cli/base', '1') }],
      target: { image: e.image('cli/web', '1.0') },
      build: {
        job: {
          template: {
            template: {
              spec: { restartPolicy: 'Never', containers: [{ name: 'build', image: 'moby/buildkit:rootless' }] },
            },
          },
        },
      },
    });
    await e.pusher.pushImage('cli/old', '1.0', { seed: 'cli-old', created: '2020-01-01T00:00:00Z' });
    await e.pusher.pushImage('cli/manual', '1.0', { seed: 'cli-manual' });
    for (const name of ['web', 'old', 'manual', 'lonely'])
      applyWorkload(ns, 'Deployment', name, e.image(`cli/${name === 'lonely' ? 'web' : name}`, '1.0'));
    const policy = (name: string, extra: Record<string, unknown> = {}) =>
      applyPolicy(ns, name, { image: repo(name), follow: { tag: '1.0' }, workloads: { names: [name] }, ...extra });
    policy('web');
    policy('old', { verify: { maxAge: '24h' } });
    policy('manual', { rollout: { mode: 'Manual' } });
    await waitForPolicy(
      operator,
      ns,
      'web',
      'web rolled out',
      (x) => workload(x, 'Deployment', 'web')?.state === 'UpToDate',
    );
    await waitForPolicy(operator, ns, 'old', 'old refused', (x) => x.latest?.verified === false);
    await waitFor(
      () => triggerStatus(ns, 'web').bases?.[0]?.digest === base.digest,
      'the trigger learned its base',
      30_000,
      250,
    );
    await waitForPolicy(
      operator,
      ns,
      'manual',
      'manual waiting for approval',
      (x) => workload(x, 'Deployment', 'manual')?.state === 'PendingApproval',
    );
    // A reader: the aggregated view role (Patchline's patchline-view adds its resources to it).
    kubectl(['create', 'serviceaccount', 'reader', '-n', ns]);
    kubectl(['create', 'rolebinding', 'reader', '-n', ns, '--clusterrole=view', `--serviceaccount=${ns}:reader`]);
    readerKubeconfig = join(env().workDir, `${ns}-reader.kubeconfig`);
    writeServiceAccountKubeconfig(
      env().cp.kubeconfig,
      { server: env().cp.server, caFile: join(env().cp.dir, 'pki', 'apiserver.crt') },
      readerKubeconfig,
      { name: 'reader', namespace: ns },
    );
  });

  after(async () => {
    if (operator) assert.equal(await operator.stop(), 0);
    await e?.stop();
  });

  it('get policies: the columns that matter, field by field, in JSON, YAML and a table without colour when piped', () => {
    const rows = json<Record<string, string>[]>(['get', 'policies']);
    const byName = new Map(rows.map((r) => [r.name, r]));
    const web = byName.get('web')!;
    assert.equal(web.namespace, ns);
    assert.equal(web.ready, 'True');
    assert.equal(web.reason, 'Accepted');
    assert.match(web.latest!, /^1\.0@[0-9a-f]{12}$/);
    assert.equal(web.verified, 'true');
    assert.equal(web.upToDate, '1/1');
    assert.equal(web.compliant, 'True');
    assert.equal(web.mode, 'Auto');
    const old = byName.get('old')!;
    assert.equal(old.ready, 'False');
    assert.equal(old.reason, 'CandidateRefused');
    assert.equal(old.verified, 'false');
    assert.match(old.message!, /refused: age: built 2020-01-01T00:00:00Z/);
    assert.equal(byName.get('manual')!.mode, 'Manual');

    const yaml = parse(cli(['get', 'policies', 'web', '-n', ns, '-o', 'yaml']).stdout) as Record<string, string>[];
    // Ages tick between the two reads.
    assert.deepEqual(
      yaml.map((r) => ({ ...r, age: '' })),
      [{ ...web, age: '' }],
    );
    const t = cli(['get', 'policies', '-n', ns]);
    assert.equal(t.status, 0, t.stderr);
    const [header, ...lines] = t.stdout.trimEnd().split('\n');
    assert.match(header!, /^NAME\s+READY\s+REASON\s+LATEST\s+UP TO DATE\s+COMPLIANT\s+AGE$/);
    assert.equal(lines.length, 3);
    assert.ok(!t.stdout.includes('\x1b['), 'no colour when not a terminal');
    const triggers = cli(['get', 'triggers', '-n', ns]).stdout.trimEnd().split('\n');
    assert.match(triggers[0]!, /^NAME\s+READY\s+REASON\s+PHASE\s+BUILD\s+LANDED\s+AGE$/);
    assert.match(triggers[1]!, /^web\s+True\s+Idle\s+Idle\s+\d+[smh]$/);
    assert.equal(triggers.length, 2);
    assert.equal(cli(['get', 'triggers', '-n', 'default']).stdout, 'No resources found in default namespace.\n');
  });

  it('why: up to date, refused by a check, waiting for approval, and governed by nothing', () => {
    type Why = {
      workload: string;
      note?: string;
      containers: { container: string; policy: string; state: string; upToDate: boolean; reasons: string[] }[];
    };
    const web = json<Why>(['why', 'deployment/web']);
    assert.equal(web.workload, 'Deployment/web');
    assert.deepEqual(
      web.containers.map((c) => [c.container, c.policy, c.state, c.upToDate, c.reasons]),
      [['app', `${ns}/web`, 'UpToDate', true, []]],
    );
    const old = json<Why>(['why', 'deploy/old']);
    assert.equal(old.containers[0]?.upToDate, false);
    assert.match(
      old.containers[0].reasons[0]!,
      /^the newest candidate 1\.0@[0-9a-f]{12} is refused: age: built 2020-01-01/,
    );
    const manual = json<Why>(['why', 'deployment/manual']);
    assert.equal(manual.containers[0]?.state, 'PendingApproval');
    assert.ok(manual.containers[0].reasons.some((r) => r.startsWith('Manual mode: waiting for approval')));
    const lonely = json<Why>(['why', 'deployment/lonely']);
    assert.deepEqual(lonely.containers, []);
    assert.match(lonely.note ?? '', /no ImagePolicy in .* governs Deployment\/lonely/);
    const text = cli(['why', 'deployment/old', '-n', ns]).stdout;
    assert.match(text, /^Deployment\/old in cli-/);
    assert.match(text, /why {5}the newest candidate/);
  });

  it('approve rolls out the accepted digest in Manual mode; reconcile --wait shows the result; suspend and resume', async () => {
    const approved = cli(['approve', 'manual', '-n', ns]);
    assert.equal(approved.status, 0, approved.stderr);
    assert.match(approved.stdout, /approved sha256:[0-9a-f]{64}/);
    await waitFor(() => specImage(ns, 'Deployment', 'manual').includes('@sha256:'), 'manual pinned', 30_000, 250);

    const r = cli(['reconcile', 'policy', 'web', '-n', ns, '--wait', '--timeout', '60s']);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /reconcile requested at /);
    assert.match(r.stdout, /Ready True Accepted: Following .* accepted/);

    assert.equal(cli(['suspend', 'policy', 'web', '-n', ns]).status, 0);
    assert.equal(json<Record<string, string>[]>(['get', 'policy', 'web'])[0]?.ready, 'Suspended');
    assert.equal(cli(['resume', 'policy', 'web', '-n', ns]).status, 0);
    assert.notEqual(json<Record<string, string>[]>(['get', 'policy', 'web'])[0]?.ready, 'Suspended');
  });

  it('tree: the build chain from a base image, a trigger and a policy, each link with its state', () => {
    type Node = { kind: string; name: string; state: string; digest?: string; children: Node[] };
    const flat = (nodes: Node[], depth = 0): string[] =>
      nodes.flatMap((n) => [`${depth} ${n.kind} ${n.name} ${n.state}`, ...flat(n.children, depth + 1)]);
    const fromBase = json<Node[]>(['tree', e.image('cli/base', '1')]);
    const lines = flat(fromBase);
    assert.match(lines[0]!, new RegExp(`^0 BaseImage ${e.registry.host}/cli/base at [0-9a-f]{12}$`));
    assert.match(lines[1]!, new RegExp(`^1 RebuildTrigger ${ns}/web `));
    assert.match(lines[2]!, new RegExp(`^2 Image ${e.registry.host}/cli/web `));
    assert.match(lines[3]!, new RegExp(`^3 ImagePolicy ${ns}/web 1\\.0@[0-9a-f]{12} accepted$`));
    assert.equal(lines[4], '4 Container Deployment/web/app UpToDate');
    assert.equal(lines.length, 5, lines.join('\n'));
    const below = lines.slice(1).map((l) => l.replace(/^\d+/, (d) => String(Number(d) - 1)));
    assert.deepEqual(flat(json<Node[]>(['tree', 'policy/web'])), below);
    assert.deepEqual(flat(json<Node[]>(['tree', 'trigger/web'])), below);
    // A policy no trigger builds for is its own root.
    assert.match(flat(json<Node[]>(['tree', 'policy/old']))[0]!, new RegExp(`^0 ImagePolicy ${ns}/old .* refused$`));
    const drawn = cli(['tree', 'trigger/web', '-n', ns]).stdout.split('\n');
    assert.match(drawn[0]!, new RegExp(`^RebuildTrigger ${ns}/web: `));
    assert.match(drawn[1]!, /^└─ Image /);
    assert.match(drawn[2]!, /^ {3}└─ ImagePolicy /);
    assert.match(drawn[3]!, /^ {6}└─ Container Deployment\/web\/app: UpToDate \([0-9a-f]{12}\)$/);
    assert.equal(cli(['tree', 'policy/nope', '-n', ns]).status, 3);
  });

  it("history: a policy's Events as a timeline, with the time each stage took; a trigger's builds", () => {
    type History = {
      builds?: unknown[];
      events: { time: string; reason: string; note: string; after?: string }[];
    };
    const web = json<History>(['history', 'policy/web']);
    const reasons = web.events.map((e) => e.reason);
    for (const r of ['CandidateAccepted', 'RolloutStarted', 'RolledOut'])
      assert.ok(reasons.includes(r), `${r} in ${reasons.join(', ')}`);
    assert.ok(reasons.indexOf('CandidateAccepted') < reasons.indexOf('RolledOut'));
    const times = web.events.map((e) => Date.parse(e.time));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      'oldest first',
    );
    assert.ok(
      web.events.slice(1).every((e) => /^\d+(\.\d)?s$|^\d+m\d{2}s$/.test(e.after ?? '')),
      'each stage with its time',
    );
    assert.equal(web.builds, undefined);
    const trigger = json<History>(['history', 'trigger', 'web']);
    assert.deepEqual(trigger.builds, []);
    const text = cli(['history', 'policy/web', '-n', ns]).stdout;
    assert.match(text, /^TIME\s+AFTER\s+REASON\s+COUNT\s+NOTE/);
    assert.match(cli(['history', 'trigger/web', '-n', ns]).stdout, /^No builds yet\./);
  });

  it('get --watch: the table, then each row again as it changes (a suspend, then a resume)', async () => {
    const child = spawn(plugin, ['get', 'policies', '-n', ns, '--watch', '-o', 'json'], {
      env: { ...process.env, KUBECONFIG: env().cp.kubeconfig },
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const rows = () =>
      out
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, string>);
    try {
      await waitFor(() => rows().length === 3, 'the first three rows', 30_000, 100);
      assert.equal(cli(['suspend', 'policy', 'old', '-n', ns]).status, 0);
      await waitFor(
        () => rows().some((r) => r.name === 'old' && r.ready === 'Suspended'),
        'the suspended row',
        30_000,
        100,
      );
      assert.equal(cli(['resume', 'policy', 'old', '-n', ns]).status, 0);
      await waitFor(
        () =>
          rows()
            .filter((r) => r.name === 'old')
            .at(-1)?.ready !== 'Suspended',
        'the resumed row',
        30_000,
        100,
      );
      // Only changed rows come again: web and manual were printed once.
      assert.equal(rows().filter((r) => r.name === 'web').length, 1);
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, 'a watch ends cleanly when interrupted');
  });

  it('inventory: what runs by image and digest, who runs CVE-X, and what was built too long ago', () => {
    type Entry = {
      image: string;
      digest: string;
      workloads: string[];
      runningSince?: string;
      builtAt?: string;
      cves?: string[];
    };
    const all = json<Entry[]>(['inventory']);
    const web = all.find((x) => x.image === `${e.registry.host}/cli/web`);
    assert.deepEqual(web?.workloads, [`${ns}/Deployment/web/app`]);
    assert.match(web?.digest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.ok(web?.runningSince);
    // When each image was built, as its config says: web was pushed by this test, old in 2020.
    assert.ok(Date.now() - Date.parse(web.builtAt ?? '') < 30 * 60_000, `web built ${web.builtAt}`);
    assert.equal(all.find((x) => x.image.endsWith('/cli/old'))?.builtAt, '2020-01-01T00:00:00.000Z');
    assert.deepEqual(all.map((x) => x.image.split('/').pop()).sort(), ['manual', 'old', 'web']);
    // Trivy Operator found CVE-2026-9000 in what web runs.
    kubectl(['apply', '-n', ns, '-f', '-'], {
      input: stringify({
        apiVersion: 'aquasecurity.github.io/v1alpha1',
        kind: 'VulnerabilityReport',
        metadata: { name: 'replicaset-web-app' },
        report: {
          updateTimestamp: new Date().toISOString(),
          scanner: { name: 'Trivy', vendor: 'Aqua Security', version: '0.58.1' },
          artifact: { repository: 'cli/web', digest: web.digest },
          summary: { criticalCount: 1 },
          vulnerabilities: [
            { vulnerabilityID: 'CVE-2026-9000', resource: 'openssl', installedVersion: '3.0.1', severity: 'CRITICAL' },
          ],
        },
      }),
    });
    const runningIt = json<Entry[]>(['inventory', '--cve', 'CVE-2026-9000']);
    assert.deepEqual(
      runningIt.map((x) => [x.image.split('/').pop(), x.cves]),
      [['web', ['CVE-2026-9000']]],
    );
    // The stale-image report: what was built more than 30 days ago and still runs.
    assert.deepEqual(
      json<Entry[]>(['inventory', '--older-than', '30d']).map((x) => [x.image.split('/').pop(), x.workloads]),
      [['old', [`${ns}/Deployment/old/app`]]],
    );
    assert.equal(json<Entry[]>(['inventory', '--older-than', '0s']).length, 3);
    assert.equal(cli(['inventory', '--older-than', 'soon', '-n', ns]).status, 2);
    const table = cli(['inventory', '-n', ns]).stdout;
    assert.match(table, /^IMAGE\s+DIGEST\s+WORKLOADS\s+BUILT\s+ON\s+VULNERABILITIES\s+BASE/);
    assert.match(table, /cli\/old\s+\S+\s+1\s+\d+d\s/, 'old: built years ago');
  });

  it('a reader may look but not change: the verb names the permission it lacks (exit 4)', () => {
    assert.equal(json<unknown[]>(['get', 'policies'], readerKubeconfig).length, 3);
    const refused = cli(['suspend', 'policy', 'web', '-n', ns], readerKubeconfig);
    assert.equal(refused.status, 4);
    assert.match(
      refused.stderr,
      new RegExp(`missing permission: patch imagepolicies.patchline.dev in namespace ${ns}`),
    );
    const approve = cli(['approve', 'manual', '-n', ns], readerKubeconfig);
    assert.equal(approve.status, 4);
  });

  it('in a real terminal (tmux): the table fits 80 columns, shows the wide columns at 200, in colour', async () => {
    const session = `patchline-cli-${process.pid}`;
    const screen = async (width: number, verb = 'get policies'): Promise<string> => {
      const command = `KUBECONFIG=${env().cp.kubeconfig} ${plugin} ${verb} -n ${ns}; sleep 30`;
      spawnSync('tmux', ['kill-session', '-t', session]);
      const started = spawnSync(
        'tmux',
        ['new-session', '-d', '-s', session, '-x', String(width), '-y', '20', command],
        {
          env: { ...process.env, TERM: 'xterm-256color', NO_COLOR: undefined },
        },
      );
      assert.equal(started.status, 0, started.stderr?.toString());
      let text = '';
      await waitFor(
        () => {
          text = spawnSync('tmux', ['capture-pane', '-e', '-p', '-t', session], { encoding: 'utf8' }).stdout;
          return text.includes('manual');
        },
        `the table at ${width} columns`,
        30_000,
        100,
      );
      return text;
    };
    try {
      const narrow = await screen(80);
      const plain = (t: string) => t.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '');
      const lines = plain(narrow)
        .trimEnd()
        .split('\n')
        .filter((l) => l.trim() !== '');
      assert.match(lines[0]!, /^NAME\s+READY\s+REASON/);
      for (const l of lines) assert.ok(l.length <= 80, `at most 80 columns: ${l}`);
      assert.ok(!lines[0]!.includes('MESSAGE'), 'no message column at 80 columns');
      assert.ok(narrow.includes('\x1b[32mTrue'), 'Ready True in green on a terminal');
      // The widest table, the inventory, fits too: its image column gives way first.
      const inventoryLines = plain(await screen(80, 'inventory'))
        .trimEnd()
        .split('\n')
        .filter((l) => l.trim() !== '');
      assert.match(inventoryLines[0]!, /^IMAGE\s+DIGEST\s+WORKLOADS\s+BUILT\s+ON/);
      for (const l of inventoryLines) assert.ok(l.length <= 80, `at most 80 columns: ${l}`);
      const wide = plain(await screen(200));
      // docs/cli.md's example run is recorded from here: PATCHLINE_CLI_TRANSCRIPT=<file>.
      const transcript = process.env.PATCHLINE_CLI_TRANSCRIPT;
      if (transcript)
        writeFileSync(
          transcript,
          [
            `$ kubectl patchline get policies -n ${ns}`,
            plain(narrow).trimEnd(),
            '',
            `$ kubectl patchline why deployment/old -n ${ns}`,
            cli(['why', 'deployment/old', '-n', ns]).stdout,
            `$ kubectl patchline why deployment/manual -n ${ns}`,
            cli(['why', 'deployment/manual', '-n', ns]).stdout,
            `$ kubectl patchline inventory -n ${ns}`,
            plain(await screen(200, 'inventory')).trimEnd(),
          ].join('\n'),
        );
      assert.match(wide.split('\n')[0]!, /MODE\s+MESSAGE$/);
      assert.match(wide, /refused: age: built 2020-01-01/);
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session]);
    }
  });

  it('exit codes for scripts: usage 2, not found 3', () => {
    assert.equal(cli(['frobnicate']).status, 2);
    assert.equal(cli(['get', 'widgets']).status, 2);
    const missing = cli(['get', 'policy', 'nope', '-n', ns]);
    assert.equal(missing.status, 3);
    assert.match(missing.stderr, /imagepolicies.patchline.dev nope in namespace .* not found/);
    assert.equal(cli(['--help']).status, 0);
  });

  it("runs as `npx patchline` in the repository (npm runs the project's own bin)", () => {
    const r = spawnSync('npx', ['--offline', 'patchline', 'get', 'policy', 'web', '-n', ns, '-o', 'json'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: env().cp.kubeconfig },
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { name: string }[])[0]?.name, 'web');
  });

  it('reconcile --wait on a terminal: the workloads move to the new digest, redrawn in place', async () => {
    const v2 = await e.pusher.pushImage('cli/web', '1.0', { seed: 'cli-web-v2' });
    // The reconcile asked for must come after the policy has seen the new digest (its push
    // notification can arrive after a reconcile that still finds the old one).
    await waitForPolicy(operator, ns, 'web', 'web sees v2', (x) => x.latest?.digest === v2.digest);
    const session = `patchline-wait-${process.pid}`;
    const command = `KUBECONFIG=${env().cp.kubeconfig} ${plugin} reconcile policy web -n ${ns} --wait; echo exit=$?; sleep 30`;
    const started = spawnSync('tmux', ['new-session', '-d', '-s', session, '-x', '160', '-y', '30', command], {
      env: { ...process.env, TERM: 'xterm-256color' },
    });
    assert.equal(started.status, 0, started.stderr?.toString());
    try {
      let screen = '';
      await waitFor(
        () => {
          screen = spawnSync('tmux', ['capture-pane', '-p', '-t', session], { encoding: 'utf8' }).stdout;
          return screen.includes('exit=');
        },
        'reconcile --wait to finish',
        60_000,
        100,
      );
      assert.match(screen, /exit=0/);
      assert.match(screen, new RegExp(`Deployment/web app\\s+UpToDate\\s+${v2.digest.slice(7, 19)}`));
      assert.equal(
        screen.split('Deployment/web app').length - 1,
        1,
        `one line per workload, redrawn in place:\n${screen}`,
      );
      assert.match(screen, new RegExp(`policy ${ns}/web: Ready True Accepted`));
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session]);
    }
  });
});
