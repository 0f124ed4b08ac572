// Errors from registries, classified so that callers can decide: retry later
// (unavailable, rate limited, timeout), fix credentials (unauthorized, denied), fix the
// reference (not found), or report a broken registry (invalid response, too large).
// Messages name the registry and repository, never a credential.

export type RegistryErrorCode =
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'NOT_FOUND'
  | 'RATE_LIMITED'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'INVALID_RESPONSE'
  | 'TOO_LARGE'
  | 'UNSUPPORTED';

export class RegistryError extends Error {
  readonly code: RegistryErrorCode;
  readonly registry: string;
  readonly status: number | undefined;
  /** For RATE_LIMITED: how long the registry asked to wait. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: RegistryErrorCode,
    registry: string,
    message: string,
    options: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(`${registry}: ${message}`, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'RegistryError';
    this.code = code;
    this.registry = registry;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** Worth retrying later without any change on our side. */
  get transient(): boolean {
    return this.code === 'UNAVAILABLE' || this.code === 'TIMEOUT' || this.code === 'RATE_LIMITED';
  }
}

/**
 * Content a registry served does not hash to the digest it was asked for (or claimed): a
 * broken or tampered registry, proxy or cache. Distinct from other invalid responses because
 * a check of what the registry serves for a digest reports it rather than retrying.
 */
export class DigestMismatchError extends RegistryError {
  readonly expected: string;
  readonly computed: string;

  constructor(registry: string, what: string, expected: string, computed: string) {
    super('INVALID_RESPONSE', registry, `${what} does not match its digest ${expected}`);
    this.name = 'DigestMismatchError';
    this.expected = expected;
    this.computed = computed;
  }
}

export function isRegistryError(err: unknown, code?: RegistryErrorCode): err is RegistryError {
  return err instanceof RegistryError && (code === undefined || err.code === code);
}
