// The operator's configuration: command-line flags over environment variables over
// defaults, validated once at start. Every problem is reported at once, each naming the
// flag and the environment variable that set it.
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from './runtime/duration.ts';
import { parseLabelSelector } from './runtime/label-selector.ts';
import type { LogFormat, LogLevel } from './runtime/logger.ts';

const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
const LOG_FORMATS: readonly LogFormat[] = ['json', 'text', 'auto'];

export interface Config {
  kubeconfig: string;
  context: string;
  /** The operator's own namespace: its Lease lives here. */
  namespace: string;
  /** This replica's name: leader identity and Events' reportingInstance. */
  identity: string;
  leaderElection: {
    enabled: boolean;
    leaseName: string;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
  };
  /** Namespaces to watch; empty means all. */
  watchNamespaces: string[];
  /**
   * Label selector of the ImagePolicies, RebuildTriggers and GitWriteBacks this instance
   * owns (its shard); empty: all of them. Workloads and pods are not filtered: they are
   * read for the policies of the shard.
   */
  watchLabelSelector: string;
  probe: { host: string; port: number };
  log: { level: LogLevel; format: LogFormat };
  workers: number;
  /** Builds in flight at once across all triggers. */
  maxBuilds: number;
  /** The optional configuration file (registries, webhook receivers). */
  configFile: string;
  /** Where registry webhooks are received; used when receivers are configured. */
  webhook: { host: string; port: number };
  /**
   * How build services reach this instance's webhook endpoint (over the config file's
   * webhooks.buildCallbackURL): each instance of a sharded install has its own.
   */
  buildCallbackURL: string;
  /** Where GitWriteBacks keep their working copies and credential files. */
  gitWorkDir: string;
  /**
   * The ServiceAccount (in the resource's namespace) to act as for tenant actions — build
   * objects, pins — when the resource names none; empty: the operator acts as itself then.
   */
  defaultServiceAccount: string;
  /** The validating admission webhook; disabled when address is undefined. */
  admission: {
    address?: { host: string; port: number };
    webhookConfiguration: string;
    secret: string;
    service: string;
    /** Extra names and IPs for the self-managed serving certificate. */
    certHosts: string[];
    /** Serve a certificate from these files (cert-manager) instead of managing one. */
    certDir: string;
    /** Only the API server's calls, by their client certificate (CA file); empty: no check. */
    clientCAFile: string;
    /** Time allowed for signature checks, below the webhook's timeoutSeconds. */
    deadlineMs: number;
  };
}

export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

interface Setting {
  flag: string;
  env: string;
  fallback: string;
  help: string;
}

const SETTINGS = {
  kubeconfig: {
    flag: 'kubeconfig',
    env: 'KUBECONFIG',
    fallback: '',
    help: 'kubeconfig file; empty: in-cluster or ~/.kube/config',
  },
  context: { flag: 'context', env: 'PATCHLINE_CONTEXT', fallback: '', help: 'kubeconfig context to use' },
  namespace: {
    flag: 'namespace',
    env: 'POD_NAMESPACE',
    fallback: 'patchline-system',
    help: "the operator's namespace",
  },
  identity: { flag: 'identity', env: 'POD_NAME', fallback: '', help: "this replica's name (default: host name)" },
  leaderElect: {
    flag: 'leader-elect',
    env: 'PATCHLINE_LEADER_ELECT',
    fallback: 'true',
    help: 'elect a leader (true/false)',
  },
  leaseName: {
    flag: 'leader-election-id',
    env: 'PATCHLINE_LEADER_ELECTION_ID',
    fallback: 'patchline-leader',
    help: 'Lease name',
  },
  leaseDuration: {
    flag: 'lease-duration',
    env: 'PATCHLINE_LEASE_DURATION',
    fallback: '15s',
    help: 'leader lease duration',
  },
  renewDeadline: {
    flag: 'renew-deadline',
    env: 'PATCHLINE_RENEW_DEADLINE',
    fallback: '10s',
    help: 'leader renew deadline',
  },
  retryPeriod: {
    flag: 'retry-period',
    env: 'PATCHLINE_RETRY_PERIOD',
    fallback: '2s',
    help: 'leader election retry period',
  },
  watchNamespaces: {
    flag: 'watch-namespaces',
    env: 'PATCHLINE_WATCH_NAMESPACES',
    fallback: '',
    help: 'comma-separated namespaces to watch; empty: all',
  },
  watchLabelSelector: {
    flag: 'watch-label-selector',
    env: 'PATCHLINE_WATCH_LABEL_SELECTOR',
    fallback: '',
    help: 'label selector of the Patchline resources this instance owns (a shard), e.g. patchline.dev/shard=one or !patchline.dev/shard; empty: all',
  },
  probeAddress: {
    flag: 'probe-address',
    env: 'PATCHLINE_PROBE_ADDRESS',
    fallback: '0.0.0.0:8080',
    help: 'host:port of /healthz, /readyz and /metrics',
  },
  logLevel: { flag: 'log-level', env: 'PATCHLINE_LOG_LEVEL', fallback: 'info', help: 'error, warn, info or debug' },
  logFormat: {
    flag: 'log-format',
    env: 'PATCHLINE_LOG_FORMAT',
    fallback: 'auto',
    help: 'json, text, or auto (text on a terminal)',
  },
  workers: { flag: 'workers', env: 'PATCHLINE_WORKERS', fallback: '4', help: 'concurrent reconciles per controller' },
  maxBuilds: {
    flag: 'max-builds',
    env: 'PATCHLINE_MAX_BUILDS',
    fallback: '20',
    help: 'builds in flight at once, across all triggers',
  },
  configFile: {
    flag: 'config-file',
    env: 'PATCHLINE_CONFIG_FILE',
    fallback: '',
    help: 'YAML file with registry settings and webhook receivers',
  },
  webhookAddress: {
    flag: 'webhook-address',
    env: 'PATCHLINE_WEBHOOK_ADDRESS',
    fallback: '0.0.0.0:9090',
    help: 'host:port of the registry webhook receiver',
  },
  defaultServiceAccount: {
    flag: 'default-service-account',
    env: 'PATCHLINE_DEFAULT_SERVICE_ACCOUNT',
    fallback: '',
    help: "the ServiceAccount of a resource's namespace to act as (impersonation) when its spec names none; set, no tenant action runs with the operator's own rights",
  },
  buildCallbackURL: {
    flag: 'build-callback-url',
    env: 'PATCHLINE_BUILD_CALLBACK_URL',
    fallback: '',
    help: "this instance's webhook endpoint as build services reach it; sent with webhook builds to call back (over webhooks.buildCallbackURL)",
  },
  gitWorkDir: {
    flag: 'git-work-dir',
    env: 'PATCHLINE_GIT_WORK_DIR',
    fallback: '',
    help: 'folder for the working copies of GitWriteBacks (default: <tmp>/patchline-git)',
  },
  admissionAddress: {
    flag: 'admission-address',
    env: 'PATCHLINE_ADMISSION_ADDRESS',
    fallback: '',
    help: 'host:port of the admission webhook (HTTPS); empty: disabled',
  },
  admissionWebhookConfiguration: {
    flag: 'admission-webhook-configuration',
    env: 'PATCHLINE_ADMISSION_WEBHOOK_CONFIGURATION',
    fallback: 'patchline-admission',
    help: 'ValidatingWebhookConfiguration that receives the CA bundle',
  },
  admissionSecret: {
    flag: 'admission-secret',
    env: 'PATCHLINE_ADMISSION_SECRET',
    fallback: 'patchline-admission-tls',
    help: 'Secret (operator namespace) holding the self-managed CA and serving certificate',
  },
  admissionService: {
    flag: 'admission-service',
    env: 'PATCHLINE_ADMISSION_SERVICE',
    fallback: 'patchline-admission',
    help: 'Service the API server calls; names the serving certificate',
  },
  admissionCertHosts: {
    flag: 'admission-cert-hosts',
    env: 'PATCHLINE_ADMISSION_CERT_HOSTS',
    fallback: '',
    help: 'comma-separated extra DNS names or IPs for the serving certificate',
  },
  admissionCertDir: {
    flag: 'admission-cert-dir',
    env: 'PATCHLINE_ADMISSION_CERT_DIR',
    fallback: '',
    help: 'directory with tls.crt and tls.key (cert-manager); empty: self-managed',
  },
  admissionClientCA: {
    flag: 'admission-client-ca',
    env: 'PATCHLINE_ADMISSION_CLIENT_CA',
    fallback: '',
    help: 'PEM file of the CA whose client certificates the API server presents to the webhook; set, calls without one are refused at the TLS handshake',
  },
  admissionTimeout: {
    flag: 'admission-timeout',
    env: 'PATCHLINE_ADMISSION_TIMEOUT',
    fallback: '8s',
    help: 'time allowed for signature checks in a review (below timeoutSeconds)',
  },
} satisfies Record<string, Setting>;

type Key = keyof typeof SETTINGS;

export function usage(): string {
  return Object.values(SETTINGS)
    .map((s: Setting) => `  --${s.flag.padEnd(22)} ${s.env.padEnd(30)} ${s.help} (default "${s.fallback}")`)
    .join('\n');
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Reads settings (flag over environment variable over default), collecting every problem. */
class SettingsReader {
  readonly problems: string[] = [];
  private readonly flags: Record<string, string | undefined>;
  private readonly env: NodeJS.ProcessEnv;

  constructor(flags: Record<string, string | undefined>, env: NodeJS.ProcessEnv) {
    this.flags = flags;
    this.env = env;
  }

  raw(key: Key): string {
    const s: Setting = SETTINGS[key];
    return (this.flags[s.flag] ?? this.env[s.env] ?? s.fallback).trim();
  }

  /** How a problem names the setting: both the flag and the environment variable. */
  where(key: Key): string {
    return `--${SETTINGS[key].flag} / ${SETTINGS[key].env}`;
  }

  problem(key: Key, message: string): void {
    this.problems.push(`${this.where(key)}: ${message}`);
  }

  /** A positive duration in milliseconds; 0 after a problem. */
  duration(key: Key): number {
    try {
      const ms = parseDuration(this.raw(key));
      if (ms <= 0) throw new Error('must be positive');
      return ms;
    } catch (err) {
      this.problem(key, err instanceof Error ? err.message : String(err));
      return 0;
    }
  }

  oneOf<T extends string>(key: Key, allowed: readonly T[]): T {
    const value = this.raw(key) as T;
    if (!allowed.includes(value)) this.problem(key, `"${value}" is not one of ${allowed.join(', ')}`);
    return value;
  }

  wholeNumber(key: Key, min: number, max: number): number {
    const text = this.raw(key);
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max)
      this.problem(key, `"${text}" must be a whole number from ${min} to ${max}`);
    return n;
  }

  /** Comma-separated values, each checked by `valid`. */
  list(key: Key, valid: RegExp, what: string): string[] {
    const values = this.raw(key)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const v of values) if (!valid.test(v)) this.problem(key, `"${v}" is not ${what}`);
    return values;
  }

  hostPort(key: Key): { host: string; port: number } {
    const address = this.raw(key);
    const match = /^(.*):(\d{1,5})$/.exec(address);
    if (!match || Number(match[2]) > 65535) {
      this.problem(key, `"${address}" is not host:port (for example 0.0.0.0:8080 or 127.0.0.1:0)`);
      return { host: '', port: 0 };
    }
    return { host: (match[1] ?? '').replace(/^\[(.*)\]$/, '$1') || '0.0.0.0', port: Number(match[2]) };
  }
}

function parseFlags(argv: string[]): Record<string, string | undefined> {
  const options = Object.fromEntries(
    Object.values(SETTINGS).map((s: Setting) => [s.flag, { type: 'string' as const }]),
  );
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError([`${err instanceof Error ? err.message : String(err)}; known flags:\n${usage()}`]);
  }
}

function leaderElection(r: SettingsReader): Config['leaderElection'] {
  const enabled = r.oneOf('leaderElect', ['true', 'false'] as const) === 'true';
  const leaseDurationMs = r.duration('leaseDuration');
  const renewDeadlineMs = r.duration('renewDeadline');
  const retryPeriodMs = r.duration('retryPeriod');
  if (
    leaseDurationMs &&
    renewDeadlineMs &&
    retryPeriodMs &&
    !(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > retryPeriodMs)
  ) {
    r.problems.push('leader election needs lease duration > renew deadline > retry period');
  }
  return { enabled, leaseName: r.raw('leaseName'), leaseDurationMs, renewDeadlineMs, retryPeriodMs };
}

function admission(r: SettingsReader): Config['admission'] {
  const address = r.raw('admissionAddress') ? r.hostPort('admissionAddress') : undefined;
  const deadlineMs = r.duration('admissionTimeout');
  if (deadlineMs > 29_000) r.problem('admissionTimeout', 'must be below 29s (the API server waits at most 30s)');
  const certHosts = r.list('admissionCertHosts', /^[a-zA-Z0-9.-]+$/, 'a DNS name or IPv4 address');
  for (const key of ['admissionWebhookConfiguration', 'admissionSecret', 'admissionService'] as const)
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(r.raw(key))) r.problem(key, `"${r.raw(key)}" is not a valid name`);
  return {
    ...(address ? { address } : {}),
    webhookConfiguration: r.raw('admissionWebhookConfiguration'),
    secret: r.raw('admissionSecret'),
    service: r.raw('admissionService'),
    certHosts,
    certDir: r.raw('admissionCertDir'),
    clientCAFile: r.raw('admissionClientCA'),
    deadlineMs,
  };
}

/** Reads the configuration from argv and env; throws ConfigError listing every problem. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const r = new SettingsReader(parseFlags(argv), env);
  const leader = leaderElection(r);
  const namespace = r.raw('namespace');
  if (!DNS_LABEL.test(namespace)) r.problem('namespace', `"${namespace}" is not a valid namespace name`);
  const watchNamespaces = r.list('watchNamespaces', DNS_LABEL, 'a valid namespace name');
  const watchLabelSelector = r.raw('watchLabelSelector');
  try {
    parseLabelSelector(watchLabelSelector);
  } catch (err) {
    r.problem('watchLabelSelector', `"${watchLabelSelector}" is not a label selector: ${(err as Error).message}`);
  }
  const probe = r.hostPort('probeAddress');
  const webhook = r.hostPort('webhookAddress');
  const admissionConfig = admission(r);
  const buildCallbackURL = r.raw('buildCallbackURL').replace(/\/+$/, '');
  if (buildCallbackURL && !/^https?:\/\/[^\s/@?#]+(\/[^\s?#]*)?$/.test(buildCallbackURL))
    r.problem('buildCallbackURL', `"${buildCallbackURL}" is not an http(s) URL without credentials, query or fragment`);
  const defaultServiceAccount = r.raw('defaultServiceAccount');
  if (defaultServiceAccount && !DNS_SUBDOMAIN.test(defaultServiceAccount))
    r.problem('defaultServiceAccount', `"${defaultServiceAccount}" is not a valid ServiceAccount name`);
  const workers = r.wholeNumber('workers', 1, 64);
  const maxBuilds = r.wholeNumber('maxBuilds', 1, 10_000);
  const log = { level: r.oneOf('logLevel', LOG_LEVELS), format: r.oneOf('logFormat', LOG_FORMATS) };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return {
    kubeconfig: r.raw('kubeconfig'),
    context: r.raw('context'),
    namespace,
    identity: r.raw('identity') || `${hostname()}-${process.pid}`,
    leaderElection: leader,
    watchNamespaces,
    watchLabelSelector,
    probe,
    log,
    workers,
    maxBuilds,
    configFile: r.raw('configFile'),
    gitWorkDir: r.raw('gitWorkDir') || join(tmpdir(), 'patchline-git'),
    webhook,
    buildCallbackURL,
    defaultServiceAccount,
    admission: admissionConfig,
  };
}
