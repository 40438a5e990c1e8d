/**
 * Every joi schema of the contract, compiled once and shared by REST and realtime edges.
 * `validate` returns the converted value (trimmed strings, defaults) or throws one
 * VALIDATION_ERROR whose details name every bad field.
 */
import Joi from 'joi';
import { AppError, type ErrorCode } from '../errors';

export const LIMITS = {
  sessionName: 100,
  participantName: 50,
  message: 500,
  minUsers: 2,
  maxUsers: 12,
  defaultUsers: 6,
  historyDefault: 50,
  historyMax: 100,
} as const;

/**
 * The largest seq and message id the database holds (PostgreSQL `integer`): a number past it
 * in a request names nothing, and would fail the query (int4 overflow) instead of finding nothing.
 */
export const MAX_STORED_NUMBER = 2_147_483_647;
/** A positive whole number the database can hold (a message id, a seq). */
export const isStoredNumber = (n: number): boolean => Number.isSafeInteger(n) && n >= 1 && n <= MAX_STORED_NUMBER;

export const USER_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
/**
 * What PostgreSQL text cannot hold: NUL, and half of a surrogate pair (it would come back as
 * U+FFFD). Both become U+FFFD before anything is stored or broadcast, so what everyone is
 * shown is exactly what history keeps, and the length does not change.
 */
// eslint-disable-next-line no-control-regex -- NUL is exactly what PostgreSQL text cannot hold
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
export const storable = (text: string): string => text.replace(UNSTORABLE, '\uFFFD');
/** Keys that name a prototype: JSON.parse makes them own keys, and joi passes over them silently. */
const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype'];

/** A trimmed string of 1 to `max` characters, made storable. */
const plainText = (max: number) =>
  Joi.string()
    .trim()
    .min(1)
    .max(max)
    .custom((value: string) => storable(value));

const participantName = plainText(LIMITS.participantName);
const userId = Joi.string().pattern(USER_ID_PATTERN).message('"user_id" must be 1-64 characters of A-Z a-z 0-9 _ -');
const token = Joi.string().max(4096);

const NOT_A_CURSOR = '"before" must be a cursor from meta.next_cursor';

export const schemas = {
  createSession: Joi.object({
    name: plainText(LIMITS.sessionName).required(),
    max_users: Joi.number().strict().integer().min(LIMITS.minUsers).max(LIMITS.maxUsers).default(LIMITS.defaultUsers),
  }).required(),

  issueToken: Joi.object({
    name: participantName.required(),
    user_id: userId,
  }).required(),

  historyQuery: Joi.object({
    limit: Joi.number().integer().min(1).max(LIMITS.historyMax).default(LIMITS.historyDefault),
    before: Joi.string()
      .pattern(/^[1-9][0-9]{0,9}$/)
      .message(NOT_A_CURSOR)
      .custom((value: string, helpers) => (isStoredNumber(Number(value)) ? value : helpers.message({ custom: NOT_A_CURSOR }))),
    after_seq: Joi.number().integer().min(0).max(MAX_STORED_NUMBER),
  }).oxor('before', 'after_seq'),

  /** POST /api/tts/generate: the existing frontend's call. */
  speak: Joi.object({
    text: plainText(LIMITS.message).required(),
    voice_id: Joi.string()
      .trim()
      .pattern(/^[A-Za-z0-9_.-]{1,100}$/)
      .message('"voice_id" must be 1-100 characters of A-Z a-z 0-9 _ . -'),
  }).required(),

  /** A join on either transport; name may be absent when a token carries the identity. */
  join: Joi.object({
    session_id: Joi.string(),
    name: participantName,
    user_id: userId,
    token,
  })
    .unknown(true)
    .required(),
};

export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && UUID_PATTERN.test(value);
}

export function validate<T>(schema: Joi.Schema, value: unknown, code: ErrorCode = 'VALIDATION_ERROR'): T {
  const problems = new Map<string, string>();
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const prototypeKeys = Object.keys(value).filter((k) => PROTOTYPE_KEYS.includes(k));
    if (prototypeKeys.length > 0) {
      // Refused like any unknown field where unknown fields are refused; dropped where they are ignored.
      if ((schema.describe().flags as { unknown?: boolean } | undefined)?.unknown === true) value = Object.fromEntries(Object.entries(value).filter(([k]) => !PROTOTYPE_KEYS.includes(k)));
      else for (const key of prototypeKeys) problems.set(key, `'${key}' is not allowed`);
    }
  }
  const outcome: Joi.ValidationResult<unknown> = schema.validate(value, { abortEarly: false, convert: true });
  const result: unknown = outcome.value;
  const error = outcome.error;
  for (const item of error?.details ?? []) {
    const field = item.path.length > 0 ? item.path.join('.') : 'body';
    if (!problems.has(field)) problems.set(field, item.message.replace(/"/g, "'"));
  }
  if (problems.size > 0) {
    throw new AppError(code, `Invalid ${[...problems.keys()].join(', ')}`, Object.fromEntries(problems));
  }
  return result as T;
}

/**
 * A chat message as the contract words it: not a string → INVALID_PAYLOAD,
 * blank after trimming → EMPTY_MESSAGE, over 500 characters → MESSAGE_TOO_LONG.
 */
export function validateChatMessage(data: unknown): string {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new AppError('INVALID_PAYLOAD', 'send_message needs an object like {"message": "..."}');
  }
  const raw = (data as { message?: unknown }).message;
  if (raw === undefined || raw === null) throw new AppError('EMPTY_MESSAGE', 'The message is empty');
  if (typeof raw !== 'string') throw new AppError('INVALID_PAYLOAD', '"message" must be a string');
  const text = raw.trim();
  if (text.length === 0) throw new AppError('EMPTY_MESSAGE', 'The message is empty');
  if (text.length > LIMITS.message) {
    throw new AppError('MESSAGE_TOO_LONG', `The message is longer than ${LIMITS.message} characters`);
  }
  return storable(text);
}
