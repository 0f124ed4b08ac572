// Starts a real CNCF distribution registry (Debian's docker-registry) on 127.0.0.1, with
// anonymous access, htpasswd basic auth, or token auth, and optional notifications.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { stringify } from 'yaml';
import { Agent, fetch as undiciFetch } from 'undici';
import { waitFor } from './manual-clock.ts';

const REGISTRY_BINARY = '/usr/bin/docker-registry';

export interface RegistryAuthConfig {
  htpasswd?: Record<string, string>;
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
}

export interface NotificationEndpoint {
  url: string;
  headers?: Record<string, string>;
}

export interface RegistryServer {
  /** host:port, as in image references. */
  host: string;
  url: string;
  dir: string;
  process: ChildProcess;
  stop(): Promise<void>;
  /** An outage: the registry process ends, its storage and port are kept for up(). */
  down(): Promise<void>;
  /** Back from down(): the same registry on the same port, with what it held. */
  up(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/**
 * A free port for a server that is stopped and started again on the same port (the operator's
 * webhook and admission servers, which the registry's notifications and the webhook
 * configuration name). A port from freePort() is an ephemeral one, and while the server is down
 * any outgoing connection on the machine may take it as its source port, so that the restarted
 * server fails with EADDRINUSE. This one is below the kernel's ephemeral range, which outgoing
 * connections never use.
 */
export async function stablePort(): Promise<number> {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const top = low && low > 12_000 ? low : 0;
  for (let attempt = 0; top && attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (top - 10_000));
    if (await canListen(port)) return port;
  }
  return freePort(); // no room below the ephemeral range: the old behaviour
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export interface RegistryTls {
  certFile: string;
  keyFile: string;
  /** PEM of the CA that signed the certificate, to check readiness. */
  ca: string;
}

export async function startRegistry(
  options: { auth?: RegistryAuthConfig; notifications?: NotificationEndpoint[]; tls?: RegistryTls } = {},
): Promise<RegistryServer> {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-registry-'));
  const port = await freePort();
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'error', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: join(dir, 'data') },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `127.0.0.1:${port}`,
      headers: { 'X-Content-Type-Options': ['nosniff'] },
      ...(options.tls ? { tls: { certificate: options.tls.certFile, key: options.tls.keyFile } } : {}),
    },
  };
  if (options.auth?.htpasswd) {
    const lines = Object.entries(options.auth.htpasswd).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4)}`);
    writeFileSync(join(dir, 'htpasswd'), lines.join('\n') + '\n');
    config.auth = { htpasswd: { realm: 'patchline-test', path: join(dir, 'htpasswd') } };
  } else if (options.auth?.token) {
    const t = options.auth.token;
    config.auth = { token: { realm: t.realm, service: t.service, issuer: t.issuer, rootcertbundle: t.rootCertBundle } };
  }
  if (options.notifications?.length) {
    config.notifications = {
      events: { includereferences: true },
      endpoints: options.notifications.map((n, i) => ({
        name: `endpoint-${i}`,
        url: n.url,
        headers: Object.fromEntries(Object.entries(n.headers ?? {}).map(([k, v]) => [k, [v]])),
        timeout: '2s',
        threshold: 3,
        backoff: '500ms',
        // As a production registry should be set up: pulls (every digest check is one) are not
        // worth a delivery, and queued behind them a push notification would wait.
        ignore: { actions: ['pull'] },
      })),
    };
  }
  writeFileSync(join(dir, 'config.yml'), stringify(config));
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const dispatcher = options.tls ? new Agent({ connect: { ca: options.tls.ca } }) : undefined;
  const launch = async (): Promise<ChildProcess> => {
    const child = spawn(REGISTRY_BINARY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const errors: string[] = [];
    child.stderr.on('data', (c: Buffer) => errors.push(c.toString()));
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`docker-registry exited: ${errors.join('')}`);
        try {
          const res = await undiciFetch(`${url}/v2/`, dispatcher ? { dispatcher } : {});
          return res.status === 200 || res.status === 401;
        } catch {
          return false;
        }
      },
      'registry up',
      15_000,
      25,
    );
    return child;
  };
  const end = (child: ChildProcess): Promise<void> =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  const server: RegistryServer = {
    host: `127.0.0.1:${port}`,
    url,
    dir,
    process: await launch(),
    stop: async () => {
      await end(server.process);
      rmSync(dir, { recursive: true, force: true });
    },
    down: () => end(server.process),
    up: async () => {
      server.process = await launch();
    },
  };
  return server;
}

/** A CA and a server certificate for 127.0.0.1 it signed, made with openssl. */
export function makeTls(): RegistryTls & { caFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-tls-'));
  const f = (name: string) => join(dir, name);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  run([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=patchline-test-ca',
  ]);
  run([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('server.key'),
    '-out',
    f('server.csr'),
    '-subj',
    '/CN=127.0.0.1',
  ]);
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run([
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('server.pem'),
    '-days',
    '1',
    '-extfile',
    f('ext.cnf'),
  ]);
  return {
    certFile: f('server.pem'),
    keyFile: f('server.key'),
    ca: readFileSync(f('ca.pem'), 'utf8'),
    caFile: f('ca.pem'),
  };
}
