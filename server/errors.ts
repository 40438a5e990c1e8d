/**
 * One error type for the whole server. Services throw `AppError` with a domain code; the
 * edges (HTTP, Socket.IO, raw ws) translate the code with the maps below. Services know
 * nothing of HTTP status or close codes.
 */
import { RAW_CLOSE_CODES, RAW_CLOSE_JOIN_TIMEOUT } from './events';

export type ErrorCode =
  | 'VALIDATION_ERROR'
  | 'NOT_FOUND'
  | 'SESSION_NOT_FOUND'
  | 'SESSION_INACTIVE'
  | 'SESSION_FULL'
  | 'USER_ID_TAKEN'
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
  USER_ID_TAKEN: 409,
  SESSION_INACTIVE: 410,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  SPIRIT_ERROR: 502,
  SERVICE_UNAVAILABLE: 503,
};

/**
 * Close codes of a refused raw WebSocket join (docs/protocol.md: Joining): the wire's own, as
 * the client package defines them, plus the two a node uses for its own troubles.
 */
export const WS_CLOSE_CODE: Partial<Record<ErrorCode, number>> = {
  ...RAW_CLOSE_CODES,
  INTERNAL_ERROR: 1011,
  SERVICE_UNAVAILABLE: 1013,
};
export const WS_CLOSE_JOIN_TIMEOUT = RAW_CLOSE_JOIN_TIMEOUT;

/**
 * SQLSTATEs of a database going away rather than of a bad statement: class 08 (connection
 * exceptions) and 57P0x (shutdowns, a dropped database, an idle session ended by the server).
 */
export function isConnectionSqlState(code: unknown): boolean {
  return typeof code === 'string' && /^(08...|57P0[0-9])$/.test(code);
}

/** Sequelize's names for "could not reach the database". */
const DB_CONNECTION_ERRORS = new Set([
  'SequelizeConnectionError',
  'SequelizeConnectionRefusedError',
  'SequelizeConnectionAcquireTimeoutError',
  'SequelizeHostNotFoundError',
  'SequelizeHostNotReachableError',
  'SequelizeConnectionTimedOutError',
]);
/** Node's socket errors, as pg and ioredis pass them on. */
const SOCKET_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);
/** What pg and ioredis say when their connection is gone (they give no code for these). */
const GONE_MESSAGE = /Connection terminated|not queryable|Connection is closed|enableOfflineQueue|max retries per request|Client has encountered a connection error/i;

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  parent?: ErrorLike;
}

/**
 * True when an error means "the database or Redis cannot be reached right now" rather than a
 * bug: every edge answers SERVICE_UNAVAILABLE, and the request may succeed once it is back.
 */
export function isDependencyUnavailable(err: unknown): boolean {
  const e = err as ErrorLike | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.name === 'string' && DB_CONNECTION_ERRORS.has(e.name)) return true;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  for (const candidate of [e, e.parent]) {
    if (!candidate) continue;
    if (isConnectionSqlState(candidate.code) || SOCKET_ERRNOS.has(candidate.code as string)) return true;
    if (typeof candidate.message === 'string' && GONE_MESSAGE.test(candidate.message)) return true;
  }
  return false;
}

const UNAVAILABLE = 'A service this server needs is unavailable; try again shortly';

/**
 * The one classifier every edge uses (REST, Socket.IO, raw ws): an AppError stays itself, an
 * outage of the database or Redis becomes SERVICE_UNAVAILABLE, anything else INTERNAL_ERROR,
 * never with a stack or SQL in the reply.
 */
export function classifyError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isDependencyUnavailable(err)) return new AppError('SERVICE_UNAVAILABLE', UNAVAILABLE);
  return new AppError('INTERNAL_ERROR', 'Something went wrong on our side');
}

/** Whether the edge should log the error (the client's own mistakes are not logged as failures). */
export const isServerFault = (error: AppError) => error.code === 'INTERNAL_ERROR' || error.code === 'SERVICE_UNAVAILABLE';
