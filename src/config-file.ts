// The operator's configuration file (--config-file / PATCHLINE_CONFIG_FILE), usually a
// ConfigMap, for settings that are lists rather than flags:
//
//   registries:                      # per-registry transport settings
//     - host: registry.internal:5000
//       insecure: true               # plain http
//       caFile: /etc/patchline/ca/internal.pem
//       maxConcurrency: 8
//       requestsPerMinute: 600
//       scanner: { type: harbor }    # its own scanner, for policies that name none
//   webhooks:
//     maxBodyBytes: 1048576
//     requestsPerSecond: 10
//     burst: 50
//     buildCallbacks: true           # POST /callbacks/builds/<id> from webhook build services
//     buildCallbackURL: http://patchline-webhooks.patchline-system.svc   # told to them with each build
//     tls: { certFile: ..., keyFile: ... }
//     receivers:
//       - name: internal
//         format: distribution       # distribution, acr, harbor, dockerhub, quay, github, generic
//         registry: registry.internal:5000
//         auth: { type: bearer, tokenFile: /etc/patchline/webhooks/internal/token }
//   sigstore:                        # the trust root for keyless signatures and Rekor entries
//     trustedRootFile: /etc/patchline/sigstore/trusted_root.json   # air-gapped / private Sigstore
//     tuf: { mirrorURL: https://tuf.internal, rootFile: /etc/patchline/sigstore/root.json, cachePath: /tmp/tuf }
//
// Secrets are never in this file: receivers name files (a mounted Secret), read when needed
// so that a rotated Secret takes effect without a restart.
//
// Every key, with its meaning and default, is in one place: the JSON Schema in
// config-file-schema.ts (docs/reference/config-file.md is generated from it). Parsing is
// three steps: YAML, the schema (ajv, every problem at once), then what a schema cannot say:
// files that must be readable, receiver names used once, one trust root source.
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import type { DataValidationCxt } from 'ajv/dist/types/index.js';
import { parseDocument } from 'yaml';
import { ConfigError } from './config.ts';
import {
  CONFIG_FILE_SCHEMA,
  type RawConfigFile,
  type RawReceiverAuth,
  type RawRegistry,
  type RawSigstore,
  type RawWebhooks,
} from './config-file-schema.ts';
import type { RegistryHostConfig } from './registry/client.ts';
import type { Receiver, ReceiverAuth, SecretValue } from './registry/webhooks/server.ts';
import type { TrustedRootSettings } from './verify/trusted-root.ts';

export interface WebhookSettings {
  receivers: Receiver[];
  maxBodyBytes?: number;
  requestsPerSecond?: number;
  burst?: number;
  tls?: { cert: string; key: string };
  /** Serve POST /callbacks/builds/<id> for webhook build services without a statusURL. */
  buildCallbacks?: boolean;
  /** This instance's webhook endpoint as build services reach it; told to them with each build. */
  buildCallbackURL?: string;
}

/** A registry's own scanner from the config file (verify.vulnerabilities.scanners' shape, without credentials). */
export interface RegistryScannerConfig {
  type: 'harbor' | 'ecr' | 'artifactAnalysis' | 'defender' | 'quay';
  url?: string;
  subscriptions?: string[];
}

export interface FileConfig {
  registries: RegistryHostConfig[];
  /** By registry host: the scanner asked for policies that name none. */
  scanners?: Record<string, RegistryScannerConfig>;
  webhooks: WebhookSettings;
  sigstore: TrustedRootSettings;
}

export const EMPTY_FILE_CONFIG: FileConfig = { registries: [], webhooks: { receivers: [] }, sigstore: {} };

/** A secret file, re-read when it changes on disk. */
function secretFile(path: string): SecretValue {
  let cache: { mtimeMs: number; value: string } | undefined;
  return () => {
    const st = statSync(path);
    if (!cache || cache.mtimeMs !== st.mtimeMs)
      cache = { mtimeMs: st.mtimeMs, value: readFileSync(path, 'utf8').trim() };
    return cache.value;
  };
}

export function loadConfigFile(path: string): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`config file ${path}: ${err instanceof Error ? err.message : String(err)}`]);
  }
  return parseConfigFile(text, dirname(resolve(path)), path);
}

/** What the project's own keywords need while a file is validated (ajv's passContext). */
interface ValidationContext {
  /** The folder of the configuration file: relative paths start there. */
  baseDir: string;
}

type Issue = Partial<ErrorObject>;

/** `x-file`: a path to a readable file that is not empty. */
function readableFile(this: ValidationContext, _enabled: boolean, value: string): boolean {
  const path = resolve(this.baseDir, value);
  let message: string | undefined;
  try {
    if (!readFileSync(path, 'utf8').trim()) message = `${path} is empty`;
  } catch {
    message = `cannot read ${path}`;
  }
  readableFile.errors = message ? [{ keyword: 'x-file', message, params: {} }] : [];
  return message === undefined;
}
readableFile.errors = [] as Issue[];

/** `x-unique`: no two items of the list share the value of this key. */
function uniqueKey(key: string, items: unknown[], _parent?: unknown, cxt?: DataValidationCxt): boolean {
  const seen = new Set<unknown>();
  const issues: Issue[] = [];
  items.forEach((item, i) => {
    const value = (item as Record<string, unknown> | null)?.[key];
    if (value === undefined) return;
    if (seen.has(value))
      issues.push({
        keyword: 'x-unique',
        instancePath: `${cxt?.instancePath ?? ''}/${i}/${key}`,
        message: `${JSON.stringify(value)} is used twice`,
        params: {},
      });
    seen.add(value);
  });
  uniqueKey.errors = issues;
  return issues.length === 0;
}
uniqueKey.errors = [] as Issue[];

/** `x-exclusive`: at most one of these keys is set. */
function exclusiveKeys(keys: string[], data: Record<string, unknown>): boolean {
  const set = keys.filter((k) => data[k] !== undefined && data[k] !== null);
  exclusiveKeys.errors =
    set.length > 1 ? [{ keyword: 'x-exclusive', message: `set ${keys.join(' or ')}, not both`, params: {} }] : [];
  return set.length <= 1;
}
exclusiveKeys.errors = [] as Issue[];

// strictRequired off: an auth type's `then` requires properties declared beside it, not in it.
const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false, passContext: true });
ajv.addKeyword({ keyword: 'x-invalid', schemaType: 'string' });
ajv.addKeyword({ keyword: 'x-file', type: 'string', schemaType: 'boolean', errors: true, validate: readableFile });
ajv.addKeyword({ keyword: 'x-unique', type: 'array', schemaType: 'string', errors: true, validate: uniqueKey });
ajv.addKeyword({ keyword: 'x-exclusive', type: 'object', schemaType: 'array', errors: true, validate: exclusiveKeys });
const validate = ajv.compile(CONFIG_FILE_SCHEMA);

/** `/webhooks/receivers/0/auth` → `webhooks.receivers[0].auth` */
function fieldOf(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');
}

interface RuleSchema {
  'x-invalid'?: string;
  required?: string[];
  properties?: Record<string, RuleSchema>;
}

/**
 * A required key that is missing: its rule when it has one ("host must be a registry host"),
 * or, for a missing mapping, the rule of the key it cannot do without ("auth.type must be
 * one of …"); otherwise "is required".
 */
function describeMissing(at: string, schema: RuleSchema | undefined): string {
  if (schema?.['x-invalid'] && !schema.properties) return `${at} ${schema['x-invalid']}`;
  const inner = schema?.required?.[0];
  const innerRule = inner ? schema?.properties?.[inner]?.['x-invalid'] : undefined;
  return inner && innerRule ? `${at}.${inner} ${innerRule}` : `${at} is required`;
}

/** What a user reads for one schema error: the field, then what its value must be. */
function describeError(e: ErrorObject, name: string): string | undefined {
  const field = fieldOf(e.instancePath);
  const schema = (e.parentSchema ?? {}) as RuleSchema;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${field || name}: unknown key "${String((e.params as { additionalProperty: string }).additionalProperty)}"`;
    case 'required': {
      const missing = String((e.params as { missingProperty: string }).missingProperty);
      return describeMissing(field ? `${field}.${missing}` : missing, schema.properties?.[missing]);
    }
    case 'if':
      return undefined; // its `then` said what is missing
    case 'x-file':
    case 'x-exclusive':
      return `${field || name}: ${e.message ?? ''}`;
    case 'x-unique':
      return `${field} ${e.message ?? ''}`;
    default:
      return `${field || name} ${schema['x-invalid'] ?? e.message ?? 'is invalid'}`;
  }
}

// From the file's values, checked by the schema: paths resolved, files read.

function registryHosts(raw: RawRegistry[], baseDir: string): RegistryHostConfig[] {
  return raw.map((r) => {
    const host: RegistryHostConfig = { host: r.host };
    if (typeof r.insecure === 'boolean') host.insecure = r.insecure;
    if (r.caFile) host.ca = readFileSync(resolve(baseDir, r.caFile), 'utf8');
    if (r.maxConcurrency) host.maxConcurrency = r.maxConcurrency;
    if (r.requestsPerMinute) host.requestsPerMinute = r.requestsPerMinute;
    return host;
  });
}

function receiverAuth(a: RawReceiverAuth, baseDir: string): ReceiverAuth {
  const secret = (path: string | null | undefined): SecretValue => secretFile(resolve(baseDir, path ?? ''));
  switch (a.type) {
    case 'bearer':
    case 'path':
      return { type: a.type, token: secret(a.tokenFile) };
    case 'basic':
      return { type: 'basic', username: a.username ?? '', password: secret(a.passwordFile) };
    case 'header':
      return { type: 'header', header: a.header ?? '', value: secret(a.valueFile) };
    case 'hmac':
      return a.header
        ? { type: 'hmac', key: secret(a.keyFile), header: a.header }
        : { type: 'hmac', key: secret(a.keyFile) };
  }
}

function webhookSettings(raw: RawWebhooks, baseDir: string): WebhookSettings {
  const webhooks: WebhookSettings = { receivers: [] };
  if (raw.maxBodyBytes) webhooks.maxBodyBytes = raw.maxBodyBytes;
  if (raw.requestsPerSecond) webhooks.requestsPerSecond = raw.requestsPerSecond;
  if (raw.burst) webhooks.burst = raw.burst;
  if (raw.buildCallbacks) webhooks.buildCallbacks = true;
  if (raw.buildCallbackURL) {
    webhooks.buildCallbacks = true;
    webhooks.buildCallbackURL = raw.buildCallbackURL.replace(/\/+$/, '');
  }
  if (raw.tls) {
    const read = (path: string): string => readFileSync(resolve(baseDir, path), 'utf8');
    webhooks.tls = { cert: read(raw.tls.certFile), key: read(raw.tls.keyFile) };
  }
  for (const r of raw.receivers ?? []) {
    const receiver: Receiver = { name: r.name, format: r.format, auth: receiverAuth(r.auth, baseDir) };
    if (r.registry) receiver.registry = r.registry;
    webhooks.receivers.push(receiver);
  }
  return webhooks;
}

function trustedRootSettings(raw: RawSigstore, baseDir: string): TrustedRootSettings {
  const sigstore: TrustedRootSettings = {};
  if (raw.trustedRootFile) sigstore.file = resolve(baseDir, raw.trustedRootFile);
  if (raw.tuf) {
    const tuf: NonNullable<TrustedRootSettings['tuf']> = {};
    if (raw.tuf.mirrorURL) tuf.mirrorURL = raw.tuf.mirrorURL;
    if (raw.tuf.rootFile) tuf.rootFile = resolve(baseDir, raw.tuf.rootFile);
    if (raw.tuf.cachePath) tuf.cachePath = resolve(baseDir, raw.tuf.cachePath);
    sigstore.tuf = tuf;
  }
  return sigstore;
}

/** Reads a configuration file's text; throws ConfigError listing every problem at once. */
export function parseConfigFile(text: string, baseDir: string, name = 'config file'): FileConfig {
  // Errors and warnings alike (an unknown tag or directive) are the user's to fix: refused,
  // each said, rather than printed as a process warning and read some other way.
  const parsed = parseDocument(text, { logLevel: 'silent' });
  const yamlProblems = [...parsed.errors, ...parsed.warnings].map((e) => `${name} is not valid YAML: ${e.message}`);
  if (yamlProblems.length > 0) throw new ConfigError(yamlProblems);
  let doc: unknown;
  try {
    doc = parsed.toJS() ?? {};
  } catch (err) {
    throw new ConfigError([`${name} is not valid YAML: ${err instanceof Error ? err.message : String(err)}`]);
  }
  const context: ValidationContext = { baseDir };
  if (!validate.call(context, doc)) {
    const problems = (validate.errors ?? []).flatMap((e) => describeError(e, name) ?? []);
    throw new ConfigError([...new Set(problems)]);
  }
  const raw = doc as RawConfigFile; // the schema's type: validated above
  const scanners: Record<string, RegistryScannerConfig> = {};
  for (const r of raw.registries ?? [])
    if (r.scanner)
      scanners[r.host] = {
        type: r.scanner.type,
        ...(r.scanner.url ? { url: r.scanner.url } : {}),
        ...(r.scanner.subscriptions ? { subscriptions: r.scanner.subscriptions } : {}),
      };
  return {
    ...(Object.keys(scanners).length > 0 ? { scanners } : {}),
    registries: registryHosts(raw.registries ?? [], baseDir),
    webhooks: webhookSettings(raw.webhooks ?? {}, baseDir),
    sigstore: trustedRootSettings(raw.sigstore ?? {}, baseDir),
  };
}
