// What the rebuild tests share: a real registry that notifies the operator of pushes, the
// small build service, the operator's config file, and reading a trigger's status.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { RebuildTrigger, RebuildTriggerStatus } from '../../../src/api/v1alpha1/index.ts';
import { BuildService, type BuildServiceOptions } from '../../support/build-service.ts';
import { OciPusher } from '../../support/oci-push.ts';
import { stablePort, startRegistry, type RegistryServer } from '../../support/registry-server.ts';
import { kubectl } from './env.ts';
import { Operator } from './operator.ts';

const HMAC_KEY = 'e2e-build-hmac-key';
const HOOK_TOKEN = 'e2e-registry-hook-token';

export class RebuildEnv {
  registry!: RegistryServer;
  pusher!: OciPusher;
  builds!: BuildService;
  /** One webhook port per replica; the registry notifies them all. */
  webhookPorts: number[] = [];
  private configFile = '';

  /**
   * `limits`: the operator's request budget for the local registry and its webhook rate
   * limit (default: the operator's defaults).
   */
  static async start(
    build: Omit<BuildServiceOptions, 'registryUrl'> = {},
    limits: { requestsPerMinute?: number; webhookRequestsPerSecond?: number } = {},
    /** A Sigstore trusted root (JSON) for the operator's config: keyless signatures, Rekor entries. */
    trustedRoot?: object,
  ): Promise<RebuildEnv> {
    const { requestsPerMinute, webhookRequestsPerSecond } = limits;
    const e = new RebuildEnv();
    e.webhookPorts = [await stablePort(), await stablePort()];
    // The registry tells the operator about every push, as a production registry would.
    e.registry = await startRegistry({
      notifications: e.webhookPorts.map((port) => ({
        url: `http://127.0.0.1:${port}/hooks/registry`,
        headers: { Authorization: `Bearer ${HOOK_TOKEN}` },
      })),
    });
    e.pusher = new OciPusher(e.registry.url);
    e.builds = new BuildService({ registryUrl: e.registry.url, hmacKey: HMAC_KEY, ...build });
    await e.builds.start();
    const dir = mkdtempSync(join(tmpdir(), 'patchline-rebuild-'));
    writeFileSync(join(dir, 'hook-token'), `${HOOK_TOKEN}\n`);
    e.configFile = join(dir, 'config.yaml');
    if (trustedRoot) writeFileSync(join(dir, 'trusted_root.json'), JSON.stringify(trustedRoot));
    writeFileSync(
      e.configFile,
      stringify({
        registries: [{ host: e.registry.host, insecure: true, ...(requestsPerMinute ? { requestsPerMinute } : {}) }],
        webhooks: {
          ...(webhookRequestsPerSecond
            ? { requestsPerSecond: webhookRequestsPerSecond, burst: webhookRequestsPerSecond }
            : {}),
          receivers: [
            { name: 'registry', format: 'distribution', auth: { type: 'bearer', tokenFile: join(dir, 'hook-token') } },
          ],
        },
        ...(trustedRoot ? { sigstore: { trustedRootFile: join(dir, 'trusted_root.json') } } : {}),
      }),
    );
    return e;
  }

  /** Starts an operator (replica 0 or 1) reading this environment's config, receiving the registry's notifications. */
  operator(
    identity: string,
    leaseName: string,
    args: string[] = [],
    replica = 0,
    env: Record<string, string> = {},
  ): Promise<Operator> {
    return Operator.start({
      identity,
      leaseName,
      env,
      args: [
        '--config-file',
        this.configFile,
        '--webhook-address',
        `127.0.0.1:${this.webhookPorts[replica]!}`,
        ...args,
      ],
    });
  }

  /** The operator's config file this environment wrote. */
  get configFilePath(): string {
    return this.configFile;
  }

  image(repository: string, tag: string): string {
    return `${this.registry.host}/${repository}:${tag}`;
  }

  async stop(): Promise<void> {
    await this.builds.stop();
    await this.registry.stop();
  }
}

/** The build service's credentials Secret, in the trigger's namespace. */
export function createBuildSecret(ns: string, name = 'build-creds'): void {
  kubectl(['create', 'secret', 'generic', name, '-n', ns, `--from-literal=hmacKey=${HMAC_KEY}`]);
}

export function applyTrigger(ns: string, name: string, spec: RebuildTrigger['spec']): void {
  kubectl(['apply', '-n', ns, '-f', '-'], {
    input: stringify({ apiVersion: 'patchline.dev/v1alpha1', kind: 'RebuildTrigger', metadata: { name }, spec }),
  });
}

export function triggerStatus(ns: string, name: string): RebuildTriggerStatus {
  const out = kubectl(['get', 'rbt', name, '-n', ns, '-o', 'json'], { allowFailure: true }).stdout;
  if (!out) return {};
  return (JSON.parse(out) as RebuildTrigger).status ?? {};
}

/** The Event reasons recorded for an object, oldest first. */
export function eventReasons(ns: string, name: string): string[] {
  const out = kubectl([
    'get',
    'events.events.k8s.io',
    '-n',
    ns,
    '--field-selector',
    `regarding.name=${name}`,
    '--sort-by',
    '.metadata.creationTimestamp',
    '-o',
    'jsonpath={range .items[*]}{.reason}{"\\n"}{end}',
  ]).stdout;
  return out.split('\n').filter(Boolean);
}

/** A minimal Tekton PipelineRun CRD: enough for the API server to store and serve PipelineRuns. */
export function installTektonCrd(): void {
  kubectl(['apply', '-f', '-'], {
    input: stringify({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'pipelineruns.tekton.dev' },
      spec: {
        group: 'tekton.dev',
        scope: 'Namespaced',
        names: { plural: 'pipelineruns', singular: 'pipelinerun', kind: 'PipelineRun', listKind: 'PipelineRunList' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            subresources: { status: {} },
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    }),
  });
  kubectl(['wait', '--for=condition=Established', 'crd/pipelineruns.tekton.dev', '--timeout=30s']);
}
