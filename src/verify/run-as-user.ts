// Who a container runs as: the image config's `User`, unless the pod or the container sets
// `runAsUser` in its securityContext (the container's wins over the pod's). Kubernetes does the
// same, and with `runAsNonRoot: true` the kubelet refuses to start a container whose user is
// root (uid 0) or is a name it cannot check without the image's /etc/passwd.
//
// The image's `User` (OCI image config) may be empty (root), a name, a uid, or user:group in
// either form. Only a number, or the name "root", says who it is; any other name needs the
// image's /etc/passwd, which Patchline does not read: it is reported as unknown.

export interface SecurityContextUser {
  runAsUser?: number;
  runAsNonRoot?: boolean;
}

export type UserSource = 'image' | 'container securityContext' | 'pod securityContext';

export interface EffectiveUser {
  /** The uid when known; undefined for a name only /etc/passwd resolves. */
  uid?: number;
  /** As written where it comes from: "0", "root", "1000:1000", "app", "" (the image said nothing). */
  written: string;
  source: UserSource;
  /** Whether it is root: true, false, or undefined when unknown. */
  root: boolean | undefined;
  /** runAsNonRoot is set (container over pod): the kubelet refuses root or an unverifiable name. */
  nonRootEnforced: boolean;
  /** With runAsNonRoot, the kubelet will not start the container as is: why. */
  refusedByKubelet?: string;
}

/** The user part of an image config User: uid, or a name (undefined uid), "" and "root" meaning 0. */
export function parseImageUser(user: string | undefined): { uid?: number; written: string } {
  const written = (user ?? '').trim();
  const name = written.split(':')[0]!;
  if (name === '' || name === 'root') return { uid: 0, written };
  if (/^\d+$/.test(name)) {
    const uid = Number(name);
    return Number.isSafeInteger(uid) ? { uid, written } : { written };
  }
  return { written };
}

/** The effective user of a container, from its image's User and the pod's and container's securityContext. */
export function effectiveUser(
  imageUser: string | undefined,
  pod: SecurityContextUser = {},
  container: SecurityContextUser = {},
): EffectiveUser {
  const nonRootEnforced = (container.runAsNonRoot ?? pod.runAsNonRoot) === true;
  let result: EffectiveUser;
  if (container.runAsUser !== undefined || pod.runAsUser !== undefined) {
    const fromContainer = container.runAsUser !== undefined;
    const uid = (fromContainer ? container.runAsUser : pod.runAsUser)!;
    result = {
      uid,
      written: String(uid),
      source: fromContainer ? 'container securityContext' : 'pod securityContext',
      root: uid === 0,
      nonRootEnforced,
    };
  } else {
    const parsed = parseImageUser(imageUser);
    result = {
      ...(parsed.uid !== undefined ? { uid: parsed.uid } : {}),
      written: parsed.written,
      source: 'image',
      root: parsed.uid === undefined ? undefined : parsed.uid === 0,
      nonRootEnforced,
    };
  }
  if (nonRootEnforced && result.root === true)
    result.refusedByKubelet = `runAsNonRoot is set and it would run as root (uid 0, from the ${result.source})`;
  else if (nonRootEnforced && result.root === undefined)
    result.refusedByKubelet = `runAsNonRoot is set and the image's user "${result.written}" is a name the kubelet cannot check is not root`;
  return result;
}

/** How it reads in a status or a message: "uid 1000 (image)", "root (pod securityContext)", "app, unknown (image)". */
export function describeUser(u: EffectiveUser): string {
  const who = u.root === true ? 'root' : u.uid !== undefined ? `uid ${u.uid}` : `"${u.written}", unknown`;
  return `${who} (${u.source})`;
}
