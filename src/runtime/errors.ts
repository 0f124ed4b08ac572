// One error type for every failed API call, whichever client made it. client-node throws
// ApiException with a numeric `code` and the Status body as a JSON string; our own HTTP
// calls throw KubeApiError directly. Callers test with the is* helpers below.
import type { StatusBody } from './kube-types.ts';

export class KubeApiError extends Error {
  readonly code: number;
  readonly reason: string;

  constructor(code: number, reason: string, message: string) {
    super(message);
    this.name = 'KubeApiError';
    this.code = code;
    this.reason = reason;
  }

  static fromStatus(code: number, body: StatusBody | undefined, fallback: string): KubeApiError {
    const reason = body?.reason ?? reasonForCode(code);
    const message = body?.message ?? fallback;
    return new KubeApiError(body?.code ?? code, reason, `${reason} (${code}): ${message}`);
  }
}

function reasonForCode(code: number): string {
  switch (code) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'NotFound';
    case 409:
      return 'Conflict';
    case 410:
      return 'Expired';
    case 422:
      return 'Invalid';
    case 429:
      return 'TooManyRequests';
    default:
      return code >= 500 ? 'InternalError' : 'Unknown';
  }
}

/** The API server's Status from a response body (string or parsed); plain text becomes the message. */
export function parseStatusBody(body: unknown): StatusBody | undefined {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return { message: body.slice(0, 512) };
    }
  }
  if (body && typeof body === 'object') return body;
  return undefined;
}

/** Normalises anything thrown by an API call. Non-HTTP errors are returned unchanged. */
export function toKubeError(err: unknown): Error {
  if (err instanceof KubeApiError) return err;
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'number' && 'body' in err) {
    // client-node ApiException
    return KubeApiError.fromStatus(err.code, parseStatusBody(err.body), `HTTP ${err.code}`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

function codeOf(err: unknown): number | undefined {
  const e = toKubeError(err);
  return e instanceof KubeApiError ? e.code : undefined;
}

export const isNotFound = (err: unknown): boolean => codeOf(err) === 404;
export const isConflict = (err: unknown): boolean => codeOf(err) === 409;
export const isForbidden = (err: unknown): boolean => codeOf(err) === 403;
export const isGone = (err: unknown): boolean => codeOf(err) === 410;
export const isAlreadyExists = (err: unknown): boolean => {
  const e = toKubeError(err);
  return e instanceof KubeApiError && e.code === 409 && e.reason === 'AlreadyExists';
};

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
