// Acting as a tenant's ServiceAccount: which one, and that every request carries it.
import assert from 'node:assert/strict';
import { actingAs, actorFor, describeActor } from '../../../src/runtime/impersonation.ts';
import type { KubeClient, RequestOptions, StreamOptions } from '../../../src/runtime/kube-client.ts';

function recordingClient(): KubeClient & { calls: { path: string; headers?: Record<string, string> }[] } {
  const calls: { path: string; headers?: Record<string, string> }[] = [];
  return {
    server: 'https://k8s.example',
    calls,
    requestJson: <T>(_m: string, path: string, options: RequestOptions = {}) => {
      calls.push({ path, ...(options.headers ? { headers: options.headers } : {}) });
      return Promise.resolve(undefined as T);
    },
    stream: (path: string, options: StreamOptions) => {
      calls.push({ path, ...(options.headers ? { headers: options.headers } : {}) });
      return Promise.reject(new Error('not streamed here'));
    },
    close: () => Promise.resolve(),
  };
}

describe('impersonation', () => {
  it("acts as the spec's ServiceAccount, else the operator's default, else as the operator itself", () => {
    assert.deepEqual(actorFor('shop', 'builder', 'patchline-tenant'), {
      namespace: 'shop',
      serviceAccountName: 'builder',
    });
    assert.deepEqual(actorFor('shop', undefined, 'patchline-tenant'), {
      namespace: 'shop',
      serviceAccountName: 'patchline-tenant',
    });
    assert.deepEqual(actorFor('shop', '', 'patchline-tenant')?.serviceAccountName, 'patchline-tenant');
    assert.equal(actorFor('shop', undefined, ''), undefined);
    assert.equal(describeActor(actorFor('shop', 'builder', '')), 'ServiceAccount shop/builder');
    assert.equal(describeActor(undefined), 'the operator');
  });

  it("sends every request, and every watch, as the ServiceAccount's user; none when acting as the operator", async () => {
    const client = recordingClient();
    const as = actingAs(client, { namespace: 'shop', serviceAccountName: 'builder' });
    await as.requestJson('POST', '/apis/batch/v1/namespaces/shop/jobs', { headers: { 'x-other': '1' } });
    await as.stream('/api/v1/pods', { signal: new AbortController().signal, bodyTimeoutMs: 1 }).catch(() => undefined);
    assert.deepEqual(client.calls, [
      {
        path: '/apis/batch/v1/namespaces/shop/jobs',
        headers: { 'x-other': '1', 'impersonate-user': 'system:serviceaccount:shop:builder' },
      },
      { path: '/api/v1/pods', headers: { 'impersonate-user': 'system:serviceaccount:shop:builder' } },
    ]);
    assert.equal(actingAs(client, undefined), client);
  });
});
