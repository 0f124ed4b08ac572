// Who a container runs as: every form of the image config's User, and the securityContext's
// precedence (container over pod over image), as the kubelet applies them.
import assert from 'node:assert/strict';
import { describeUser, effectiveUser, parseImageUser } from '../../../src/verify/run-as-user.ts';

describe('the user a container runs as', () => {
  it('reads every form of the image config User', () => {
    for (const [user, uid] of [
      [undefined, 0],
      ['', 0],
      ['  ', 0],
      ['root', 0],
      ['0', 0],
      ['0:0', 0],
      ['root:root', 0],
      ['0:1000', 0],
      ['1000', 1000],
      ['1000:1000', 1000],
      ['65532:65532', 65532],
      ['nginx', undefined],
      ['app:app', undefined],
      ['nobody', undefined],
      ['99999999999999999999', undefined],
    ] as const)
      assert.equal(parseImageUser(user).uid, uid, String(user));
  });

  it('takes runAsUser from the container over the pod over the image', () => {
    assert.deepEqual(effectiveUser('1000', {}, {}), {
      uid: 1000,
      written: '1000',
      source: 'image',
      root: false,
      nonRootEnforced: false,
    });
    const pod = effectiveUser('', { runAsUser: 2000 });
    assert.deepEqual([pod.uid, pod.source, pod.root], [2000, 'pod securityContext', false]);
    const container = effectiveUser('', { runAsUser: 2000 }, { runAsUser: 0 });
    assert.deepEqual([container.uid, container.source, container.root], [0, 'container securityContext', true]);
    assert.equal(describeUser(container), 'root (container securityContext)');
    assert.equal(describeUser(effectiveUser('nginx')), '"nginx", unknown (image)');
    assert.equal(describeUser(effectiveUser('1000:1000')), 'uid 1000 (image)');
  });

  it('says when runAsNonRoot makes the kubelet refuse the container: root, or a name it cannot check', () => {
    const root = effectiveUser('', { runAsNonRoot: true });
    assert.equal(root.root, true);
    assert.match(root.refusedByKubelet ?? '', /would run as root \(uid 0, from the image\)/);
    assert.match(effectiveUser('app', {}, { runAsNonRoot: true }).refusedByKubelet ?? '', /"app" is a name/);
    // runAsUser settles it; the container's runAsNonRoot: false overrides the pod's true.
    assert.equal(effectiveUser('app', { runAsNonRoot: true, runAsUser: 1000 }).refusedByKubelet, undefined);
    assert.equal(effectiveUser('', { runAsNonRoot: true }, { runAsNonRoot: false }).refusedByKubelet, undefined);
    assert.equal(effectiveUser('', { runAsNonRoot: true }, { runAsNonRoot: false }).nonRootEnforced, false);
    // A name with runAsNonRoot unset is only unknown.
    const named = effectiveUser('nginx');
    assert.deepEqual([named.uid, named.root, named.refusedByKubelet], [undefined, undefined, undefined]);
  });
});
