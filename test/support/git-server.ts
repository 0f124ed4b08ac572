// A real git server on 127.0.0.1 for the GitOps tests: bare repositories served by git's own
// smart HTTP (`git http-backend`, a CGI program, behind a small Node server that checks basic
// or bearer credentials and maps them to REMOTE_USER), optionally over HTTPS, and by SSH
// (Debian's sshd on a loopback port with a test host key). Tests read what the operator pushed
// with the git CLI.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, type RegistryTls } from './registry-server.ts';

const run = promisify(execFile);

/** Runs git with a clean configuration (no user or system config), author fixed. */
async function git(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { stdout } = await run('git', args, {
    cwd,
    env: {
      PATH: process.env.PATH,
      HOME: cwd,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_TERMINAL_PROMPT: '0',
      GIT_AUTHOR_NAME: 'Test',
      GIT_AUTHOR_EMAIL: 'test@example.com',
      GIT_COMMITTER_NAME: 'Test',
      GIT_COMMITTER_EMAIL: 'test@example.com',
      ...env,
    },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

export interface CommitInfo {
  sha: string;
  subject: string;
  body: string;
  author: string;
}

/** Bare repositories on disk, with helpers to seed, change and read them. */
export class GitRepos {
  readonly root: string;

  constructor(root = mkdtempSync(join(tmpdir(), 'patchline-git-'))) {
    this.root = root;
  }

  path(repo: string): string {
    return join(this.root, `${repo}.git`);
  }

  /** A bare repository whose `branch` holds `files` in one commit. */
  async create(repo: string, files: Record<string, string>, branch = 'main'): Promise<string> {
    const bare = this.path(repo);
    mkdirSync(dirname(bare), { recursive: true });
    await git(['init', '-q', '--bare', '-b', branch, bare], this.root);
    return this.commit(repo, branch, files, 'initial manifests');
  }

  /** Another committer's commit on `branch` (files written as given); returns its SHA. */
  async commit(
    repo: string,
    branch: string,
    files: Record<string, string>,
    message: string,
    from = branch,
  ): Promise<string> {
    const work = mkdtempSync(join(tmpdir(), 'patchline-git-work-'));
    try {
      await git(['init', '-q', '-b', branch], work);
      await git(['fetch', '-q', this.path(repo), from], work).catch(() => undefined);
      await git(['reset', '-q', '--hard', 'FETCH_HEAD'], work).catch(() => undefined);
      for (const [file, text] of Object.entries(files)) {
        mkdirSync(dirname(join(work, file)), { recursive: true });
        writeFileSync(join(work, file), text);
      }
      await git(['add', '-A'], work);
      await git(['commit', '-q', '--allow-empty', '-m', message], work);
      await git(['push', '-q', this.path(repo), `HEAD:refs/heads/${branch}`], work);
      return (await git(['rev-parse', 'HEAD'], work)).trim();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  /** The commits of `branch`, newest first. */
  async log(repo: string, branch = 'main'): Promise<CommitInfo[]> {
    const out = await git(['log', '--format=%H%x1f%an <%ae>%x1f%s%x1f%b%x1e', branch], this.path(repo));
    return out
      .split('\x1e')
      .map((r) => r.trim())
      .filter(Boolean)
      .map((r) => {
        const [sha, author, subject, body] = r.split('\x1f');
        return { sha: sha!, author: author!, subject: subject!, body: (body ?? '').trim() };
      });
  }

  /**
   * Stages a race for the next push to `repo` (over any transport): a commit of `files` is
   * prepared on top of `branch` now, and a pre-receive hook moves `branch` to it while the
   * next push is being received — so that push finds the branch moved and is rejected, as
   * when another committer was first. Later pushes go through.
   */
  async raceNextPush(repo: string, files: Record<string, string>, message: string, branch = 'main'): Promise<string> {
    const sha = await this.commit(repo, 'patchline-test-race', files, message, branch);
    const hook = join(this.path(repo), 'hooks', 'pre-receive');
    writeFileSync(
      hook,
      [
        '#!/bin/sh',
        'cat >/dev/null',
        `if [ ! -f "$GIT_DIR/raced" ]; then`,
        '  touch "$GIT_DIR/raced"',
        // git refuses ref updates from a quarantined push; the race commit is outside it.
        `  env -u GIT_QUARANTINE_PATH git update-ref refs/heads/${branch} ${sha}`,
        'fi',
        'exit 0',
        '',
      ].join('\n'),
    );
    chmodSync(hook, 0o755);
    return sha;
  }

  /**
   * Merges `head` into `base` as a forge's merge button does: a merge commit (--no-ff), or
   * one squashed commit. Returns the new head of `base`.
   */
  async merge(repo: string, head: string, base: string, message: string, squash = false): Promise<string> {
    const work = mkdtempSync(join(tmpdir(), 'patchline-git-merge-'));
    try {
      await git(['init', '-q', '-b', 'patchline-test-merge'], work);
      await git(
        [
          'fetch',
          '-q',
          this.path(repo),
          `refs/heads/${base}:refs/remotes/pr/base`,
          `refs/heads/${head}:refs/remotes/pr/head`,
        ],
        work,
      );
      await git(['checkout', '-q', '-B', base, 'refs/remotes/pr/base'], work);
      if (squash) {
        await git(['merge', '-q', '--squash', 'refs/remotes/pr/head'], work);
        await git(['commit', '-q', '-m', message], work);
      } else {
        await git(['merge', '-q', '--no-ff', '-m', message, 'refs/remotes/pr/head'], work);
      }
      await git(['push', '-q', this.path(repo), `HEAD:refs/heads/${base}`], work);
      return (await git(['rev-parse', 'HEAD'], work)).trim();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  /** Deletes a branch, as a forge's "delete the head branch after merge" setting does. */
  async deleteBranch(repo: string, branch: string): Promise<void> {
    await git(['update-ref', '-d', `refs/heads/${branch}`], this.path(repo));
  }

  /** The branches of a repository. */
  async branches(repo: string): Promise<string[]> {
    const out = await git(['for-each-ref', '--format=%(refname:short)', 'refs/heads'], this.path(repo));
    return out.split('\n').filter(Boolean);
  }

  async file(repo: string, path: string, ref = 'main'): Promise<string> {
    return git(['show', `${ref}:${path}`], this.path(repo));
  }

  async head(repo: string, branch = 'main'): Promise<string | undefined> {
    return (
      (await git(['rev-parse', '--verify', '-q', `refs/heads/${branch}`], this.path(repo)).catch(() => '')).trim() ||
      undefined
    );
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

export interface GitHttpOptions {
  /** Basic credentials accepted: user → password. */
  users?: Record<string, string>;
  /** Bearer tokens accepted. */
  tokens?: string[];
  tls?: RegistryTls;
}

/**
 * git's smart HTTP on 127.0.0.1: every request runs `git http-backend` with the CGI
 * environment; pushes need an authenticated user (REMOTE_USER), as git requires.
 */
export class GitHttpServer {
  readonly repos: GitRepos;
  /** Every request, with the bytes of its answer once sent. */
  readonly requests: { method: string; url: string; user?: string; bytes?: number }[] = [];
  private readonly server: Server;
  private readonly options: GitHttpOptions;
  private base = '';
  /** Called as a push (git-receive-pack POST) arrives: a test can kill the pusher at that moment. */
  onPush: ((repo: string) => void) | undefined;

  private constructor(repos: GitRepos, options: GitHttpOptions) {
    this.repos = repos;
    this.options = options;
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res);
    this.server = options.tls
      ? createHttps({ cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile) }, handler)
      : createHttp(handler);
  }

  static async start(options: GitHttpOptions = {}, repos = new GitRepos()): Promise<GitHttpServer> {
    const s = new GitHttpServer(repos, options);
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    const port = (s.server.address() as AddressInfo).port;
    s.base = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    return s;
  }

  url(repo: string): string {
    return `${this.base}/${repo}.git`;
  }

  private user(req: IncomingMessage): string | undefined | null {
    const auth = req.headers.authorization ?? '';
    const { users, tokens } = this.options;
    if (!users && !tokens) return undefined; // open server (reads only; pushes need a user)
    const basic = /^Basic (.+)$/i.exec(auth);
    if (basic) {
      const [user, ...rest] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      const password = rest.join(':');
      if (user && users?.[user] === password) return user;
      if (password && tokens?.includes(password)) return user || 'token';
    }
    const bearer = /^Bearer (.+)$/i.exec(auth);
    if (bearer && tokens?.includes(bearer[1]!)) return 'token';
    return null;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.base);
    if (req.method === 'POST' && url.pathname.endsWith('/git-receive-pack'))
      this.onPush?.(url.pathname.replace(/^\//, '').replace(/\.git\/git-receive-pack$/, ''));
    const user = this.user(req);
    const record: GitHttpServer['requests'][number] = {
      method: req.method ?? '',
      url: url.pathname + url.search,
      ...(user ? { user } : {}),
    };
    this.requests.push(record);
    let bytes = 0;
    if (user === null) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' });
      res.end('authentication required');
      return;
    }
    const child = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: this.repos.root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.replace(/^\?/, ''),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
        ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
        REMOTE_USER: user ?? '',
        REMOTE_ADDR: '127.0.0.1',
      },
    });
    req.pipe(child.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        bytes += chunk.length;
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('utf8').split('\r\n')) {
        const i = line.indexOf(':');
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      bytes += head.length - end - 4;
      res.write(head.subarray(end + 4));
    });
    child.stdout.on('end', () => {
      record.bytes = bytes;
      res.end();
    });
    child.on('error', () => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** An SSH key pair for a client, and a known_hosts line for the server. */
export interface SshAccess {
  /** OpenSSH private key of a client the server accepts. */
  identity: string;
  /** known_hosts content naming the server's host key at its address. */
  knownHosts: string;
  /** A known_hosts line for another host key: a server that must be refused. */
  wrongKnownHosts: string;
}

/**
 * Debian's sshd on a loopback port, for the repositories of `repos`: the login user's shell runs
 * git-upload-pack and git-receive-pack. Its own config, host key and authorized_keys in a
 * private directory; the packaged service is not involved.
 */
export class GitSshServer {
  readonly repos: GitRepos;
  readonly port: number;
  readonly access: SshAccess;
  private readonly process: ChildProcess;
  private readonly dir: string;

  private constructor(repos: GitRepos, port: number, access: SshAccess, child: ChildProcess, dir: string) {
    this.repos = repos;
    this.port = port;
    this.access = access;
    this.process = child;
    this.dir = dir;
  }

  static async start(repos: GitRepos): Promise<GitSshServer> {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-sshd-'));
    chmodSync(dir, 0o700);
    const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
    keygen(join(dir, 'hostkey'));
    keygen(join(dir, 'client'));
    keygen(join(dir, 'other-hostkey'));
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client.pub')));
    chmodSync(join(dir, 'authorized_keys'), 0o600);
    mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege-separation directory
    const port = await freePort();
    const config = [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'hostkey')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      `SetEnv PATH=${process.env.PATH ?? '/usr/bin:/bin'}`,
      '',
    ].join('\n');
    writeFileSync(join(dir, 'sshd_config'), config);
    const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const hostKey = readFileSync(join(dir, 'hostkey.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    const otherKey = readFileSync(join(dir, 'other-hostkey.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    const access: SshAccess = {
      identity: readFileSync(join(dir, 'client'), 'utf8'),
      knownHosts: `[127.0.0.1]:${port} ${hostKey}\n`,
      wrongKnownHosts: `[127.0.0.1]:${port} ${otherKey}\n`,
    };
    await new Promise<void>((resolve, reject) => {
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/Server listening/.test(stderr)) resolve();
      });
      child.once('exit', () => reject(new Error(`sshd exited: ${stderr}`)));
    });
    return new GitSshServer(repos, port, access, child, dir);
  }

  url(repo: string): string {
    return `ssh://${userInfo().username}@127.0.0.1:${this.port}${this.repos.path(repo)}`;
  }

  async stop(): Promise<void> {
    if (this.process.exitCode === null) {
      const exited = new Promise((resolve) => this.process.once('exit', resolve));
      this.process.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
