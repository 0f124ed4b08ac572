// Pieces every provider uses: the correlation id, substitutions into user templates, and
// JSON calls to build services with their errors classified (runtime/json-call.ts).
import { createHash } from 'node:crypto';
import { callService, ServiceError, type JsonCall, type JsonResponse } from '../runtime/json-call.ts';

// The providers' view of the shared JSON call.
export { describe, type JsonResponse } from '../runtime/json-call.ts';
import { BuildError, type BuildRequest, type ProviderCredentials } from './types.ts';

/** pl + 16 hex digits of sha256(trigger uid, revision, attempt): the same for every retry of one attempt. */
export function correlationId(triggerUid: string, revision: string, attempt: number): string {
  return `pl${createHash('sha256').update(`${triggerUid}\u0000${revision}\u0000${attempt}`).digest('hex').slice(0, 16)}`;
}

export function variables(req: BuildRequest, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'base.image': req.base.image,
    'base.digest': req.base.digest,
    'base.ref': req.base.ref,
    'target.image': req.target.image,
    'build.id': req.correlationId,
    'build.attempt': String(req.attempt),
    'trigger.name': req.trigger.name,
    'trigger.namespace': req.trigger.namespace,
    ...extra,
  };
}

/**
 * Replaces $(name) for the known variables only: other $(...) are left as they are, since
 * they may belong to the build system (Tekton's $(params.x), a shell's $(cmd)).
 */
export function substitute(template: string, vars: Record<string, string>): string {
  return template.replace(/\$\(([a-zA-Z][a-zA-Z0-9.]*)\)/g, (whole, name: string) => vars[name] ?? whole);
}

/** Substitutes inside every string of a JSON value, keeping its structure (so values need no escaping). */
export function substituteJson(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === 'string') return substitute(value, vars);
  if (Array.isArray(value)) return value.map((v) => substituteJson(v, vars));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteJson(v, vars)]));
  }
  return value;
}

export function substituteMap(
  map: Readonly<Record<string, string>> | undefined,
  vars: Record<string, string>,
): Record<string, string> {
  return Object.fromEntries(Object.entries(map ?? {}).map(([k, v]) => [k, substitute(v, vars)]));
}

/** A call to a build service: a neutral service error becomes a BuildError the providers know. */
export async function callJson(url: string, call: JsonCall): Promise<JsonResponse> {
  try {
    return await callService(url, call);
  } catch (err) {
    if (err instanceof ServiceError && !(err instanceof BuildError))
      throw new BuildError(err.kind, err.message, {
        ...(err.status !== undefined ? { status: err.status } : {}),
        ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
        cause: err.cause ?? err,
      });
    throw err;
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** A key the provider cannot work without, from the credentials Secret; a refusal naming it otherwise. */
export function requiredCredential(credentials: ProviderCredentials, key: string, provider: string): string {
  const value = credentials?.[key];
  if (!value) throw new BuildError('rejected', `${provider} needs a ${key} in the credentials Secret (key "${key}")`);
  return value;
}
