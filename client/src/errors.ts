import type { EventErrorCode, JoinRefusalCode } from './events';

/**
 * What went wrong, as a value an application can switch on:
 * - `refused`: the server refused the join (`code` is a JoinRefusalCode); the room is closed.
 * - `rejected`: the server refused a `send` (`code` is an EventErrorCode); nothing was stored.
 * - `timeout`: no answer in time; the message may still have been stored (watch `message`).
 * - `closed`: the room was closed (by `close()`, `leave()` or the session's end) first.
 */
export type SeanceErrorKind = 'refused' | 'rejected' | 'timeout' | 'closed';
export type SeanceErrorCode = JoinRefusalCode | EventErrorCode | 'TIMEOUT' | 'CLOSED';

export class SeanceError extends Error {
  constructor(
    readonly kind: SeanceErrorKind,
    readonly code: SeanceErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SeanceError';
  }
}
