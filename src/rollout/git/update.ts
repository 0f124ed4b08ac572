// One update run of a GitOps repository: every policy's value written in one commit, pushed
// exactly once. The protocol (the controller keeps its state in status):
//
//   1. a change recorded in status but not confirmed (a crash, a failover) is looked for in the
//      push branch by its trailer: found → it was pushed, report it; not found → it was not;
//   2. the branch's head is checked out and every file under the paths edited; nothing to
//      change → no commit (the files already say it);
//   3. the intended change (its id, the head it was made on, the values) is recorded in status
//      BEFORE the push — `recordIntent`, which may refuse when status moved on;
//   4. commit (with the `Patchline-Change: <id>` trailer) and push: to the branch itself (never
//      forced), or to a push branch rebuilt on the head and replaced with a lease;
//      A push branch that still holds the same change (same head, same values) is left as
//      it is: a pull request is not rewritten on every run;
//   5. a push that lost a race (another commit landed first) re-applies the edits on the new
//      head and tries again with backoff, under the same change id.
import { createHash } from 'node:crypto';
import { sleep } from '../../runtime/clock.ts';
import { editOverride, overrideFile, type ArgoCdOverride } from './argocd.ts';
import { editFile, mayEdit, type ImageTarget, type ValueChange } from './edit.ts';
import { CHANGE_TRAILER, commitMessage, type ChangeContext } from './message.ts';
import type { Author, GitWorkspace } from './workspace.ts';

export interface UpdateRequest {
  /** namespace/name of the GitWriteBack, for messages. */
  writeBack: string;
  branch: string;
  /** Patchline's own push branch; absent: commit to `branch`. */
  pushBranch?: string;
  paths: readonly string[];
  author: Author;
  messageTemplate?: string;
  targets: readonly (ImageTarget & { context: ChangeContext; argocd?: ArgoCdOverride })[];
  /** A change recorded before a push whose outcome is not known. */
  pending?: { changeId: string };
  /**
   * The last change pushed to the push branch: when the same change comes out again (same
   * head, same values) and the branch still points at its commit, nothing is pushed.
   */
  previous?: { changeId: string; sha: string };
  now: () => Date;
}

export interface Intent {
  changeId: string;
  baseCommit: string;
  changes: ValueChange[];
}

export type UpdateOutcome =
  /** The pending change was pushed before: its commit. */
  | { kind: 'recovered'; changeId: string; sha: string }
  /** The files already say every value (no commit). */
  | { kind: 'unchanged'; head: string; files: PolicyFiles; problems: string[] }
  | {
      kind: 'pushed';
      intent: Intent;
      sha: string;
      branch: string;
      message: string;
      files: PolicyFiles;
      problems: string[];
    }
  /** The push branch already holds this very change (its last push): nothing pushed. */
  | {
      kind: 'kept';
      changeId: string;
      baseCommit: string;
      sha: string;
      branch: string;
      changes: ValueChange[];
      files: PolicyFiles;
      problems: string[];
    }
  /** Status moved on before the push (another writer): nothing pushed. */
  | { kind: 'abandoned' }
  /** The push kept losing races: try again later. */
  | { kind: 'contended'; reason: string };

/** Per policy, the files that name it. */
export type PolicyFiles = Map<string, string[]>;

const PUSH_ATTEMPTS = 5;

const trailerOf = (changeId: string): string => `${CHANGE_TRAILER}: ${changeId}`;

/** A change's id: the head it was made on and the values it writes. */
function changeIdOf(baseCommit: string, changes: readonly ValueChange[]): string {
  const lines = changes.map((c) => `${c.policy}|${c.file}|${c.line}|${c.to}`).sort();
  return createHash('sha256')
    .update(`${baseCommit}\n${lines.join('\n')}`)
    .digest('hex')
    .slice(0, 20);
}

/** Edits every file under the paths in the working copy; what changed, and which files name which policy. */
async function editWorkingCopy(
  ws: GitWorkspace,
  paths: readonly string[],
  targets: readonly (ImageTarget & { argocd?: ArgoCdOverride })[],
): Promise<{ changes: ValueChange[]; files: PolicyFiles; problems: string[] }> {
  const changes: ValueChange[] = [];
  const files: PolicyFiles = new Map();
  const problems: string[] = [];
  for (const file of await ws.files(paths)) {
    if (!mayEdit(file)) continue;
    const before = ws.read(file);
    const result = editFile(file, before, targets);
    problems.push(...result.problems);
    for (const policy of result.found) files.set(policy, [...(files.get(policy) ?? []), file]);
    if (result.changes.length === 0) continue;
    ws.write(file, result.text);
    changes.push(...result.changes);
  }
  // Argo CD override files: written whether or not they exist yet (no marker needed).
  for (const target of targets) {
    if (!target.argocd) continue;
    const file = overrideFile(target.argocd);
    const result = editOverride(ws.exists(file) ? ws.read(file) : '', target, target.argocd);
    const key = `${target.policy.namespace}/${target.policy.name}`;
    files.set(key, [...(files.get(key) ?? []), file]);
    problems.push(...result.problems);
    if (result.changes.length === 0) continue;
    ws.write(file, result.text);
    changes.push(...result.changes);
  }
  return { changes, files, problems };
}

/** The push branch still points at the commit of this same change: the one pushed last. */
async function alreadyPushed(
  ws: GitWorkspace,
  request: UpdateRequest,
  intent: Intent,
): Promise<Omit<Extract<UpdateOutcome, { kind: 'kept' }>, 'kind' | 'files' | 'problems'> | undefined> {
  const previous = request.previous;
  if (!request.pushBranch || previous?.changeId !== intent.changeId) return undefined;
  if ((await ws.remoteHead(request.pushBranch)) !== previous.sha) return undefined;
  return {
    changeId: intent.changeId,
    baseCommit: intent.baseCommit,
    sha: previous.sha,
    branch: request.pushBranch,
    changes: intent.changes,
  };
}

export async function updateRepository(
  ws: GitWorkspace,
  request: UpdateRequest,
  recordIntent: (intent: Intent) => Promise<boolean>,
): Promise<UpdateOutcome> {
  const target = request.pushBranch ?? request.branch;
  if (request.pending) {
    const sha = await ws.findCommit(target, trailerOf(request.pending.changeId));
    if (sha) return { kind: 'recovered', changeId: request.pending.changeId, sha };
  }
  let head = await ws.checkout(request.branch);
  let edited = await editWorkingCopy(ws, request.paths, request.targets);
  if (edited.changes.length === 0) return { kind: 'unchanged', head, files: edited.files, problems: edited.problems };
  const intent: Intent = { changeId: changeIdOf(head, edited.changes), baseCommit: head, changes: edited.changes };
  const kept = await alreadyPushed(ws, request, intent);
  if (kept) return { kind: 'kept', ...kept, files: edited.files, problems: edited.problems };
  if (!(await recordIntent(intent))) return { kind: 'abandoned' };

  const contexts = request.targets.map((t) => t.context);
  let reason = '';
  for (let attempt = 0; attempt < PUSH_ATTEMPTS; attempt++) {
    if (attempt > 0) {
      await sleep(250 * 2 ** (attempt - 1));
      head = await ws.checkout(request.branch);
      edited = await editWorkingCopy(ws, request.paths, request.targets);
      if (edited.changes.length === 0)
        return { kind: 'unchanged', head, files: edited.files, problems: edited.problems };
    }
    const message = commitMessage(request.messageTemplate, {
      writeBack: request.writeBack,
      changeId: intent.changeId,
      contexts,
      changes: edited.changes,
    });
    await ws.commit(message, request.author, request.now());
    const lease = request.pushBranch ? { expected: await ws.remoteHead(request.pushBranch) } : undefined;
    const pushed = await ws.push(target, lease);
    if (pushed.kind === 'pushed') {
      return {
        kind: 'pushed',
        intent: { ...intent, changes: edited.changes },
        sha: pushed.sha,
        branch: target,
        message,
        files: edited.files,
        problems: edited.problems,
      };
    }
    reason = pushed.reason;
  }
  return { kind: 'contended', reason };
}
