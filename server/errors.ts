/**
 * One error type for the whole server. Services throw `AppError` with a domain code; the
 * edges (HTTP, Socket.IO, raw ws) translate the code with the maps below. Services know
 * nothing of HTTP status or close codes.
 */
export type ErrorCode =
  | 'VALIDATION_ERROR'
  | 'NOT_FOUND'
  | 'SESSION_NOT_FOUND'
  | 'SESSION_INACTIVE'
  | 'SESSION_FULL'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'PAYLOAD_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'EMPTY_MESSAGE'
  | 'MESSAGE_TOO_LONG'
  | 'INVALID_PAYLOAD'
  | 'UNKNOWN_EVENT'
  | 'SPIRIT_ERROR'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_ERROR';

export class AppError extends Error {
  constructor(
    public readonly code: ErrorCode,
    message: string,
    public readonly details?: Record<string, unknown>,
    /** Seconds a client should wait before retrying (RATE_LIMITED). */
    public readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const HTTP_STATUS: Record<ErrorCode, number> = {
  VALIDATION_ERROR: 400,
  INVALID_PAYLOAD: 400,
  EMPTY_MESSAGE: 400,
  MESSAGE_TOO_LONG: 400,
  UNKNOWN_EVENT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  SESSION_FULL: 409,
  SESSION_INACTIVE: 410,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  SPIRIT_ERROR: 502,
  SERVICE_UNAVAILABLE: 503,
};

/** Close codes of a refused raw WebSocket join (CONTRACT: Raw WebSocket). */
export const WS_CLOSE_CODE: Partial<Record<ErrorCode, number>> = {
  VALIDATION_ERROR: 4000,
  UNAUTHORIZED: 4001,
  SESSION_NOT_FOUND: 4004,
  SESSION_FULL: 4009,
  SESSION_INACTIVE: 4010,
  RATE_LIMITED: 4029,
  INTERNAL_ERROR: 1011,
  SERVICE_UNAVAILABLE: 1013,
};
export const WS_CLOSE_JOIN_TIMEOUT = 4008;

/** What a client may see of any error: unknown errors become INTERNAL_ERROR, never a stack or SQL. */
export function toPublicError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  return new AppError('INTERNAL_ERROR', 'Something went wrong on our side');
}
