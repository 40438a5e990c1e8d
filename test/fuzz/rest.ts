/**
 * The HTTP surfaces: REST bodies, paths, queries and headers through a real HTTP client;
 * requests too broken for a client, written to a TCP socket; and Engine.IO long-polling
 * requests with junk in them.
 */
import querystring from 'node:querystring';
import { describe, pool, rawHttp, type RawReply, type RawRequest } from './drivers';
import {
  authorizationHeader,
  deepArrayText,
  deepObjectText,
  EDGE_STRINGS,
  encodeSegment,
  headerSafe,
  junkObject,
  junkString,
  junkValue,
  longString,
  malformedJsonText,
  NUMBERS,
  pollutionPayload,
  randomString,
  seededUuid,
  setOwn,
  type Rng,
} from './generators';
import { STATUS_OF_CODE, createSessionVerdict, envelopeProblems, historyMessageProblems, leaks, normalizeStored, tokenVerdict, type Verdict } from './reference';
import { realSessions, sessionState, type World } from './world';

const BODY_LIMIT = 16 * 1024;
const SAFE_REQUEST_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface RestCase {
  kind: string;
  req: RawRequest;
  /** Readable form of the body for reports. */
  bodyText?: string;
  /** Everything we sent, so that our own input echoed back is not mistaken for a leak. */
  echo: string;
  /** The reply must wear the /api envelope. */
  envelope: boolean;
  expect(reply: RawReply): string[];
}

function statusIn(reply: RawReply, allowed: number[]): string[] {
  return allowed.includes(reply.status) ? [] : [`status ${reply.status}, expected ${allowed.join(' or ')}: ${reply.text.slice(0, 160)}`];
}

function commonHeaders(rng: Rng, world: World): Record<string, string> {
  const h: Record<string, string> = {};
  if (rng.bool(0.3)) h['x-request-id'] = headerSafe(rng.bool(0.4) ? `req-${rng.int(0, 1e9)}` : junkString(rng, 300));
  if (rng.bool(0.15)) {
    const auth = authorizationHeader(rng, world.kit);
    if (auth !== undefined) h.authorization = headerSafe(auth);
  }
  if (rng.bool(0.1)) h.origin = headerSafe(rng.pick(['http://evil.example', 'null', 'http://localhost:3000', junkString(rng, 100)]));
  if (rng.bool(0.1)) h.accept = headerSafe(rng.pick(['text/html', '*/*', 'application/xml', junkString(rng, 50)]));
  if (rng.bool(0.05)) h['x-forwarded-for'] = headerSafe(rng.pick(['1.2.3.4', 'junk', '::1, 10.0.0.1', '999.999.999.999', junkString(rng, 100)]));
  if (rng.bool(0.05)) h.cookie = headerSafe(junkString(rng, 500));
  if (rng.bool(0.03)) h['accept-encoding'] = headerSafe(junkString(rng, 40));
  return h;
}

// --- bodies ---------------------------------------------------------------------------------

const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'application/json;charset=UTF-8'];
const MAYBE_JSON_TYPES = [
  'APPLICATION/JSON',
  'application/json; charset="utf-8"',
  'application/json ; charset=utf-8',
  'application/json; charset=utf-16le',
  'application/json; charset=latin1',
  'application/json; charset=bogus',
  'application/json, text/plain',
];
const NOT_JSON_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=zz',
  'application/vnd.api+json',
  'text/html; charset=utf-8',
  'application/octet-stream',
  '*/*',
];

function sessionBody(rng: Rng): unknown {
  return rng.choose<unknown>([
    [
      30,
      () => {
        const o: Record<string, unknown> = {};
        if (rng.bool(0.85))
          setOwn(
            o,
            'name',
            rng.choose<unknown>([
              [40, () => `Séance ${rng.int(0, 1e6)}`],
              [45, () => junkString(rng, 30_000)],
              [15, () => junkValue(rng, 1)],
            ]),
          );
        if (rng.bool(0.5))
          setOwn(
            o,
            'max_users',
            rng.choose<unknown>([
              [30, () => rng.int(2, 12)],
              [40, () => rng.pick(NUMBERS)],
              [30, () => junkValue(rng, 1)],
            ]),
          );
        if (rng.bool(0.25)) for (const [k, v] of Object.entries(junkObject(rng, 1))) setOwn(o, k, v);
        if (rng.bool(0.1)) for (const [k, v] of Object.entries(pollutionPayload(rng))) setOwn(o, k, v);
        return o;
      },
    ],
    [6, () => junkValue(rng)],
    [6, () => junkObject(rng)],
  ]);
}

function tokenBody(rng: Rng): unknown {
  return rng.choose<unknown>([
    [
      30,
      () => {
        const o: Record<string, unknown> = {};
        if (rng.bool(0.85))
          setOwn(
            o,
            'name',
            rng.choose<unknown>([
              [40, () => `Guest ${rng.int(0, 1e6)}`],
              [45, () => junkString(rng, 3000)],
              [15, () => junkValue(rng, 1)],
            ]),
          );
        if (rng.bool(0.6)) {
          setOwn(
            o,
            'user_id',
            rng.choose<unknown>([
              [30, () => `u-${rng.int(0, 1e9)}`],
              [40, () => junkString(rng, 200)],
              [15, () => junkValue(rng, 1)],
              [15, () => 'a'.repeat(rng.pick([63, 64, 65]))],
            ]),
          );
        }
        if (rng.bool(0.2)) for (const [k, v] of Object.entries(junkObject(rng, 1))) setOwn(o, k, v);
        if (rng.bool(0.1)) for (const [k, v] of Object.entries(pollutionPayload(rng))) setOwn(o, k, v);
        return o;
      },
    ],
    [6, () => junkValue(rng)],
    [6, () => junkObject(rng)],
  ]);
}

interface GeneratedBody {
  bytes: Buffer;
  /** What the server decodes the bytes to (for a JSON body). */
  text: string;
  contentType: string | undefined;
  bucket: 'json' | 'maybe' | 'not';
}

function makeBody(rng: Rng, like: () => unknown): GeneratedBody {
  let text = rng.choose<string>([
    [60, () => JSON.stringify(like()) ?? 'null'],
    [20, () => malformedJsonText(rng, like)],
    [6, () => JSON.stringify({ name: longString(rng, rng.pick([16_300, 16_370, 16_400, 20_000, 1_000_000])) })],
    [6, () => (rng.bool() ? deepArrayText(rng.pick([1000, 5000, 8000, 10_000])) : deepObjectText(rng.pick([1000, 3000, 5000])))],
    [4, () => JSON.stringify(pollutionPayload(rng))],
    [3, () => '\uFEFF' + (JSON.stringify(like()) ?? 'null')],
  ]);
  const bucket = rng.choose<GeneratedBody['bucket']>([
    [75, () => 'json'],
    [13, () => 'maybe'],
    [12, () => 'not'],
  ]);
  const contentType = bucket === 'json' ? rng.pick(JSON_TYPES) : bucket === 'maybe' ? rng.pick(MAYBE_JSON_TYPES) : rng.bool(0.2) ? undefined : rng.pick(NOT_JSON_TYPES);
  let bytes = contentType?.includes('utf-16le') ? Buffer.from(text, 'utf16le') : Buffer.from(text, 'utf8');
  if (rng.bool(0.03)) {
    bytes = Buffer.from(Array.from({ length: rng.int(1, 300) }, () => rng.int(0, 255)));
    text = bytes.toString('utf8');
  }
  return { bytes, text, contentType, bucket };
}

/** Statuses a JSON body may get, from the contract's rules over what the server will parse. */
function jsonBodyStatuses(body: GeneratedBody, verdictOf: (value: unknown) => Verdict): Set<number> {
  const allowed = new Set<number>();
  if (body.bucket !== 'json') allowed.add(400).add(413);
  if (body.bucket === 'not') return allowed;
  if (body.bytes.length > BODY_LIMIT) return allowed.add(413);
  let text = body.text;
  if (text.startsWith('\uFEFF')) {
    // A decoder may drop a byte-order mark (RFC 8259 lets parsers ignore it) or refuse it.
    text = text.slice(1);
    allowed.add(400);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return allowed.add(400);
  }
  if (parsed === null || typeof parsed !== 'object') return allowed.add(400);
  const verdict = verdictOf(parsed);
  if (verdict.kind !== 'reject') allowed.add(201);
  if (verdict.kind !== 'accept') for (const code of verdict.codes) allowed.add(STATUS_OF_CODE[code] ?? 400);
  return allowed;
}

function parsedOrNull(text: string): any {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch {
    return null;
  }
}

function createCase(rng: Rng, world: World, kind: 'create' | 'token'): RestCase {
  const body = makeBody(rng, () => (kind === 'create' ? sessionBody(rng) : tokenBody(rng)));
  return bodyCase(kind, body, commonHeaders(rng, world));
}

/** A POST of `body` to /api/sessions or /api/auth/token, with what the contract says it should get. */
function bodyCase(kind: 'create' | 'token', body: GeneratedBody, headers: Record<string, string> = {}): RestCase {
  if (body.contentType !== undefined) headers['content-type'] = body.contentType;
  const allowed = [...jsonBodyStatuses(body, kind === 'create' ? createSessionVerdict : tokenVerdict)];
  const path = kind === 'create' ? '/api/sessions' : '/api/auth/token';
  return {
    kind,
    req: { method: 'POST', path, headers, body: body.bytes },
    bodyText: body.text,
    echo: `${path} ${JSON.stringify(headers)} ${body.text}`,
    envelope: true,
    expect(reply) {
      const problems = statusIn(reply, allowed);
      if (reply.status === 400) {
        // docs/protocol.md: details name every bad or unknown field, and malformed JSON.
        const details = reply.body?.error?.details;
        if (!details || typeof details !== 'object' || Object.keys(details).length === 0) problems.push(`400 whose details name no field: ${describe(reply.body?.error)}`);
      }
      if (reply.status !== 201 || problems.length > 0) return problems;
      const sent = parsedOrNull(body.text);
      const data = reply.body?.data;
      const sameName = (got: unknown) => typeof sent?.name === 'string' && (got === sent.name.trim() || got === normalizeStored(sent.name.trim()));
      if (kind === 'create') {
        if (!data || !UUID.test(data.id) || data.is_active !== true || typeof data.creator_token !== 'string') problems.push(`201 with a wrong session: ${describe(data)}`);
        else if (!sameName(data.name)) problems.push(`stored name ${describe(data.name)} differs from the input ${describe(sent?.name, 120)}`);
        else if (data.max_users !== (sent.max_users ?? 6)) problems.push(`max_users ${data.max_users} for ${describe(sent.max_users)}`);
      } else if (!data || typeof data.access_token !== 'string' || data.token_type !== 'Bearer' || !sameName(data.user?.name) || (sent.user_id !== undefined && data.user?.id !== sent.user_id)) {
        problems.push(`201 with a wrong token reply: ${describe(data)}`);
      }
      return problems;
    },
  };
}

// --- paths ----------------------------------------------------------------------------------

const RAW_SEGMENTS = [
  '../../etc/passwd',
  '..%2f..%2fetc%2fpasswd',
  '%2e%2e',
  '.',
  '..',
  "1' OR '1'='1",
  '1;DROP TABLE sessions',
  '%00',
  '%zz',
  '%',
  '%E0%A4%A',
  '%uD800',
  '*',
  '$',
  '[object Object]',
  '__proto__',
  'constructor',
  '\\..\\..\\',
  '?',
  '#',
  '',
  '//',
  ';',
  'x/participants',
  'x/history',
];

/** A session id for a path: `decoded` is what the server sees, null when the raw text may route anywhere. */
function idSegment(rng: Rng, world: World): { seg: string; decoded: string | null } {
  const real = () => rng.pick(realSessions(world));
  // An empty segment changes the route itself (/api/sessions/), so it counts as raw.
  const encoded = (s: string) => ({ seg: encodeSegment(s), decoded: s === '' ? null : Buffer.from(s, 'utf8').toString('utf8') });
  return rng.choose<{ seg: string; decoded: string | null }>([
    [25, () => encoded(junkString(rng, 5000))],
    [12, () => encoded(real())],
    [4, () => encoded(real().toUpperCase())],
    [5, () => encoded(seededUuid(rng))],
    [5, () => encoded(real() + rng.pick([' ', '\u0000', '.json', '..', 'x', '\n', '%']))],
    [4, () => encoded(rng.pick(['x'.repeat(5000), '0'.repeat(36), '00000000-0000-0000-0000-000000000000', '{' + real() + '}']))],
    [4, () => encoded(rng.pick(EDGE_STRINGS))],
    [10, () => ({ seg: rng.pick(RAW_SEGMENTS), decoded: null })],
    [5, () => ({ seg: randomString(rng, 200), decoded: null })],
  ]);
}

function sessionReadCase(rng: Rng, world: World, sub: '' | '/participants'): RestCase {
  const { seg, decoded } = idSegment(rng, world);
  const headers = commonHeaders(rng, world);
  const path = `/api/sessions/${seg}${sub}`;
  const state = decoded === null ? null : sessionState(world, decoded);
  return {
    kind: sub ? 'participants' : 'get',
    req: { method: 'GET', path, headers },
    echo: `${path} ${decoded} ${JSON.stringify(headers)}`,
    envelope: true,
    expect(reply) {
      if (state === null) return statusIn(reply, [400, 404]);
      if (state === 'missing') {
        const problems = statusIn(reply, [404]);
        if (reply.status === 404 && reply.body?.error?.code !== 'SESSION_NOT_FOUND') problems.push(`404 with code ${reply.body?.error?.code}, expected SESSION_NOT_FOUND`);
        return problems;
      }
      const problems = statusIn(reply, [200]);
      if (reply.status === 200 && !sub && (reply.body?.data?.id !== decoded!.toLowerCase() || typeof reply.body?.data?.participant_count !== 'number')) {
        problems.push(`200 with a wrong session: ${describe(reply.body?.data)}`);
      }
      if (reply.status === 200 && sub && !Array.isArray(reply.body?.data)) problems.push('participants is not an array');
      return problems;
    },
  };
}

function deleteCase(rng: Rng, world: World): RestCase {
  const { seg, decoded } = idSegment(rng, world);
  const headers = commonHeaders(rng, world);
  delete headers.authorization;
  const auth = authorizationHeader(rng, world.kit);
  if (auth !== undefined) headers.authorization = headerSafe(auth);
  const carriesToken = auth !== undefined && [...world.kit.guest, ...world.kit.creatorOfOthers].some((t) => auth.includes(t));
  const path = `/api/sessions/${seg}`;
  const state = decoded === null ? null : sessionState(world, decoded);
  let allowed: number[];
  if (state === null) allowed = [400, 401, 403, 404];
  else if (!carriesToken) allowed = [401];
  else allowed = state === 'missing' ? [401, 404] : [401, 403];
  return {
    kind: 'delete',
    req: { method: 'DELETE', path, headers },
    echo: `${path} ${decoded} ${JSON.stringify(headers)}`,
    envelope: true,
    expect(reply) {
      if (reply.status >= 200 && reply.status < 300) return [`DELETE SUCCEEDED (${reply.status}) with Authorization ${describe(auth, 200)}`];
      return statusIn(reply, allowed);
    },
  };
}

// --- history --------------------------------------------------------------------------------

const QUERY_VALUES = [
  '1',
  '50',
  '100',
  '101',
  '0',
  '-1',
  '1e2',
  '1.5',
  'abc',
  '',
  ' 5',
  '05',
  '0x10',
  '+5',
  '99999999999999999999',
  '123',
  '999999999999999',
  '1000000000000000',
  '9007199254740993',
  "1' OR 1=1",
  'null',
  'true',
  '[]',
  '%zz',
  '%',
];

function historyQuery(rng: Rng): string {
  const pairs: string[] = [];
  const count = rng.int(0, 4);
  for (let i = 0; i < count; i++) {
    const key = rng.choose<string>([
      [30, () => 'limit'],
      [22, () => 'before'],
      [10, () => rng.pick(['__proto__', 'constructor', 'toString', 'hasOwnProperty', '__proto__[limit]'])],
      [8, () => rng.pick(['limit[]', 'before[gt]', 'limit[0]', 'before[$gt]', 'LIMIT'])],
      [10, () => junkString(rng, 20)],
    ]);
    const value = rng.choose<string>([
      [50, () => rng.pick(QUERY_VALUES)],
      [20, () => junkString(rng, 200)],
      [3, () => 'x'.repeat(8000)],
    ]);
    const raw = rng.bool(0.3);
    pairs.push(raw ? `${key}=${value}` : `${encodeSegment(key)}=${encodeSegment(value)}`);
  }
  if (rng.bool(0.05)) pairs.push(rng.pick(['', '&&', '=', 'limit', '=x', '&limit=&']));
  return pairs.join('&');
}

/** Statuses a history query may get; the server decodes it with querystring.parse, as here. */
function historyStatuses(rawQuery: string): number[] {
  const q = querystring.parse(rawQuery) as Record<string, string | string[]>;
  for (const key of Object.keys(q)) if (key !== 'limit' && key !== 'before') return [400];
  let ambiguous = false;
  if ('limit' in q) {
    const limit = q.limit;
    if (Array.isArray(limit)) return [400];
    if (!/^(?:[1-9]\d?|100)$/.test(limit)) {
      const n = Number(limit);
      if (limit.trim() === '' || !Number.isInteger(n) || n < 1 || n > 100) return [400];
      ambiguous = true; // "05", "1e2", " 5": a lenient number parser may take them
    }
  }
  if ('before' in q) {
    const before = q.before;
    // A cursor is a stored id: past 2^31 - 1 it cannot be one (docs/protocol.md: a 400, never a 500).
    if (Array.isArray(before) || !/^[1-9][0-9]{0,14}$/.test(before) || Number(before) > 2147483647) return [400];
  }
  return ambiguous ? [200, 400] : [200];
}

function historyCase(rng: Rng, world: World): RestCase {
  const target = rng.bool(0.75) ? ((id) => ({ seg: encodeSegment(id), decoded: id as string | null }))(rng.pick(realSessions(world))) : idSegment(rng, world);
  const { seg, decoded: realId } = target;
  const query = historyQuery(rng);
  const headers = commonHeaders(rng, world);
  const path = `/api/sessions/${seg}/history${query || rng.bool() ? `?${query}` : ''}`;
  const state = realId === null ? null : sessionState(world, realId);
  // What the server reads: the query as sent on the wire (characters above U+00FF encoded),
  // up to a raw '#', where the fragment starts.
  const sentQuery = path.includes('?') ? path.slice(path.indexOf('?') + 1).split('#')[0] : '';
  return {
    kind: 'history',
    req: { method: 'GET', path, headers },
    echo: `${path} ${realId} ${decodeURIComponentSafe(query)} ${JSON.stringify(headers)}`,
    envelope: true,
    expect(reply) {
      if (state === null) return statusIn(reply, [400, 404]);
      if (state === 'missing') return statusIn(reply, [404]);
      const problems = statusIn(reply, historyStatuses(sendableQuery(sentQuery)));
      if (reply.status === 200) {
        const data = reply.body?.data;
        const cursor = reply.body?.meta?.next_cursor;
        if (!Array.isArray(data)) problems.push('history data is not an array');
        else for (const m of data) for (const p of historyMessageProblems(m, realId!.toLowerCase())) problems.push(`invalid message in history (${p}): ${describe(m, 160)}`);
        if (!(cursor === null || (typeof cursor === 'string' && /^[1-9]\d*$/.test(cursor)))) problems.push(`bad next_cursor ${describe(cursor)}`);
      }
      return problems;
    },
  };
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The query as it leaves the client: like drivers.sendablePath, characters above U+00FF as UTF-8 escapes. */
function sendableQuery(query: string): string {
  return query.replace(/[^\u0021-\u00ff]/gu, (ch) => encodeSegment(ch));
}

// --- anything else ----------------------------------------------------------------------------

const KNOWN_ROOTS = new Set(['', 'docs', 'health', 'openapi.json', 'asyncapi.json', 'api', 'socket.io', 'ws']);

function otherCase(rng: Rng, world: World): RestCase {
  const headers = commonHeaders(rng, world);
  const strict = rng.bool(0.5);
  if (strict) {
    // Routes that exist nowhere: 404 NOT_FOUND in the envelope, whatever the method.
    const method = rng.pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
    let path = rng.choose<string>([
      [25, () => `/api/${encodeSegment(junkString(rng, 300))}`],
      [15, () => `/api/sessions/${encodeSegment(rng.pick(realSessions(world)))}/${encodeSegment(junkString(rng, 50))}`],
      [10, () => `/api/sessions/x/y/z`],
      [10, () => `/api/auth/${encodeSegment(junkString(rng, 50))}`],
      [15, () => `/${encodeSegment(junkString(rng, 300))}`],
      [10, () => `/api/sessions/${encodeSegment(rng.pick(realSessions(world)))}`],
      [10, () => '/api/sessions'],
      [5, () => '/api/auth/token'],
    ]);
    const first = path.split('/')[1] ?? '';
    const sub = path.split('/')[2] ?? '';
    const routed =
      (path === '/api/sessions' && method === 'POST') ||
      (path === '/api/auth/token' && method === 'POST') ||
      (/^\/api\/sessions\/[^/]+\/?$/.test(path) && (method === 'GET' || method === 'DELETE')) ||
      /^\/api\/sessions\/[^/]+\/(history|participants)\/?$/i.test(path) ||
      (first === 'api' && ['', 'sessions', 'auth'].includes(decodeURIComponentSafe(sub).toLowerCase()) && path.split('/').length <= 3) ||
      (first !== 'api' && KNOWN_ROOTS.has(decodeURIComponentSafe(first).toLowerCase()));
    if (routed) path = `/api/nothing-here/${rng.int(0, 1e6)}`;
    return {
      kind: 'other',
      req: { method, path, headers },
      echo: `${decodeURIComponentSafe(path)} ${path} ${JSON.stringify(headers)}`,
      envelope: true,
      expect(reply) {
        const problems = statusIn(reply, [404]);
        if (reply.status === 404 && reply.body?.error?.code !== 'NOT_FOUND') problems.push(`404 with code ${reply.body?.error?.code}, expected NOT_FOUND`);
        return problems;
      },
    };
  }
  const method = rng.pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD']);
  const path = rng.choose<string>([
    [10, () => `/docs/${encodeSegment(junkString(rng, 100))}`],
    [10, () => `/health?${encodeSegment(junkString(rng, 100))}=${encodeSegment(junkString(rng, 100))}`],
    [10, () => `/openapi.json?${encodeSegment(junkString(rng, 100))}`],
    [10, () => `/?${encodeSegment(junkString(rng, 50))}`],
    [10, () => `/ws/${encodeSegment(junkString(rng, 100))}`],
    [10, () => '/api//sessions'],
    [10, () => '/API/SESSIONS/' + encodeSegment(rng.pick(realSessions(world)))],
    [10, () => `/api/sessions/${encodeSegment(rng.pick(realSessions(world)))}/history/`],
    [10, () => `/api/auth/token/../../sessions`],
    [10, () => `/socket.io/?EIO=${encodeSegment(junkString(rng, 10))}&transport=${encodeSegment(junkString(rng, 20))}`],
  ]);
  if (method === 'OPTIONS' && rng.bool()) {
    headers.origin = rng.pick(['http://localhost:3000', 'http://evil.example']);
    headers['access-control-request-method'] = headerSafe(rng.pick(['POST', 'DELETE', 'TRACE', junkString(rng, 30)]));
    headers['access-control-request-headers'] = headerSafe(rng.pick(['authorization,content-type', junkString(rng, 200)]));
  }
  const body = method === 'POST' || method === 'PUT' || method === 'PATCH' ? Buffer.from(JSON.stringify(junkValue(rng)) ?? 'null') : undefined;
  if (body) headers['content-type'] = 'application/json';
  const envelope = method !== 'HEAD' && method !== 'OPTIONS' && path.startsWith('/api/') && !path.startsWith('/API');
  return {
    kind: 'other',
    req: { method, path, headers, body },
    bodyText: body?.toString(),
    echo: `${decodeURIComponentSafe(path)} ${path} ${JSON.stringify(headers)} ${body?.toString() ?? ''}`,
    envelope,
    expect: () => [],
  };
}

export function restCase(rng: Rng, world: World): RestCase {
  return rng.choose<RestCase>([
    [20, () => createCase(rng, world, 'create')],
    [12, () => createCase(rng, world, 'token')],
    [12, () => sessionReadCase(rng, world, '')],
    [4, () => sessionReadCase(rng, world, '/participants')],
    [14, () => deleteCase(rng, world)],
    [14, () => historyCase(rng, world)],
    [12, () => otherCase(rng, world)],
  ]);
}

export function describeRestCase(c: RestCase): string {
  const body = c.bodyText === undefined ? '' : ` body=${describe(c.bodyText, 400)}`;
  return `${c.req.method} ${describe(c.req.path, 300)} headers=${describe(c.req.headers ?? {}, 300)}${body}`;
}

/** Checks every reply must pass, whatever was asked. */
function commonProblems(c: RestCase, reply: RawReply, stats: { parserRefusals: number }): string[] {
  const problems: string[] = [];
  if (reply.status >= 500) problems.push(`status ${reply.status}: ${reply.text.slice(0, 300)}`);
  const leaked = leaks(reply.text, c.echo);
  if (leaked.length > 0) problems.push(`reply leaks internals: ${leaked.join(' | ')}`);
  const fromApp = reply.headers['x-seance-node'] !== undefined;
  if (!fromApp) {
    // Node's own HTTP parser refuses some requests before any application code runs.
    if ((reply.status === 400 || reply.status === 431) && reply.text === '') stats.parserRefusals++;
    else if (c.envelope) problems.push(`status ${reply.status} not answered by the app: ${reply.text.slice(0, 200)}`);
    return problems;
  }
  // HTTP strips only spaces and tabs around a header value (String#trim would also take NBSP).
  const sentId = c.req.headers?.['x-request-id']?.replace(/^[ \t]+|[ \t]+$/g, '');
  const gotId = reply.headers['x-request-id'];
  if (typeof gotId !== 'string') problems.push('no X-Request-Id');
  else if (sentId && SAFE_REQUEST_ID.test(sentId) ? gotId !== sentId : !UUID.test(gotId)) problems.push(`X-Request-Id ${describe(gotId)} for ${describe(sentId)}`);
  if (c.envelope && c.req.method !== 'HEAD' && reply.status !== 204) {
    problems.push(...envelopeProblems(reply.status, reply.body, typeof gotId === 'string' ? gotId : null));
  }
  return problems;
}

export function restCases(world: World, rng: Rng, count: number): RestCase[] {
  return Array.from({ length: count }, () => restCase(rng, world));
}

const jsonBody = (text: string): GeneratedBody => ({ bytes: Buffer.from(text, 'utf8'), text, contentType: 'application/json', bucket: 'json' });

/**
 * Fixed inputs that run on every seed: each one once found a server bug (kept until it is
 * fixed, then as a guard) or sits on a sharp edge of the contract.
 */
export function corpusRestCases(world: World): RestCase[] {
  const real = world.eventSessions[0];
  const history = (query: string): RestCase => ({
    kind: 'history',
    req: { method: 'GET', path: `/api/sessions/${real}/history?${query}` },
    echo: query,
    envelope: true,
    expect: (reply) => statusIn(reply, historyStatuses(query)),
  });
  return [
    // NUL cannot be stored by PostgreSQL: refuse it or drop it, never store something else.
    bodyCase('create', jsonBody('{"name":"a\\u0000b"}')),
    bodyCase('create', jsonBody('{"name":"\\u0000"}')),
    bodyCase('token', jsonBody('{"name":"a\\u0000b"}')),
    // Unknown fields are refused (docs/protocol.md), "__proto__" included.
    bodyCase('create', jsonBody('{"name":"x","__proto__":{"max_users":99}}')),
    bodyCase('create', jsonBody('{"name":"x","__proto__":"polluted"}')),
    bodyCase('token', jsonBody('{"name":"x","__proto__":{"user_id":"bad id!"}}')),
    history('__proto__=1'),
    history('limit=5&__proto__=%25'),
    // ...and named in details, even when the name is also an Object.prototype member.
    bodyCase('create', jsonBody('{"name":"x","constructor":{"prototype":{"polluted":true}}}')),
    bodyCase('create', jsonBody('{"name":"x","toString":1}')),
    bodyCase('token', jsonBody('{"name":"x","hasOwnProperty":1}')),
    // Sharp edges that hold today.
    bodyCase('create', jsonBody(deepArrayText(8000))),
    bodyCase('create', jsonBody(deepObjectText(3000))),
    bodyCase('create', jsonBody(deepArrayText(10_000))),
    bodyCase('create', jsonBody(deepObjectText(10_000))),
    bodyCase('create', jsonBody(JSON.stringify({ name: 'x'.repeat(1_000_000) }))),
    bodyCase('create', jsonBody('{"name":"\\ud800"}')),
    bodyCase('create', jsonBody('{"name":"x","max_users":"6"}')),
    bodyCase('create', jsonBody('{"name":"x","max_users":6.5}')),
    bodyCase('create', { ...jsonBody('{"name":"x"'), contentType: 'application/json' }),
    history('limit=100&before=999999999999999'),
    history('limit=1e2'),
    // A request id around which HTTP strips spaces but not a no-break space (seed 1753704727).
    { ...history('limit=1'), req: { method: 'GET', path: `/api/sessions/${real}/history?limit=1`, headers: { 'x-request-id': ' \u00a0req-1 ' } } },
    { ...history('limit=1'), req: { method: 'GET', path: `/api/sessions/${real}/history?limit=1`, headers: { 'x-request-id': '\treq-2 ' } } },
  ];
}

export async function runRest(world: World, cases: RestCase[], concurrency: number, surface = 'rest'): Promise<{ parserRefusals: number; byStatus: Record<number, number> }> {
  const stats = { parserRefusals: 0, byStatus: {} as Record<number, number> };
  await pool(cases, concurrency, async (c, i) => {
    world.counts[surface] = (world.counts[surface] ?? 0) + 1;
    let reply: RawReply;
    try {
      reply = await world.http.request(c.req);
    } catch (err) {
      world.findings.add(surface, i, describeRestCase(c), `no reply: ${(err as Error).message}`);
      return;
    }
    stats.byStatus[reply.status] = (stats.byStatus[reply.status] ?? 0) + 1;
    const refusedByParser = reply.headers['x-seance-node'] === undefined && (reply.status === 400 || reply.status === 431) && reply.text === '';
    const problems = [...commonProblems(c, reply, stats), ...(refusedByParser ? [] : c.expect(reply))];
    for (const problem of problems) world.findings.add(surface, i, describeRestCase(c), `${c.kind} — ${problem}`);
  });
  return stats;
}

// --- requests no client library would send ------------------------------------------------------

/** Requests whose body or head never completes: the server rightly waits for the rest. */
const INCOMPLETE = new Set(['\r\n\r\n\r\n']);

function rawRequests(rng: Rng, world: World): string[] {
  const id = rng.pick(realSessions(world));
  const json = '{"name":"raw"}';
  const list = [
    'GARBAGE\r\n\r\n',
    '\r\n\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n',
    `GET /api/sessions/${id} HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\u0000b\r\n\r\n`,
    `GET /api/sessions/${id} HTTP/1.1\r\nHost: x\r\nX-Injected: a\rb\r\n\r\n`,
    `POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 14\r\nContent-Length: 15\r\n\r\n${json}`,
    `POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n${json}\r\n0\r\n\r\n`,
    `POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\ne\r\n${json}\r\n0\r\n\r\n`,
    `POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n7;ext=${'x'.repeat(200)}\r\n{"name"\r\n7\r\n:"raw"}\r\n0\r\nX-Trailer: junk\r\n\r\n`,
    `POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    `POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 14\r\n\r\n${json}`,
    `POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: br\r\nContent-Length: 14\r\n\r\n${json}`,
    `POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: deflate\r\nContent-Length: 4\r\n\r\nxxxx`,
    `POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n`,
    `POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n`,

    `POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 14\r\n\r\n${json}`,
    `POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 999-junk\r\nContent-Length: 14\r\n\r\n${json}`,
    `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
    `GET / HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`,
    'GET /api/sessions/\xff\xfe\xfd HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /api/sessions/%00 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /api/sessions/%zz HTTP/1.1\r\nHost: x\r\n\r\n',
    'FOO /api/sessions HTTP/1.1\r\nHost: x\r\n\r\n',
    'TRACE /api/sessions HTTP/1.1\r\nHost: x\r\n\r\n',
    'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /api/sessions HTTP/9.9\r\nHost: x\r\n\r\n',
    'GET /api/sessions HTTP/1.0\r\n\r\n',
    'GET /api/sessions\r\n\r\n',
    'GET http://evil.example/api/sessions/x HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET * HTTP/1.1\r\nHost: x\r\n\r\n',
    'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /api/sessions/x HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n',
    'GET /api/sessions/x HTTP/1.1\r\n Host: folded\r\n\r\n',
    'GET /api/sessions/x HTTP/1.1\nHost: x\n\n',
    `GET /api/sessions/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'\u00ff'.repeat(100)}\r\n\r\n`,
    `GET /ws/${id} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    `GET /ws/${id} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: junk\r\nSec-WebSocket-Version: 99\r\n\r\n`,
    `GET /api/sessions HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: junk\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    `GET /ws/${id} HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n`,
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
    '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03',
  ];
  return list;
}

export async function runRawHttp(world: World, rng: Rng, rounds: number): Promise<number> {
  const requests: string[] = [];
  for (let r = 0; r < rounds; r++) requests.push(...rawRequests(rng, world));
  await pool(requests, 8, async (bytes, i) => {
    world.counts['raw-http'] = (world.counts['raw-http'] ?? 0) + 1;
    const incomplete = INCOMPLETE.has(bytes);
    const result = await rawHttp(world.node.port, Buffer.from(bytes, 'latin1'), incomplete ? 500 : 5000);
    if (incomplete) return;
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(result.statusLine);
    if (!result.closed && !status) world.findings.add('raw-http', i, bytes, `no reply and the connection stayed open: ${describe(result.text, 200)}`);
    if (status && Number(status[1]) >= 500) world.findings.add('raw-http', i, bytes, `status ${status[1]}: ${describe(result.text, 300)}`);
    const leaked = leaks(result.text, bytes);
    if (leaked.length > 0) world.findings.add('raw-http', i, bytes, `reply leaks internals: ${leaked.join(' | ')}`);
  });
  return requests.length;
}

// --- Engine.IO long-polling -----------------------------------------------------------------

function pollingBody(rng: Rng, world: World): { body: string | Buffer; contentType?: string } {
  const session = rng.pick(world.eventSessions);
  return rng.choose<{ body: string | Buffer; contentType?: string }>([
    [15, () => ({ body: `40${JSON.stringify({ session_id: rng.bool(0.6) ? session : junkValue(rng, 2), name: rng.bool(0.5) ? 'Poller' : junkValue(rng, 2) })}` })],
    [10, () => ({ body: `40${malformedJsonText(rng, () => ({ session_id: session, name: 'x' }))}` })],
    [10, () => ({ body: `42${JSON.stringify(['send_message', junkValue(rng, 1)])}` })],
    [10, () => ({ body: `42${malformedJsonText(rng, () => ['send_message', { message: 'x' }])}` })],
    [10, () => ({ body: junkString(rng, 5000) })],
    [6, () => ({ body: Array.from({ length: rng.int(2, 30) }, () => rng.pick(['2', '3', '6', '40', '41', '1', '4', 'x', '', `42["x"]`])).join('\x1e') })],
    [6, () => ({ body: `b${Buffer.from(randomString(rng, 50)).toString('base64')}` })],
    [4, () => ({ body: `b${randomString(rng, 40)}` })],
    [4, () => ({ body: 'x'.repeat(rng.pick([65_536, 70_000, 200_000])) })],
    [4, () => ({ body: Buffer.from(Array.from({ length: rng.int(1, 200) }, () => rng.int(0, 255))), contentType: 'application/octet-stream' })],
    [3, () => ({ body: '' })],
    [3, () => ({ body: '40', contentType: headerSafe(junkString(rng, 40)) })],
  ]);
}

export async function runPolling(world: World, rng: Rng, count: number): Promise<void> {
  const cases = Array.from({ length: count }, () => ({
    withSid: rng.bool(0.65),
    ...pollingBody(rng, world),
    junkQuery: `EIO=${encodeSegment(rng.pick(['4', '3', '5', '', 'x', junkString(rng, 10)]))}&transport=${encodeSegment(rng.pick(['polling', 'websocket', 'flashsocket', '', junkString(rng, 20)]))}&sid=${encodeSegment(junkString(rng, 40))}${rng.bool(0.2) ? '&j=0' : ''}${rng.bool(0.2) ? '&b64=1' : ''}`,
  }));
  await pool(cases, 8, async (c, i) => {
    world.counts.polling = (world.counts.polling ?? 0) + 1;
    const input = `${c.withSid ? 'POST sid' : `POST ?${c.junkQuery}`} body=${describe(c.body, 300)} content-type=${c.contentType}`;
    const check = (reply: RawReply, what: string) => {
      if (reply.status >= 500) world.findings.add('polling', i, input, `${what}: status ${reply.status} ${reply.text.slice(0, 200)}`);
      const leaked = leaks(reply.text, typeof c.body === 'string' ? c.body : c.body.toString('latin1'));
      if (leaked.length > 0) world.findings.add('polling', i, input, `${what}: reply leaks internals: ${leaked.join(' | ')}`);
    };
    try {
      let query = c.junkQuery;
      if (c.withSid) {
        const open = await world.http.request({ method: 'GET', path: '/socket.io/?EIO=4&transport=polling' });
        check(open, 'handshake');
        const sid = /"sid":"([^"]+)"/.exec(open.text)?.[1];
        if (!sid) {
          world.findings.add('polling', i, input, `no sid in the polling handshake: ${open.text.slice(0, 200)}`);
          return;
        }
        query = `EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
      }
      const headers: Record<string, string> = { 'content-type': c.contentType ?? 'text/plain;charset=UTF-8' };
      check(await world.http.request({ method: 'POST', path: `/socket.io/?${query}`, headers, body: c.body }), 'junk POST');
      if (c.withSid) {
        // Close the Engine.IO session so no half-joined poller lingers.
        const closing = await world.http.request({ method: 'POST', path: `/socket.io/?${query}`, headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: '1' }).catch(() => null);
        if (closing) check(closing, 'close POST');
      }
    } catch (err) {
      world.findings.add('polling', i, input, `no reply: ${(err as Error).message}`);
    }
  });
}

/** A session named with a NUL or a lone surrogate: refused, or read back as the creation announced it. */
export async function runStoredNameCorpus(world: World): Promise<void> {
  const names = ['a\u0000b', 'Lone \ud800 name'];
  for (const [n, name] of names.entries()) {
    world.counts.corpus = (world.counts.corpus ?? 0) + 1;
    const input = { name };
    const created = await world.http.request({ method: 'POST', path: '/api/sessions', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input) });
    if (created.status === 400) continue;
    if (created.status !== 201) {
      world.findings.add('corpus', 100 + n, input, `POST /api/sessions answered ${created.status}: ${created.text.slice(0, 200)}`);
      continue;
    }
    const announced: string = created.body.data.name;
    const read = await world.http.request({ method: 'GET', path: `/api/sessions/${created.body.data.id}` });
    const stored = read.body?.data?.name;
    if (stored !== announced && stored !== Buffer.from(announced, 'utf8').toString('utf8')) {
      world.findings.add('corpus', 100 + n, input, `POST answered name ${describe(announced)} but GET reads ${describe(stored)}`);
    }
  }
}
