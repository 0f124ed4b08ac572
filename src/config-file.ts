// The operator's configuration file (--config-file / PATCHLINE_CONFIG_FILE), usually a
// ConfigMap, for settings that are lists rather than flags:
//
//   registries:                      # per-registry transport settings
//     - host: registry.internal:5000
//       insecure: true               # plain http
//       caFile: /etc/patchline/ca/internal.pem
//       maxConcurrency: 8
//       requestsPerMinute: 600
//   webhooks:
//     maxBodyBytes: 1048576
//     requestsPerSecond: 10
//     burst: 50
//     buildCallbacks: true           # POST /callbacks/builds/<id> from webhook build services
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
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { ConfigError } from './config.ts';
import type { RegistryHostConfig } from './registry/client.ts';
import { FORMATS, type WebhookFormat } from './registry/webhooks/formats.ts';
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
}

export interface FileConfig {
  registries: RegistryHostConfig[];
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

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function loadConfigFile(path: string): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`config file ${path}: ${err instanceof Error ? err.message : String(err)}`]);
  }
  return parseConfigFile(text, dirname(resolve(path)), path);
}

export function parseConfigFile(text: string, baseDir: string, name = 'config file'): FileConfig {
  const problems: string[] = [];
  let doc: unknown;
  try {
    doc = parse(text) ?? {};
  } catch (err) {
    throw new ConfigError([`${name} is not valid YAML: ${err instanceof Error ? err.message : String(err)}`]);
  }
  if (!isObject(doc))
    throw new ConfigError([`${name} must be a mapping with "registries", "webhooks" and/or "sigstore"`]);
  for (const key of Object.keys(doc))
    if (!['registries', 'webhooks', 'sigstore'].includes(key)) problems.push(`${name}: unknown key "${key}"`);

  const file = (field: string, value: unknown): string | undefined => {
    if (typeof value !== 'string' || !value) {
      problems.push(`${field} must be a file path`);
      return undefined;
    }
    const path = resolve(baseDir, value);
    try {
      if (!readFileSync(path, 'utf8').trim()) problems.push(`${field}: ${path} is empty`);
    } catch {
      problems.push(`${field}: cannot read ${path}`);
    }
    return path;
  };
  const positive = (field: string, value: unknown): number | undefined => {
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      problems.push(`${field} must be a whole number of at least 1`);
      return undefined;
    }
    return value;
  };

  const registries: RegistryHostConfig[] = [];
  const rawRegistries = doc.registries ?? [];
  if (!Array.isArray(rawRegistries)) problems.push('registries must be a list');
  else
    rawRegistries.forEach((r, i) => {
      const at = `registries[${i}]`;
      if (!isObject(r) || typeof r.host !== 'string' || !/^[a-zA-Z0-9.\-[\]:]+$/.test(r.host)) {
        problems.push(`${at}.host must be a registry host such as registry.example.com:5000`);
        return;
      }
      const host: RegistryHostConfig = { host: r.host };
      if (r.insecure !== undefined) {
        if (typeof r.insecure !== 'boolean') problems.push(`${at}.insecure must be true or false`);
        else host.insecure = r.insecure;
      }
      if (r.caFile !== undefined) {
        const path = file(`${at}.caFile`, r.caFile);
        if (path) {
          try {
            host.ca = readFileSync(path, 'utf8');
          } catch {
            // reported by file()
          }
        }
      }
      const c = positive(`${at}.maxConcurrency`, r.maxConcurrency);
      if (c) host.maxConcurrency = c;
      const rpm = positive(`${at}.requestsPerMinute`, r.requestsPerMinute);
      if (rpm) host.requestsPerMinute = rpm;
      registries.push(host);
    });

  const webhooks: WebhookSettings = { receivers: [] };
  const rawWebhooks = doc.webhooks ?? {};
  if (!isObject(rawWebhooks)) problems.push('webhooks must be a mapping');
  else {
    const m = positive('webhooks.maxBodyBytes', rawWebhooks.maxBodyBytes);
    if (m) webhooks.maxBodyBytes = m;
    const rps = positive('webhooks.requestsPerSecond', rawWebhooks.requestsPerSecond);
    if (rps) webhooks.requestsPerSecond = rps;
    const burst = positive('webhooks.burst', rawWebhooks.burst);
    if (burst) webhooks.burst = burst;
    if (rawWebhooks.buildCallbacks !== undefined) {
      if (typeof rawWebhooks.buildCallbacks !== 'boolean')
        problems.push('webhooks.buildCallbacks must be true or false');
      else if (rawWebhooks.buildCallbacks) webhooks.buildCallbacks = true;
    }
    if (rawWebhooks.tls !== undefined) {
      const t = isObject(rawWebhooks.tls) ? rawWebhooks.tls : {};
      const cert = file('webhooks.tls.certFile', t.certFile);
      const key = file('webhooks.tls.keyFile', t.keyFile);
      if (cert && key) {
        try {
          webhooks.tls = { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
        } catch {
          // reported by file()
        }
      }
    }
    const receivers = rawWebhooks.receivers ?? [];
    if (!Array.isArray(receivers)) problems.push('webhooks.receivers must be a list');
    else {
      const names = new Set<string>();
      receivers.forEach((r, i) => {
        const at = `webhooks.receivers[${i}]`;
        if (!isObject(r)) {
          problems.push(`${at} must be a mapping`);
          return;
        }
        if (typeof r.name !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(r.name)) {
          problems.push(`${at}.name must be lower-case letters, digits and dashes`);
          return;
        }
        if (names.has(r.name)) {
          problems.push(`${at}.name "${r.name}" is used twice`);
          return;
        }
        names.add(r.name);
        if (!FORMATS.includes(r.format as WebhookFormat)) {
          problems.push(`${at}.format must be one of ${FORMATS.join(', ')}`);
          return;
        }
        const a = isObject(r.auth) ? r.auth : undefined;
        let auth: ReceiverAuth | undefined;
        const secret = (field: string): SecretValue | undefined => {
          const path = file(`${at}.auth.${field}`, a?.[field]);
          return path ? secretFile(path) : undefined;
        };
        switch (a?.type) {
          case 'bearer': {
            const token = secret('tokenFile');
            if (token) auth = { type: 'bearer', token };
            break;
          }
          case 'basic': {
            const password = secret('passwordFile');
            if (typeof a.username !== 'string' || !a.username) problems.push(`${at}.auth.username is required`);
            else if (password) auth = { type: 'basic', username: a.username, password };
            break;
          }
          case 'header': {
            const value = secret('valueFile');
            if (typeof a.header !== 'string' || !/^[A-Za-z0-9-]+$/.test(a.header))
              problems.push(`${at}.auth.header must be a header name`);
            else if (value) auth = { type: 'header', header: a.header, value };
            break;
          }
          case 'hmac': {
            const key = secret('keyFile');
            if (key)
              auth = typeof a.header === 'string' ? { type: 'hmac', key, header: a.header } : { type: 'hmac', key };
            break;
          }
          case 'path': {
            const token = secret('tokenFile');
            if (token) auth = { type: 'path', token };
            break;
          }
          default:
            problems.push(
              `${at}.auth.type must be one of bearer, basic, header, hmac, path (every receiver is authenticated)`,
            );
        }
        if (!auth) return;
        const receiver: Receiver = { name: r.name, format: r.format as WebhookFormat, auth };
        if (r.registry !== undefined) {
          if (typeof r.registry !== 'string' || !r.registry) problems.push(`${at}.registry must be a registry host`);
          else receiver.registry = r.registry;
        }
        webhooks.receivers.push(receiver);
      });
    }
  }
  const sigstore: TrustedRootSettings = {};
  const rawSigstore = doc.sigstore ?? {};
  if (!isObject(rawSigstore)) problems.push('sigstore must be a mapping');
  else {
    for (const key of Object.keys(rawSigstore))
      if (key !== 'trustedRootFile' && key !== 'tuf') problems.push(`sigstore: unknown key "${key}"`);
    if (rawSigstore.trustedRootFile !== undefined) {
      const path = file('sigstore.trustedRootFile', rawSigstore.trustedRootFile);
      if (path) sigstore.file = path;
    }
    if (rawSigstore.tuf !== undefined) {
      const t = rawSigstore.tuf;
      if (!isObject(t)) problems.push('sigstore.tuf must be a mapping');
      else {
        const tuf: NonNullable<TrustedRootSettings['tuf']> = {};
        if (t.mirrorURL !== undefined) {
          if (typeof t.mirrorURL !== 'string' || !/^https?:\/\/\S+$/.test(t.mirrorURL))
            problems.push('sigstore.tuf.mirrorURL must be an http(s) URL');
          else tuf.mirrorURL = t.mirrorURL;
        }
        if (t.rootFile !== undefined) {
          const path = file('sigstore.tuf.rootFile', t.rootFile);
          if (path) tuf.rootFile = path;
        }
        if (t.cachePath !== undefined) {
          if (typeof t.cachePath !== 'string' || !t.cachePath)
            problems.push('sigstore.tuf.cachePath must be a directory');
          else tuf.cachePath = resolve(baseDir, t.cachePath);
        }
        sigstore.tuf = tuf;
      }
    }
    if (sigstore.file && sigstore.tuf) problems.push('sigstore: set trustedRootFile or tuf, not both');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { registries, webhooks, sigstore };
}
