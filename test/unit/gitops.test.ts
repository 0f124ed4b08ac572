// The Argo CD health check shipped in the docs, run by a real Lua VM (wasmoon, Lua 5.4; the
// script keeps to what Argo CD's Lua 5.1 also runs) over each state of both kinds.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LuaFactory } from 'wasmoon';
import { ROOT } from '../support/fixtures.ts';

const script = readFileSync(join(ROOT, 'docs', 'gitops', 'argocd-health.lua'), 'utf8');

async function health(obj: unknown): Promise<{ status: string; message: string }> {
  const lua = await new LuaFactory().createEngine();
  try {
    lua.global.set('obj', obj);
    return (await lua.doString(script)) as { status: string; message: string };
  } finally {
    lua.global.close();
  }
}

const cond = (type: string, status: string, reason: string, message = `${type} ${reason}`) => ({
  type,
  status,
  reason,
  message,
});
const resource = (conditions?: object[], generation = 3, observed = 3) => ({
  metadata: { generation },
  ...(conditions ? { status: { observedGeneration: observed, conditions } } : {}),
});

describe('Argo CD health check (docs/gitops/argocd-health.lua)', () => {
  it('is the script shown in docs/gitops.md', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'gitops.md'), 'utf8');
    const shown = script
      .trimEnd()
      .split('\n')
      .map((l) => (l ? `    ${l}` : l))
      .join('\n');
    assert.ok(doc.includes(shown), 'docs/gitops.md embeds the tested script');
  });

  it('maps the conditions of both kinds to Argo CD health', async () => {
    assert.equal((await health(resource())).status, 'Progressing');
    assert.deepEqual(await health(resource([cond('Ready', 'True', 'Accepted', 'all good')], 4, 3)), {
      status: 'Progressing',
      message: 'Waiting for Patchline to observe generation 4',
    });
    assert.deepEqual(await health(resource([cond('Ready', 'True', 'Accepted', 'v1 accepted')])), {
      status: 'Healthy',
      message: 'v1 accepted',
    });
    assert.deepEqual(
      await health(
        resource([
          cond('Ready', 'False', 'RolloutFailed', 'rollout failed'),
          cond('Stalled', 'True', 'RolloutFailed', 'needs a person'),
        ]),
      ),
      { status: 'Degraded', message: 'needs a person' },
    );
    assert.equal(
      (
        await health(
          resource([cond('Ready', 'Unknown', 'Following'), cond('Reconciling', 'True', 'Following', 'looking')]),
        )
      ).status,
      'Progressing',
    );
    assert.deepEqual(await health(resource([cond('Ready', 'False', 'CandidateRefused', 'signature: none')])), {
      status: 'Degraded',
      message: 'signature: none',
    });
    assert.equal((await health(resource([cond('Ready', 'False', 'Suspended', 'suspended')]))).status, 'Suspended');
    // A RebuildTrigger waiting for its window is healthy.
    assert.equal(
      (
        await health(
          resource([cond('Ready', 'True', 'WaitingForWindow'), cond('UpToDate', 'False', 'WaitingForWindow')]),
        )
      ).status,
      'Healthy',
    );
  });
});
