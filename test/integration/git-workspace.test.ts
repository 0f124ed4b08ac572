// The operator's git working copy against real git servers on 127.0.0.1: smart HTTP through
// `git http-backend` (basic and bearer credentials, HTTPS with a private CA) and SSH through
// Debian's sshd (a key, known_hosts checked). The results are read with the git CLI.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GitError, GitWorkspace, isSshUrl, type GitCredentials } from '../../src/rollout/git/workspace.ts';
import { GitHttpServer, GitRepos, GitSshServer } from '../support/git-server.ts';
import { makeTls } from '../support/registry-server.ts';

const author = { name: 'Patchline', email: 'patchline@example.com' };
const at = new Date('2026-12-06T10:00:00Z');

describe('git workspace against real git servers', () => {
  let repos: GitRepos;
  let http: GitHttpServer;
  let ssh: GitSshServer;
  const dirs: string[] = [];

  before(async () => {
    repos = new GitRepos();
    http = await GitHttpServer.start({ users: { bot: 's3cret' }, tokens: ['tok-123'] }, repos);
    ssh = await GitSshServer.start(repos);
  });
  after(async () => {
    await http.stop();
    await ssh.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    repos.remove();
  });

  const workspace = (url: string, credentials: GitCredentials): GitWorkspace => {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-ws-'));
    dirs.push(dir);
    return new GitWorkspace({ dir, url, credentials, timeoutMs: 30_000 });
  };

  it('clones shallow, commits and pushes over HTTPS with basic credentials; the server sees no credentials in URLs', async () => {
    const first = await repos.create('fleet-basic', { 'apps/web.yaml': 'image: a\n' });
    const ws = workspace(http.url('fleet-basic'), { username: 'bot', password: 's3cret' });
    assert.equal(await ws.checkout('main'), first);
    assert.deepEqual(await ws.files(['apps']), ['apps/web.yaml']);
    ws.write('apps/web.yaml', 'image: b\n');
    const sha = await ws.commit('update web\n\nPatchline-Change: c1\n', author, at);
    assert.deepEqual(await ws.push('main'), { kind: 'pushed', sha });
    const log = await repos.log('fleet-basic');
    assert.equal(log[0]?.sha, sha);
    assert.equal(log[0]?.author, 'Patchline <patchline@example.com>');
    assert.equal(await repos.file('fleet-basic', 'apps/web.yaml'), 'image: b\n');
    assert.ok(http.requests.some((r) => r.user === 'bot' && r.url.includes('git-receive-pack')));
    assert.ok(http.requests.every((r) => !r.url.includes('s3cret')));
  });

  it('uses a bearer token, and says when credentials are refused', async () => {
    await repos.create('fleet-token', { 'a.yaml': 'x: 1\n' });
    const ws = workspace(http.url('fleet-token'), { bearerToken: 'tok-123' });
    await ws.checkout('main');
    const bad = workspace(http.url('fleet-token'), { username: 'bot', password: 'wrong' });
    await assert.rejects(bad.checkout('main'), (err: unknown) => err instanceof GitError && err.auth);
    await assert.rejects(ws.checkout('nope'), /branch nope does not exist/);
  });

  it('trusts a private CA for HTTPS when given one, and refuses the server without it', async () => {
    const tls = makeTls();
    const secure = await GitHttpServer.start({ users: { bot: 's3cret' }, tls }, repos);
    try {
      await repos.create('fleet-tls', { 'a.yaml': 'x: 1\n' });
      const ws = workspace(secure.url('fleet-tls'), { username: 'bot', password: 's3cret', caCert: tls.ca });
      await ws.checkout('main');
      const untrusting = workspace(secure.url('fleet-tls'), { username: 'bot', password: 's3cret' });
      await assert.rejects(untrusting.checkout('main'), /certificate|SSL/i);
    } finally {
      await secure.stop();
    }
  });

  it('pushes over SSH with a key, checking the host key; a wrong host key or none is refused', async () => {
    await repos.create('fleet-ssh', { 'a.yaml': 'x: 1\n' });
    assert.ok(isSshUrl(ssh.url('fleet-ssh')));
    const ws = workspace(ssh.url('fleet-ssh'), { identity: ssh.access.identity, knownHosts: ssh.access.knownHosts });
    await ws.checkout('main');
    ws.write('a.yaml', 'x: 2\n');
    const sha = await ws.commit('over ssh', author, at);
    assert.deepEqual(await ws.push('main'), { kind: 'pushed', sha });
    assert.equal(await repos.head('fleet-ssh'), sha);
    const spoofed = workspace(ssh.url('fleet-ssh'), {
      identity: ssh.access.identity,
      knownHosts: ssh.access.wrongKnownHosts,
    });
    await assert.rejects(spoofed.checkout('main'), (err: unknown) => err instanceof GitError && err.auth);
    assert.throws(
      () => workspace(ssh.url('fleet-ssh'), { identity: ssh.access.identity }),
      /needs known_hosts: host keys are never trusted on first use/,
    );
  });

  it('never forces the branch it reads: a push behind the remote is rejected; a lease guards the push branch', async () => {
    await repos.create('fleet-race', { 'a.yaml': 'x: 1\n' });
    const ws = workspace(http.url('fleet-race'), { username: 'bot', password: 's3cret' });
    await ws.checkout('main');
    const theirs = await repos.commit('fleet-race', 'main', { 'b.yaml': 'y: 1\n' }, 'someone else');
    ws.write('a.yaml', 'x: 2\n');
    await ws.commit('ours', author, at);
    const push = await ws.push('main');
    assert.equal(push.kind, 'rejected');
    assert.equal(await repos.head('fleet-race'), theirs, 'their commit stays');

    // The push branch: created when absent, replaced only from what was seen.
    assert.equal((await ws.push('patchline/updates', { expected: undefined })).kind, 'pushed');
    const seen = await ws.remoteHead('patchline/updates');
    await ws.checkout('main');
    ws.write('a.yaml', 'x: 3\n');
    const next = await ws.commit('ours again', author, at);
    assert.deepEqual(await ws.push('patchline/updates', { expected: seen }), { kind: 'pushed', sha: next });
    ws.write('a.yaml', 'x: 4\n');
    await ws.commit('from a stale view', author, at);
    assert.equal((await ws.push('patchline/updates', { expected: seen })).kind, 'rejected', 'a stale lease is refused');
  });

  it('finds a pushed change again by its trailer', async () => {
    await repos.create('fleet-find', { 'a.yaml': 'x: 1\n' });
    const ws = workspace(http.url('fleet-find'), { username: 'bot', password: 's3cret' });
    await ws.checkout('main');
    ws.write('a.yaml', 'x: 2\n');
    const sha = await ws.commit('change\n\nPatchline-Change: abc123\n', author, at);
    await ws.push('main');
    await repos.commit('fleet-find', 'main', { 'b.yaml': 'later\n' }, 'a later commit');
    assert.equal(await ws.findCommit('main', 'Patchline-Change: abc123'), sha);
    assert.equal(await ws.findCommit('main', 'Patchline-Change: other'), undefined);
  });
});
