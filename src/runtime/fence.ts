// Writes only while leading: the client the controllers write with refuses every request
// that changes something (anything but GET) when this replica cannot confirm it still holds
// the leader lease (LeaderElector.holdsLease). A leader paused past its renew deadline
// (SIGSTOP, a frozen VM, a long stall) resumes with timers, watch events and reconciles that
// would all write at once, while another replica already leads: the fence stops them before
// they reach the API server, and the renew loop then finds the lease taken and stops the
// replica. The residual window — paused between the check and the send — is the same as
// client-go's; status writes carry the resourceVersion read, so a stale one still gets 409.
import type { KubeClient } from './kube-client.ts';
import type { Logger } from './logger.ts';
import { counter, type Registry } from './metrics.ts';

export class NotLeading extends Error {}

export function fencedClient(
  client: KubeClient,
  holdsLease: () => boolean,
  options: { logger: Logger; registry?: Registry },
): KubeClient {
  const refused = options.registry
    ? counter(options.registry, {
        name: 'patchline_leader_fenced_writes_total',
        help: 'Writes refused because this replica could not confirm it still holds the leader lease.',
        labelNames: ['method'] as const,
      })
    : undefined;
  return {
    server: client.server,
    requestJson: (method, path, requestOptions) => {
      if (method !== 'GET' && !holdsLease()) {
        refused?.inc({ method });
        options.logger.warn('write refused: the leader lease is not confirmed', { method, path });
        return Promise.reject(new NotLeading(`not leading: ${method} ${path} refused`));
      }
      return client.requestJson(method, path, requestOptions);
    },
    stream: (path, streamOptions) => client.stream(path, streamOptions),
    // The pool is the unfenced client's, closed with it.
    close: () => Promise.resolve(),
  };
}
