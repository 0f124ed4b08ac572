// Acting for a tenant with no more rights than the tenant granted: requests that change a
// tenant's objects on its behalf (build Jobs and PipelineRuns, pins of its workloads) are
// made as a ServiceAccount of the resource's own namespace, through Kubernetes
// impersonation (the Impersonate-User header), as Flux does with `serviceAccountName`.
//
// The API server then authorizes the request as that ServiceAccount: what the tenant's RBAC
// does not grant it is refused (403) and reported, instead of being done with the
// operator's rights. The operator itself needs only `impersonate` on `serviceaccounts`: a
// ServiceAccount's username gets its groups (system:serviceaccounts[:<namespace>]) from the
// API server, so no user or group is ever impersonated. Only ServiceAccounts of the
// resource's namespace are named here; a name is never read from another namespace.
import type { KubeClient } from './kube-client.ts';

/** The ServiceAccount a tenant action runs as. */
export interface Actor {
  namespace: string;
  serviceAccountName: string;
}

function serviceAccountUser(actor: Actor): string {
  return `system:serviceaccount:${actor.namespace}:${actor.serviceAccountName}`;
}

/** "ServiceAccount <namespace>/<name>", or "the operator" when acting as itself. */
export function describeActor(actor: Actor | undefined): string {
  return actor ? `ServiceAccount ${actor.namespace}/${actor.serviceAccountName}` : 'the operator';
}

/**
 * Who acts for a resource of `namespace`: the ServiceAccount its spec names, else the
 * operator's default (--default-service-account), else undefined: the operator itself.
 */
export function actorFor(
  namespace: string,
  specServiceAccount: string | undefined,
  defaultServiceAccount: string,
): Actor | undefined {
  const name = specServiceAccount || defaultServiceAccount;
  return name ? { namespace, serviceAccountName: name } : undefined;
}

/** A client whose every request is made as `actor`; the operator's own client when undefined. */
export function actingAs(client: KubeClient, actor: Actor | undefined): KubeClient {
  if (!actor) return client;
  const headers = { 'impersonate-user': serviceAccountUser(actor) };
  return {
    server: client.server,
    requestJson: (method, path, options = {}) =>
      client.requestJson(method, path, { ...options, headers: { ...options.headers, ...headers } }),
    stream: (path, options) => client.stream(path, { ...options, headers: { ...options.headers, ...headers } }),
    // The connection pool is the operator's: closed with its own client.
    close: () => Promise.resolve(),
  };
}
