/**
 * The contract's input rules, restated independently of the server, so the fuzz suite knows
 * what each generated input should get: accepted, refused with one of some codes, or either
 * (where the contract leaves room: NUL and lone surrogates PostgreSQL cannot store, or a
 * length that is in range counted in code points but not in UTF-16 units). Also the checks
 * every reply must pass: the envelope, and no stack, path or SQL leaking out.
 */
import path from 'node:path';

export type Verdict = { kind: 'accept' } | { kind: 'reject'; codes: string[] } | { kind: 'either'; codes: string[] };

/** Collects what is wrong with one input, then turns it into a verdict. */
class Problems {
  private readonly hard = new Set<string>();
  private readonly soft = new Set<string>();

  add(code: string, certain = true): void {
    (certain ? this.hard : this.soft).add(code);
  }

  verdict(): Verdict {
    if (this.hard.size > 0) return { kind: 'reject', codes: [...this.hard, ...this.soft] };
    if (this.soft.size > 0) return { kind: 'either', codes: [...this.soft] };
    return { kind: 'accept' };
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** PostgreSQL text holds neither NUL nor lone surrogates: a server may store or refuse them. */
export function storable(text: string): boolean {
  return !text.includes('\u0000') && !LONE_SURROGATE.test(text);
}

/**
 * What a stored text can be compared with. Séance's documented choice (docs/protocol.md): NUL and
 * lone surrogates become U+FFFD, one for one, before anything is stored or broadcast.
 */
export function normalizeStored(text: string): string {
  // eslint-disable-next-line no-control-regex -- NUL is exactly what PostgreSQL text cannot hold
  return Buffer.from(text.replace(/\u0000/g, '\uFFFD'), 'utf8').toString('utf8');
}

/** 'ok', 'bad', or 'ambiguous' when only one way of counting "characters" puts it in range. */
function lengthIn(text: string, min: number, max: number): 'ok' | 'bad' | 'ambiguous' {
  const units = text.length;
  const points = [...text].length;
  const unitsOk = units >= min && units <= max;
  const pointsOk = points >= min && points <= max;
  if (unitsOk && pointsOk) return 'ok';
  if (unitsOk || pointsOk) return 'ambiguous';
  return 'bad';
}

function checkText(problems: Problems, value: string, min: number, max: number, code: string, tooLong = code): void {
  const text = value.trim();
  const length = lengthIn(text, min, max);
  if (text.length === 0 && min > 0) problems.add(code);
  else if (length === 'bad') problems.add(text.length > max ? tooLong : code);
  else if (length === 'ambiguous') problems.add(tooLong, false);
  if (!storable(text)) problems.add(code, false);
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) && !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer);

/** `send_message` data on either transport. */
export function chatVerdict(data: unknown): Verdict {
  const p = new Problems();
  if (!isPlainObject(data)) {
    // A binary blob is an "object" to Socket.IO: missing message or bad payload are both fair.
    p.add('INVALID_PAYLOAD');
    if (data !== null && typeof data === 'object') p.add('EMPTY_MESSAGE');
    return p.verdict();
  }
  const raw = data.message;
  if (raw === undefined || raw === null) {
    p.add('EMPTY_MESSAGE');
    p.add('INVALID_PAYLOAD');
  } else if (typeof raw !== 'string') {
    p.add('INVALID_PAYLOAD');
  } else {
    const text = raw.trim();
    if (text.length === 0) p.add('EMPTY_MESSAGE');
    else checkText(p, text, 1, 500, 'INVALID_PAYLOAD', 'MESSAGE_TOO_LONG');
    if (!storable(text)) p.add('EMPTY_MESSAGE', false);
  }
  return p.verdict();
}

export type SessionState = 'active' | 'inactive' | 'missing';

export interface JoinContext {
  /** Socket.IO: the session comes from `auth.session_id`, which is then required. */
  socketAuth: boolean;
  sessionState(id: unknown): SessionState;
  /** Raw path: the session named by the URL. */
  pathSession?: SessionState;
  queryToken?: string;
  isValidAccessToken(token: string): boolean;
}

/** A join body: Socket.IO `auth`, or the identity carried by the first raw frame. */
export function joinVerdict(body: unknown, ctx: JoinContext): Verdict {
  const p = new Problems();
  // `{"event": "join_session", "data": null}` carries no identity at all: refusing it as malformed is fair.
  if (body === null) p.add('VALIDATION_ERROR', false);
  const obj = body === undefined || body === null ? {} : body;
  if (!isPlainObject(obj)) {
    p.add('VALIDATION_ERROR');
    if (ctx.socketAuth) return p.verdict();
  }
  const fields = isPlainObject(obj) ? obj : {};
  const sessionId = fields.session_id;
  if (ctx.socketAuth && sessionId === undefined) p.add('VALIDATION_ERROR');
  if (sessionId !== undefined && (typeof sessionId !== 'string' || sessionId === '')) p.add('VALIDATION_ERROR', ctx.socketAuth);

  if (fields.name !== undefined) {
    if (typeof fields.name !== 'string') p.add('VALIDATION_ERROR');
    else checkText(p, fields.name, 1, 50, 'VALIDATION_ERROR');
  }
  if (fields.user_id !== undefined && (typeof fields.user_id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(fields.user_id))) {
    p.add('VALIDATION_ERROR');
  }
  const token = fields.token !== undefined ? fields.token : ctx.queryToken;
  if (token !== undefined) {
    if (typeof token !== 'string' || !ctx.isValidAccessToken(token)) {
      p.add('UNAUTHORIZED');
      // A token too long or not a string may be refused as malformed input instead.
      if (typeof token !== 'string' || token.length === 0 || token.length > 4096) p.add('VALIDATION_ERROR');
    }
  } else if (typeof fields.name !== 'string') {
    p.add('VALIDATION_ERROR');
  }

  const state = ctx.socketAuth ? ctx.sessionState(sessionId) : ctx.pathSession!;
  if (state === 'missing') p.add('SESSION_NOT_FOUND');
  if (state === 'inactive') p.add('SESSION_INACTIVE');
  return p.verdict();
}

/** The first raw frame: `{user_id?, name, token?}` or `{event: "join_session", data}`. */
export function firstFrameBody(frame: Record<string, unknown>): { body: unknown } | null {
  if (!Object.prototype.hasOwnProperty.call(frame, 'event')) return { body: frame };
  if (frame.event === 'join_session') return { body: frame.data };
  return null;
}

function onlyKeys(p: Problems, body: Record<string, unknown>, allowed: string[]): void {
  for (const key of Object.keys(body)) if (!allowed.includes(key)) p.add('VALIDATION_ERROR');
}

/** POST /api/sessions with a parsed JSON body. */
export function createSessionVerdict(body: unknown): Verdict {
  const p = new Problems();
  if (!isPlainObject(body)) {
    p.add('VALIDATION_ERROR');
    return p.verdict();
  }
  onlyKeys(p, body, ['name', 'max_users']);
  if (typeof body.name !== 'string') p.add('VALIDATION_ERROR');
  else checkText(p, body.name, 1, 100, 'VALIDATION_ERROR');
  const max = body.max_users;
  if (max !== undefined && !(typeof max === 'number' && Number.isSafeInteger(max) && max >= 2 && max <= 12)) p.add('VALIDATION_ERROR');
  return p.verdict();
}

/** POST /api/auth/token with a parsed JSON body. */
export function tokenVerdict(body: unknown): Verdict {
  const p = new Problems();
  if (!isPlainObject(body)) {
    p.add('VALIDATION_ERROR');
    return p.verdict();
  }
  onlyKeys(p, body, ['name', 'user_id']);
  if (typeof body.name !== 'string') p.add('VALIDATION_ERROR');
  else checkText(p, body.name, 1, 50, 'VALIDATION_ERROR');
  const id = body.user_id;
  if (id !== undefined && !(typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id))) p.add('VALIDATION_ERROR');
  // The server chooses the id; one named in the body is a refresh, which needs a token of that
  // id (the fuzzer never has one: its guests' ids are the server's own).
  if (id !== undefined) p.add('FORBIDDEN');
  return p.verdict();
}

/** The REST status of each error code (docs/protocol.md: REST). */
export const STATUS_OF_CODE: Record<string, number> = {
  VALIDATION_ERROR: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  SESSION_FULL: 409,
  SESSION_INACTIVE: 410,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
};

/** Codes an `error` event may carry in answer to bad client input (INTERNAL_ERROR is a server fault). */
export const REALTIME_INPUT_CODES = new Set(['EMPTY_MESSAGE', 'MESSAGE_TOO_LONG', 'INVALID_PAYLOAD', 'UNKNOWN_EVENT']);
export const JOIN_REFUSAL_CODES = new Set(['VALIDATION_ERROR', 'SESSION_NOT_FOUND', 'SESSION_INACTIVE', 'SESSION_FULL', 'UNAUTHORIZED', 'USER_ID_TAKEN']);
/**
 * Refusals that depend on who is connected, which the fuzzer does not track: a full session,
 * and a `user_id` an earlier join of the same run still holds. Any join may meet them.
 */
export const STATE_REFUSAL_CODES = new Set(['SESSION_FULL', 'USER_ID_TAKEN']);
export const WS_CLOSE_OF_CODE: Record<string, number> = {
  VALIDATION_ERROR: 4000,
  UNAUTHORIZED: 4001,
  SESSION_NOT_FOUND: 4004,
  SESSION_FULL: 4009,
  SESSION_INACTIVE: 4010,
  USER_ID_TAKEN: 4409,
};

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const LEAK_PATTERNS: RegExp[] = [
  /\n\s*at [^\n]*[:(][^\n]*\d+:\d+/,
  /\bat (?:async )?[\w$.<>]+ \([^)]*:\d+:\d+\)/,
  /node_modules/,
  new RegExp(PROJECT_ROOT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
  /dist\/server|server\/[\w/]+\.ts/,
  /\.(?:js|ts):\d+:\d+/,
  /Sequelize[A-Z]?\w*Error/,
  /SequelizeDatabaseError|SQLSTATE|syntax error at or near|invalid byte sequence|invalid input syntax|violates [\w ]*constraint|value out of range|relation "|column "/i,
  /(?:SELECT|INSERT INTO|UPDATE|DELETE FROM) "\w+"/,
  /\b(?:TypeError|ReferenceError|RangeError|SyntaxError: Unexpected token|Maximum call stack|Cannot read propert|is not a function|ECONNREFUSED|ERR_[A-Z_]{4,})/,
];

/** Fragments of `text` that look like a stack, a file path or SQL and were not in our own input. */
export function leaks(text: string, input: string): string[] {
  const found: string[] = [];
  for (const pattern of LEAK_PATTERNS) {
    const m = pattern.exec(text);
    if (m && !input.includes(m[0])) found.push(m[0].slice(0, 120));
  }
  return found;
}

/** Problems with a REST reply's envelope; [] when it is right. */
export function envelopeProblems(status: number, body: any, requestIdHeader: string | null): string[] {
  const problems: string[] = [];
  if (body === undefined || body === null || typeof body !== 'object') return [`status ${status} without a JSON envelope`];
  if (!body.meta || typeof body.meta.timestamp !== 'string' || typeof body.meta.request_id !== 'string') problems.push('envelope without meta.timestamp/request_id');
  else if (requestIdHeader && body.meta.request_id !== requestIdHeader) problems.push('meta.request_id differs from X-Request-Id');
  if (status >= 400) {
    if (body.success !== false) problems.push(`status ${status} but success is ${JSON.stringify(body.success)}`);
    const code = body.error?.code;
    if (typeof code !== 'string' || !(code in STATUS_OF_CODE)) problems.push(`unknown error code ${JSON.stringify(code)}`);
    else if (STATUS_OF_CODE[code] !== status) problems.push(`code ${code} with status ${status}`);
    if (typeof body.error?.message !== 'string') problems.push('error without a message');
  } else if (body.success !== true || !('data' in body)) {
    problems.push(`status ${status} but success is ${JSON.stringify(body.success)}`);
  }
  return problems;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Problems with one history message; [] when it is a valid stored message. */
export function historyMessageProblems(m: any, sessionId: string): string[] {
  const problems: string[] = [];
  if (!m || typeof m !== 'object') return ['not an object'];
  if (m.session_id !== sessionId) problems.push('wrong session_id');
  if (typeof m.id !== 'number' && typeof m.id !== 'string') problems.push('no id');
  if (typeof m.timestamp !== 'string' || !ISO.test(m.timestamp)) problems.push('bad timestamp');
  if (typeof m.message !== 'string' || m.message.length === 0) problems.push('empty or non-string message');
  else if (m.message !== m.message.trim()) problems.push('message not trimmed');
  if (m.is_spirit === true) {
    if (m.user_name !== null || m.user_id !== null) problems.push('spirit message with a user');
  } else if (m.is_spirit === false) {
    if (typeof m.message === 'string' && m.message.length > 500) problems.push(`message of ${m.message.length} characters`);
    if (typeof m.user_name !== 'string' || m.user_name.trim().length === 0 || m.user_name.length > 50 || m.user_name !== m.user_name.trim()) {
      problems.push(`bad user_name ${JSON.stringify(m.user_name)?.slice(0, 80)}`);
    }
    if (typeof m.user_id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(m.user_id)) problems.push(`bad user_id ${JSON.stringify(m.user_id)?.slice(0, 80)}`);
  } else {
    problems.push('is_spirit is not a boolean');
  }
  return problems;
}
