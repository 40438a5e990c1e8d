/**
 * The realtime surfaces: Socket.IO handshakes and events through socket.io-client, Socket.IO
 * packets written by hand over Engine.IO, and raw /ws frames before and after identification.
 * Each connection works through its cases one at a time, waiting for the reply each input
 * should get (an `error`, its own `message_received`, a close) with a timeout, never a sleep.
 */
import WebSocket from 'ws';
import { joinSocket, RawClient, socketClient, type TestSocket } from '../support/clients';
import { describe, EioClient, parseEioEvent, pool } from './drivers';
import {
  badToken,
  deepArray,
  deepArrayText,
  deepObject,
  deepObjectText,
  EDGE_STRINGS,
  encodeSegment,
  junkObject,
  junkString,
  junkValue,
  longString,
  malformedJsonText,
  POLLUTION_KEYS,
  pollutionPayload,
  randomString,
  seededUuid,
  setOwn,
  type Rng,
} from './generators';
import { chatVerdict, firstFrameBody, JOIN_REFUSAL_CODES, joinVerdict, STATE_REFUSAL_CODES, leaks, normalizeStored, REALTIME_INPUT_CODES, WS_CLOSE_OF_CODE, type Verdict } from './reference';
import { isValidAccessToken, sessionState, Tally, type World } from './world';

const REPLY_TIMEOUT_MS = 5000;
const RAW_FRAME_LIMIT = 16 * 1024;
const SIO_BUFFER_LIMIT = 64 * 1024;
const CLIENT_RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);
const KNOWN_EVENTS = new Set(['send_message', 'typing', 'leave_session']);

const count = (world: World, surface: string) => (world.counts[surface] = (world.counts[surface] ?? 0) + 1);

/** What the server sees of a Socket.IO argument: JSON round trip, except binary which stays binary. */
function asServerSees(value: unknown): unknown {
  if (containsBinary(value)) return value;
  return JSON.parse(JSON.stringify([value]))[0];
}

function containsBinary(value: unknown, depth = 0): boolean {
  if (depth > 50 || value === null || typeof value !== 'object') return false;
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return true;
  return Object.values(value).some((v) => containsBinary(v, depth + 1));
}

function binaryBytes(value: unknown, depth = 0): number {
  if (depth > 50 || value === null || typeof value !== 'object') return 0;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value.byteLength;
  return Object.values(value).reduce<number>((sum, v) => sum + binaryBytes(v, depth + 1), 0);
}

/** Problems with the `error` events one input drew, given the codes it may draw. */
function errorProblems(errors: Array<{ code: string; message: string }>, allowed: string[], echo: string): string[] {
  const problems: string[] = [];
  if (errors.length > 1) problems.push(`${errors.length} error events for one input: ${errors.map((e) => e?.code).join(', ')}`);
  for (const e of errors) {
    if (!e || typeof e.code !== 'string' || typeof e.message !== 'string') problems.push(`malformed error event ${describe(e)}`);
    else if (e.code === 'INTERNAL_ERROR') problems.push(`INTERNAL_ERROR (a server fault): ${e.message}`);
    else if (!allowed.includes(e.code)) problems.push(`error ${e.code}, expected ${allowed.join(' or ')}`);
    const leaked = leaks(String(e?.message), echo);
    if (leaked.length > 0) problems.push(`error message leaks internals: ${leaked.join(' | ')}`);
  }
  return problems;
}

/** Problems with the reply to a send_message, given its verdict. */
function chatProblems(verdict: Verdict, sent: unknown, tally: Tally, before: { errors: number; mine: number }, me: { name: string }, echo: string): string[] {
  const errors = tally.errors.slice(before.errors);
  const mine = tally.mine.slice(before.mine);
  const problems: string[] = [];
  if (mine.length > 0) {
    const m = mine[0];
    if (verdict.kind === 'reject') problems.push(`ACCEPTED an invalid message (expected ${verdict.codes.join(' or ')}): stored as ${describe(m.message, 120)}`);
    if (m.user_name !== me.name) problems.push(`message_received with user_name ${describe(m.user_name)}, joined as ${describe(me.name)}`);
    const text = (sent as { message?: unknown })?.message;
    if (typeof text === 'string' && verdict.kind === 'accept' && m.message !== text.trim()) problems.push(`broadcast text differs from the trimmed input: got ${describe(m.message, 120)}`);
    if (typeof text === 'string' && verdict.kind === 'either' && normalizeStored(m.message) !== normalizeStored(text.trim()) && normalizeStored(m.message) !== normalizeStored(text).trim()) {
      problems.push(`broadcast text differs from the input (beyond NUL/lone-surrogate replacement): got ${describe(m.message, 120)}`);
    }
    if (mine.length > 1) problems.push(`${mine.length} message_received for one send`);
    if (errors.length > 0) problems.push(...errorProblems(errors, [], echo));
    return problems;
  }
  if (errors.length > 0) {
    if (verdict.kind === 'accept')
      return [
        `valid message refused with ${errors.map((e) => e?.code).join(', ')}: ${errors[0]?.message}`,
        ...errorProblems(errors, [...REALTIME_INPUT_CODES], echo).filter((p) => p.includes('INTERNAL') || p.includes('leaks')),
      ];
    return errorProblems(errors, verdict.codes, echo);
  }
  if (tally.closed) return [`connection closed (${describe(tally.closed)}) instead of a reply`];
  return [`no reply within ${REPLY_TIMEOUT_MS} ms`];
}

// --- Socket.IO handshakes ------------------------------------------------------------------

function junkAuth(rng: Rng, world: World, withSession: boolean): Record<string, unknown> {
  const auth: Record<string, unknown> = {};
  const put = (key: string, value: unknown) => value !== undefined && setOwn(auth, key, value);
  if (withSession) {
    const real = () => rng.pick(world.handshakeSessions);
    put(
      'session_id',
      rng.choose<unknown>([
        [35, real],
        [8, () => world.endedSession],
        [5, () => real().toUpperCase()],
        [20, () => junkString(rng, 300)],
        [4, () => seededUuid(rng)],
        [8, () => junkValue(rng, 1)],
        [6, () => undefined],
        [4, () => `${real()} `],
        [3, () => longString(rng, 20_000)],
      ]),
    );
  }
  put(
    'name',
    rng.choose<unknown>([
      [35, () => `Fuzzer ${rng.int(0, 1e6)}`],
      [30, () => junkString(rng, 300)],
      [15, () => junkValue(rng, 1, 300)],
      [12, () => undefined],
      [8, () => rng.pick(EDGE_STRINGS)],
    ]),
  );
  put(
    'user_id',
    rng.choose<unknown>([
      [45, () => undefined],
      [20, () => `hs-${rng.int(0, 1e9)}`],
      [20, () => junkString(rng, 100)],
      [10, () => junkValue(rng, 1, 100)],
      [5, () => 'a'.repeat(rng.pick([64, 65]))],
    ]),
  );
  put(
    'token',
    rng.choose<unknown>([
      [55, () => undefined],
      [25, () => badToken(rng, world.kit)],
      [10, () => rng.pick(world.kit.guest)],
      [5, () => rng.pick(world.kit.creatorOfOthers)],
      [5, () => junkValue(rng, 1, 100)],
    ]),
  );
  rng.choose<void>([
    [70, () => undefined],
    [15, () => Object.entries(junkObject(rng, 1, 2000)).forEach(([k, v]) => setOwn(auth, k, v))],
    [10, () => Object.entries(pollutionPayload(rng)).forEach(([k, v]) => setOwn(auth, k, v))],
    [5, () => setOwn(auth, 'x', rng.bool() ? deepObject(rng.int(100, 1500)) : deepArray(rng.int(100, 2000)))],
  ]);
  return auth;
}

/** Problems with a join refusal (`{code, message}`) given the verdict. */
function refusalProblems(code: unknown, message: unknown, verdict: Verdict, echo: string): string[] {
  const problems: string[] = [];
  if (typeof code !== 'string' || typeof message !== 'string') return [`malformed refusal ${describe({ code, message })}`];
  if (code === 'INTERNAL_ERROR') problems.push(`join refused with INTERNAL_ERROR (a server fault): ${message}`);
  else if (!JOIN_REFUSAL_CODES.has(code)) problems.push(`join refused with unknown code ${code}`);
  else if (verdict.kind === 'accept' && !STATE_REFUSAL_CODES.has(code)) problems.push(`valid join refused with ${code}: ${message}`);
  else if (verdict.kind !== 'accept' && !STATE_REFUSAL_CODES.has(code) && !verdict.codes.includes(code)) problems.push(`join refused with ${code}, expected ${verdict.codes.join(' or ')}`);
  const leaked = leaks(message, echo);
  if (leaked.length > 0) problems.push(`refusal leaks internals: ${leaked.join(' | ')}`);
  return problems;
}

function joinedProblems(welcome: any, body: Record<string, unknown>, verdict: Verdict, world: World, queryToken?: string): string[] {
  if (verdict.kind === 'reject') return [`ADMITTED an invalid join (expected ${verdict.codes.join(' or ')})`];
  const you = welcome?.you;
  if (!you || typeof you.id !== 'string' || typeof you.name !== 'string') return [`session_joined without you: ${describe(welcome, 200)}`];
  const effective = body.token !== undefined ? body.token : queryToken;
  // With a valid token the identity is the token's, whatever the body says.
  const token = typeof effective === 'string' && isValidAccessToken(world, effective);
  if (!token && typeof body.name === 'string' && you.name !== body.name.trim() && you.name !== normalizeStored(body.name.trim()))
    return [`joined as ${describe(you.name)} for name ${describe(body.name)}`];
  if (!token && typeof body.user_id === 'string' && you.id !== body.user_id) return [`joined as id ${describe(you.id)} for user_id ${describe(body.user_id)}`];
  return [];
}

export async function runSocketHandshakes(world: World, rng: Rng, total: number, concurrency: number): Promise<void> {
  const cases = Array.from({ length: total }, () => junkAuth(rng, world, true));
  await pool(cases, concurrency, async (auth, i) => {
    count(world, 'socket.io handshake');
    const body = JSON.parse(JSON.stringify(auth)) as Record<string, unknown>;
    const verdict = joinVerdict(body, { socketAuth: true, sessionState: (id) => sessionState(world, id), isValidAccessToken: (t) => isValidAccessToken(world, t) });
    const tally = new Tally();
    let welcome: any;
    let refusal: any;
    const socket = socketClient(world.node.url, auth);
    socket.on('session_joined', (data) => {
      welcome = data;
      tally.notify();
    });
    socket.on('connect_error', (err: Error & { data?: any }) => {
      refusal = { message: err.message, data: err.data };
      tally.notify();
    });
    socket.io.on('close', (reason) => {
      tally.closed = { reason: String(reason) };
      tally.notify();
    });
    try {
      await tally.until(() => welcome !== undefined || refusal !== undefined || tally.closed !== null, 8000);
      const echo = JSON.stringify(body);
      let problems: string[];
      if (welcome !== undefined) problems = joinedProblems(welcome, body, verdict, world);
      else if (refusal !== undefined) {
        problems = refusalProblems(refusal.data?.code, refusal.data?.message, verdict, echo);
        if (refusal.data?.code !== refusal.message) problems.push(`connect_error message ${describe(refusal.message)} is not its code ${describe(refusal.data?.code)}`);
      } else if (tally.closed) {
        // Over maxHttpBufferSize the transport is closed before any namespace sees the CONNECT.
        problems = Buffer.byteLength(echo) + 2 > SIO_BUFFER_LIMIT ? [] : [`connection closed without connect_error (${tally.closed.reason})`];
      } else problems = ['no session_joined nor connect_error within 8 s'];
      for (const p of problems) world.findings.add('socket.io handshake', i, auth, p);
    } finally {
      socket.close();
    }
  });
}

// --- Socket.IO events on joined sockets -------------------------------------------------------

export type SioCase =
  | { kind: 'send'; args: unknown[]; ack: 'none' | 'last' | 'only' }
  | { kind: 'unknown'; event: string; args: unknown[] }
  | { kind: 'typing'; args: unknown[] }
  | { kind: 'valid'; text: string; ack: boolean };

function junkChatPayload(rng: Rng, maxHuge: number): unknown {
  return rng.choose<unknown>([
    [
      40,
      () => {
        const o: Record<string, unknown> = {};
        setOwn(
          o,
          'message',
          rng.choose<unknown>([
            [80, () => junkString(rng, maxHuge)],
            [20, () => junkValue(rng, 1, maxHuge)],
          ]),
        );
        if (rng.bool(0.2)) setOwn(o, 'user_name', junkValue(rng, 1, 1000));
        if (rng.bool(0.15)) for (const [k, v] of Object.entries(junkObject(rng, 1, 1000))) if (k !== 'message') setOwn(o, k, v);
        return o;
      },
    ],
    [25, () => junkValue(rng, 0, maxHuge)],
    [8, () => junkObject(rng, 0, 1000)],
    [4, () => ({ message: deepArray(rng.int(10, 1000)) })],
    [4, () => (rng.bool() ? deepObject(rng.int(100, 2000), rng.pick(['message', 'a'])) : deepArray(rng.int(100, 2000)))],
    [5, () => ({ ...pollutionPayload(rng), ...(rng.bool() ? { message: junkString(rng, 100) } : {}) })],
    [3, () => JSON.parse(`{"__proto__": {"message": "from the prototype"}}`)],
  ]);
}

function binaryPayload(rng: Rng): unknown {
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => rng.int(0, 255)));
  return rng.choose<unknown>([
    [20, () => bytes(rng.int(0, 200))],
    [20, () => ({ message: bytes(rng.int(1, 100)) })],
    [10, () => [bytes(10), bytes(0)]],
    [10, () => new Uint8Array(rng.int(0, 64))],
    [10, () => ({ message: 'binary beside a text', attachment: bytes(32) })],
    [10, () => ({ message: { nested: bytes(8) } })],
    [5, () => bytes(SIO_BUFFER_LIMIT + rng.int(1, 10_000))],
  ]);
}

function uniqueUnknownEvent(rng: Rng): string {
  const name = rng.choose<string>([
    [50, () => junkString(rng, 300)],
    [20, () => rng.pick(EDGE_STRINGS)],
    [15, () => rng.pick([...POLLUTION_KEYS, 'error', 'message', 'join_session', 'session_joined', 'message_received', 'spirit_response', 'SEND_MESSAGE', 'send_message ', ' typing'])],
    [5, () => longString(rng, 20_000)],
  ]);
  return KNOWN_EVENTS.has(name) || CLIENT_RESERVED.has(name) ? `x-${name}` : name;
}

function validText(rng: Rng, tag: string, n: number): string {
  const pad = () => rng.pick(['', ' ', '  \t', '\n', '\u00A0']);
  return `${pad()}fuzz ok ${tag} #${n} ${rng.pick(['👻', 'é', 'ß', '你好', 'Ω', 'ok'])}${pad()}`;
}

function sioCase(rng: Rng, tag: string, n: number): SioCase {
  return rng.choose<SioCase>([
    [
      30,
      () => {
        const ack = rng.choose<'none' | 'last' | 'only'>([
          [50, () => 'last'],
          [38, () => 'none'],
          [12, () => 'only'],
        ]);
        if (ack === 'only') return { kind: 'send', args: [], ack };
        const payload = junkChatPayload(rng, rng.bool(0.05) ? 70_000 : 20_000);
        return { kind: 'send', args: rng.bool(0.1) ? [payload, junkValue(rng, 1)] : [payload], ack };
      },
    ],
    [6, () => ({ kind: 'send', args: [binaryPayload(rng)], ack: rng.bool() ? 'last' : 'none' })],
    [16, () => ({ kind: 'unknown', event: uniqueUnknownEvent(rng), args: Array.from({ length: rng.int(0, 2) }, () => junkValue(rng, 1, 5000)) })],
    [5, () => ({ kind: 'typing', args: Array.from({ length: rng.int(0, 2) }, () => junkValue(rng, 1, 5000)) })],
    [12, () => ({ kind: 'valid', text: validText(rng, tag, n), ack: rng.bool() })],
  ]);
}

interface SioSlot {
  sessionId: string;
  userId: string;
  name: string;
  polling: boolean;
}

async function connectSio(world: World, slot: SioSlot): Promise<{ socket: TestSocket; tally: Tally }> {
  const socket = await joinSocket(world.node.url, { session_id: slot.sessionId, name: slot.name, user_id: slot.userId }, slot.polling ? { transports: ['polling'] } : {});
  const tally = new Tally();
  socket.onAny((event: string, data: any) => {
    if (event === 'error') tally.errors.push(data);
    else if (event === 'message_received' && data?.user_id === slot.userId) {
      tally.mine.push(data);
      world.ledger.record(data);
    }
    tally.notify();
  });
  socket.on('disconnect', (reason) => {
    tally.closed = { reason };
    tally.notify();
  });
  return { socket, tally };
}

/** Fixed Socket.IO inputs run on every seed (see corpusRestCases). */
export function corpusSioCases(): SioCase[] {
  const send = (message: unknown): SioCase => ({ kind: 'send', args: [{ message }], ack: 'last' });
  return [
    send('\u0000'),
    send('a\u0000b'),
    send('\u0000'.repeat(500)),
    send('\ud800'),
    send('a'.repeat(500)),
    send('a'.repeat(501)),
    send(' '.repeat(600) + 'a' + ' '.repeat(600)),
    send('𒐫'.repeat(250)),
    { kind: 'send', args: [deepObject(3000, 'message')], ack: 'last' },
    { kind: 'send', args: [JSON.parse('{"__proto__":{"message":"from the prototype"}}')], ack: 'last' },
    { kind: 'send', args: [Buffer.from('binary')], ack: 'last' },
    { kind: 'send', args: [], ack: 'only' },
    { kind: 'unknown', event: '__proto__', args: [] },
    { kind: 'unknown', event: 'constructor', args: [{}] },
    { kind: 'unknown', event: 'error', args: ['boom'] },
  ];
}

export async function runSocketEvents(world: World, rng: Rng, slots: number, perSlot: number, opts: { surface?: string; fixed?: SioCase[] } = {}): Promise<void> {
  const surface = opts.surface ?? 'socket.io events';
  await Promise.all(
    Array.from({ length: opts.fixed ? 1 : slots }, async (_, k) => {
      const slotRng = rng.fork(`sio-slot-${k}`);
      const tag = opts.fixed ? 'sio-corpus' : `sio-${k}`;
      const slot: SioSlot = { sessionId: world.eventSessions[k % world.eventSessions.length], userId: tag, name: `Sïo ${k} 👻`, polling: !opts.fixed && k === 0 };
      const cases = opts.fixed ?? Array.from({ length: perSlot }, (_, n) => sioCase(slotRng, tag, n));
      let conn: { socket: TestSocket; tally: Tally } | null = await connectSio(world, slot);
      try {
        for (let n = 0; n < cases.length && conn; n++) {
          const c = cases[n];
          const index = k * perSlot + n;
          const { socket, tally } = conn;
          const before = { errors: tally.errors.length, mine: tally.mine.length };
          const NO_ACK = Symbol('no ack');
          let ackReply: unknown = NO_ACK;
          const ackFn = (reply: unknown) => {
            ackReply = reply;
            tally.notify();
          };
          let args: unknown[];
          let event: string;
          if (c.kind === 'send') {
            event = 'send_message';
            args = c.ack === 'none' ? c.args : [...c.args, ackFn];
          } else if (c.kind === 'valid') {
            event = 'send_message';
            args = c.ack ? [{ message: c.text }, ackFn] : [{ message: c.text }];
          } else if (c.kind === 'unknown') {
            event = c.event;
            args = c.args;
          } else {
            event = 'typing';
            args = c.args;
          }
          const input = { event, args: args.map((a) => (typeof a === 'function' ? '<ack>' : a)) };
          try {
            (socket.emit as (ev: string, ...a: unknown[]) => unknown)(event, ...args);
          } catch {
            // socket.io-client refused to encode it (too deep for its recursion): nothing was sent.
            continue;
          }
          count(world, surface);
          const echo = describe(input, 100_000);
          const problems: string[] = [];
          const jsonBytes = (() => {
            try {
              return Buffer.byteLength(JSON.stringify([event, ...args.filter((a) => typeof a !== 'function')]) ?? '');
            } catch {
              return 0;
            }
          })();
          const oversize = jsonBytes + 8 > SIO_BUFFER_LIMIT || binaryBytes(args) > SIO_BUFFER_LIMIT;

          if (c.kind === 'send' || c.kind === 'valid') {
            const data = c.kind === 'valid' ? { message: c.text } : c.ack === 'only' ? undefined : c.args[0];
            const verdict = c.kind === 'valid' ? ({ kind: 'accept' } as Verdict) : chatVerdict(asServerSees(data));
            await tally.until(() => tally.errors.length > before.errors || tally.mine.length > before.mine || tally.closed !== null, REPLY_TIMEOUT_MS);
            const ackExpected = (c.kind === 'valid' && c.ack) || (c.kind === 'send' && (c.ack === 'only' || (c.ack === 'last' && c.args.length === 1)));
            const ackOffered = (c.kind === 'valid' && c.ack) || (c.kind === 'send' && c.ack !== 'none');
            if (oversize && tally.closed) {
              // Over maxHttpBufferSize: the transport is closed, as Engine.IO should.
            } else {
              problems.push(...chatProblems(verdict, data, tally, before, slot, echo));
              if (ackOffered && !tally.closed) {
                await tally.until(() => ackReply !== NO_ACK || tally.closed !== null, ackExpected ? REPLY_TIMEOUT_MS : 200);
                const mine = tally.mine[before.mine];
                const error = tally.errors[before.errors];
                const a = ackReply as any;
                if (ackReply === NO_ACK) {
                  if (ackExpected) problems.push('no acknowledgement');
                } else if (mine && !(a?.ok === true && a.id === mine.id)) problems.push(`ack ${describe(a)} for accepted message ${mine.id}`);
                else if (!mine && error && !(a?.ok === false && a.error?.code === error.code && typeof a.error?.message === 'string')) problems.push(`ack ${describe(a)} for error ${error.code}`);
              }
            }
          } else if (c.kind === 'unknown') {
            await tally.until(() => tally.errors.length > before.errors || tally.closed !== null, REPLY_TIMEOUT_MS);
            if (!(oversize && tally.closed)) {
              const errors = tally.errors.slice(before.errors);
              if (errors.length === 0) problems.push(tally.closed ? `connection closed (${describe(tally.closed)})` : `no UNKNOWN_EVENT within ${REPLY_TIMEOUT_MS} ms`);
              problems.push(...errorProblems(errors, ['UNKNOWN_EVENT'], echo));
            }
          } else {
            const probe = `fuzz-probe-${index}`;
            (socket.emit as (ev: string) => unknown)(probe);
            await tally.until(() => tally.errors.slice(before.errors).some((e) => e?.message?.includes(probe)) || tally.closed !== null, REPLY_TIMEOUT_MS);
            const errors = tally.errors.slice(before.errors);
            if (!(oversize && tally.closed)) {
              if (!errors.some((e) => e?.message?.includes(probe))) problems.push(tally.closed ? `connection closed (${describe(tally.closed)})` : 'no reply to the probe after typing');
              const others = errors.filter((e) => !e?.message?.includes(probe));
              if (others.length > 0) problems.push(`typing drew errors: ${others.map((e) => e?.code).join(', ')}`);
            }
          }
          for (const p of problems) world.findings.add(surface, index, input, p);

          if (tally.closed) {
            socket.close();
            try {
              conn = await connectSio(world, slot);
            } catch (err) {
              world.findings.add(surface, index, input, `could not join again afterwards: ${(err as Error).message}`);
              conn = null;
            }
          }
        }
      } finally {
        conn?.socket.close();
      }
    }),
  );
}

// --- Socket.IO packets by hand over Engine.IO --------------------------------------------------

interface EioSend {
  data: string | Buffer;
  /** A Buffer sent as a text frame: invalid UTF-8 on purpose. */
  asText?: boolean;
}

interface EioCase {
  joined: boolean;
  sends: EioSend[];
}

const badUtf8 = () => Buffer.from([0x34, 0x32, 0xff, 0xfe, 0xc3, 0x28]);

function eioPreCase(rng: Rng, world: World): EioCase {
  const sends: EioSend[] = rng.choose<EioSend[]>([
    [30, () => [{ data: `40${JSON.stringify(junkAuth(rng, world, true))}` }]],
    [15, () => [{ data: `40${malformedJsonText(rng, () => junkAuth(rng, world, true))}` }]],
    [10, () => [{ data: `40${rng.pick(['"str"', '123', '[1,2]', 'null', 'true', '[]', '{}x'])}` }]],
    [5, () => [{ data: rng.pick(['40/admin,{}', `40/${encodeSegment(junkString(rng, 30))},{}`, '40/,{}', '40/']) }]],
    [5, () => [{ data: '40' }]],
    [10, () => [{ data: `4${rng.int(0, 9)}${junkString(rng, 300)}` }]],
    [10, () => [{ data: rng.pick(['1', '2', '3', '5', '6', '7', '', 'x', '9999', '0', '2probe', '3probe']) }]],
    [5, () => [{ data: Buffer.from(randomString(rng, 40)) }]],
    [3, () => [{ data: badUtf8(), asText: true }]],
    [3, () => [{ data: `40${JSON.stringify({ session_id: rng.pick(world.eventSessions), name: 'x'.repeat(70_000) })}` }]],
    [4, () => [{ data: `42${JSON.stringify(['send_message', { message: `before connecting ${rng.int(0, 1e6)}` }])}` }]],
  ]);
  return { joined: false, sends };
}

function eioJoinedCase(rng: Rng): EioCase {
  const event = () =>
    rng.choose<unknown>([
      [45, () => 'send_message'],
      [25, () => uniqueUnknownEvent(rng)],
      [8, () => 'typing'],
      [7, () => rng.pick([0, 1, -1, 1.5, 1e21])],
      [5, () => rng.pick(['__proto__', 'constructor', 'hasOwnProperty', 'toString'])],
      [10, () => junkValue(rng, 1, 100)],
    ]);
  const sends: EioSend[] = rng.choose<EioSend[]>([
    [25, () => [{ data: `42${JSON.stringify([event(), ...Array.from({ length: rng.int(0, 2) }, () => junkChatPayload(rng, 20_000))])}` }]],
    [10, () => [{ data: `42${rng.int(0, 1e9)}${JSON.stringify(['send_message', junkChatPayload(rng, 5000)])}` }]],
    [3, () => [{ data: `42${'9'.repeat(rng.int(16, 40))}${JSON.stringify(['send_message', { message: '' }])}` }]],
    [15, () => [{ data: `42${malformedJsonText(rng, () => ['send_message', { message: 'x' }])}` }]],
    [4, () => [{ data: `42${deepArrayText(10_000)}` }]],
    [4, () => [{ data: `42["send_message",${deepObjectText(rng.int(1000, 8000), rng.pick(['a', 'message']))}]` }]],
    [4, () => [{ data: `42${rng.pick(['[]', '{}', '"x"', 'null', '[{}]', '[null]', '[["send_message"]]', '[true]'])}` }]],
    [3, () => [{ data: '451-["send_message",{"_placeholder":true,"num":0}]' }, { data: Buffer.from(randomString(rng, 20)) }]],
    [3, () => [{ data: '451-["send_message",{"message":{"_placeholder":true,"num":0}}]' }, { data: Buffer.alloc(rng.int(0, 64)) }]],
    [2, () => [{ data: '451-["send_message",{"_placeholder":true,"num":7}]' }, { data: Buffer.alloc(4) }]],
    [2, () => [{ data: `45${rng.pick(['11', '999999', 'abc', '0', '-1', '1e3', ''])}-["send_message",{}]` }]],
    [2, () => [{ data: '452-["send_message",{"_placeholder":true,"num":0}]' }, { data: Buffer.alloc(2) }]],
    [2, () => [{ data: Buffer.from(randomString(rng, 40)) }]],
    [5, () => [{ data: `${rng.pick(['43', '46', '44', '41', '40', '4', '49', '4/admin,'])}${rng.bool() ? JSON.stringify(junkValue(rng, 1, 200)) : ''}` }]],
    [5, () => [{ data: rng.pick(['1', '2', '3', '5', '6', '7', '', 'x', '0', '2probe', '6'.repeat(100)]) }]],
    [2, () => [{ data: badUtf8(), asText: true }]],
    [2, () => [{ data: `42${JSON.stringify(['send_message', { message: 'x'.repeat(70_000) }])}` }]],
    [3, () => [{ data: `42${JSON.stringify(['send_message', JSON.parse('{"__proto__":{"message":"polluted"},"constructor":{"prototype":{"message":"polluted"}}}')])}` }]],
  ]);
  return { joined: true, sends };
}

const SIO_PARSER_RESERVED = ['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'];

/** The event a text packet carries if the Socket.IO parser will accept it, else null. */
function eventOf(packet: string): { event: unknown; args: unknown[]; ackId: string } | null {
  const m = /^42(\d*)(.*)$/s.exec(packet);
  if (!m || m[2] === '') return null;
  let payload: unknown;
  try {
    payload = JSON.parse(m[2]);
  } catch {
    return null;
  }
  if (!Array.isArray(payload) || payload.length === 0) return null;
  const ev = payload[0];
  if (!(typeof ev === 'number' || (typeof ev === 'string' && !SIO_PARSER_RESERVED.includes(ev)))) return null;
  return { event: ev, args: payload.slice(1), ackId: m[1] };
}

interface EioTally {
  tally: Tally;
  client: EioClient;
}

function watchEio(client: EioClient, userId: string, world: World): EioTally {
  const tally = new Tally();
  let seen = 0;
  const scan = () => {
    for (; seen < client.packets.length; seen++) {
      const packet = client.packets[seen];
      const ev = parseEioEvent(packet);
      if (ev?.[0] === 'error') tally.errors.push(ev[1] as any);
      if (ev?.[0] === 'message_received' && (ev[1] as any)?.user_id === userId) {
        tally.mine.push(ev[1]);
        world.ledger.record(ev[1] as any);
      }
      if (/^43\d/.test(packet)) tally.acks.push(packet);
    }
    tally.notify();
  };
  client.ws.on('message', scan);
  void client.closed.then(({ code }) => {
    tally.closed = { code };
    tally.notify();
  });
  return { tally, client };
}

export async function runEio(world: World, rng: Rng, total: number, concurrency: number): Promise<void> {
  const cases = Array.from({ length: total }, () => (rng.bool(0.4) ? eioPreCase(rng, world) : eioJoinedCase(rng)));
  await pool(cases, concurrency, async (c, i) => {
    count(world, 'engine.io packets');
    const input = c.sends.map((s) => (Buffer.isBuffer(s.data) ? (s.asText ? `<text frame, bytes ${s.data.toString('hex')}>` : s.data) : s.data));
    const add = (p: string) => world.findings.add('engine.io packets', i, input.length === 1 ? input[0] : input, `${c.joined ? 'joined' : 'before joining'}: ${p}`);
    let client: EioClient;
    try {
      client = await EioClient.open(world.wsUrl);
    } catch (err) {
      add(`Engine.IO handshake failed: ${(err as Error).message}`);
      return;
    }
    const userId = `eio-${i}`;
    const { tally } = watchEio(client, userId, world);
    try {
      if (c.joined) {
        const sessionId = world.eventSessions[i % world.eventSessions.length];
        client.send(`40${JSON.stringify({ session_id: sessionId, name: `Eio ${i}`, user_id: userId })}`);
        const joined = await client.next((p) => p.startsWith('40{') || p.startsWith('44'), REPLY_TIMEOUT_MS);
        if (!joined?.startsWith('40{')) {
          add(`valid CONNECT refused: ${describe(joined)}`);
          return;
        }
        await client.next((p) => p.startsWith('42["session_joined"'), REPLY_TIMEOUT_MS);
      }
      const before = { errors: tally.errors.length, mine: tally.mine.length };
      const mark = client.packets.length;
      for (const s of c.sends) client.send(s.data, { binary: Buffer.isBuffer(s.data) && !s.asText });
      const first = c.sends[0].data;
      const text = typeof first === 'string' ? first : null;
      const echo = input.join(' ');

      // A CONNECT with an object: the join fuzz again, through a hand-written packet.
      if (!c.joined && text !== null && /^40\{/.test(text) && c.sends.length === 1) {
        let auth: unknown = null;
        try {
          auth = JSON.parse(text.slice(2));
        } catch {
          auth = null;
        }
        const reply = await client.next((p) => p.startsWith('40{') || p.startsWith('44{'), REPLY_TIMEOUT_MS, mark);
        if (auth !== null && typeof auth === 'object' && !Array.isArray(auth)) {
          const verdict = joinVerdict(auth, { socketAuth: true, sessionState: (id) => sessionState(world, id), isValidAccessToken: (t) => isValidAccessToken(world, t) });
          if (reply === null) {
            if (Buffer.byteLength(text) <= SIO_BUFFER_LIMIT) add(client.isOpen ? 'no answer to CONNECT' : 'closed without an answer to CONNECT');
          } else if (reply.startsWith('40{')) {
            if (verdict.kind === 'reject') add(`ADMITTED an invalid join (expected ${verdict.codes.join(' or ')})`);
          } else {
            let refusal: any = null;
            try {
              refusal = JSON.parse(reply.slice(2));
            } catch {
              refusal = null;
            }
            for (const p of refusalProblems(refusal?.data?.code, refusal?.data?.message, verdict, echo)) add(p);
          }
        }
        return;
      }

      const ev = text !== null && c.sends.length === 1 ? eventOf(text) : null;
      const oversize = c.sends.some((s) => (Buffer.isBuffer(s.data) ? s.data.length : Buffer.byteLength(s.data)) > SIO_BUFFER_LIMIT);
      if (oversize) {
        // Over maxHttpBufferSize: the transport must close, and nothing may be accepted.
        await tally.until(() => !client.isOpen, REPLY_TIMEOUT_MS);
        if (client.isOpen) add(`a ${Buffer.byteLength(String(first))}-byte frame over the ${SIO_BUFFER_LIMIT}-byte limit left the connection open`);
        if (tally.mine.length > before.mine) add('ACCEPTED a message from an oversized frame');
        return;
      }
      if (c.joined && ev) {
        if (ev.event === 'send_message') {
          const data = ev.ackId !== '' && ev.args.length === 0 ? undefined : ev.args[0];
          const verdict = chatVerdict(data);
          await tally.until(() => tally.errors.length > before.errors || tally.mine.length > before.mine || tally.closed !== null, REPLY_TIMEOUT_MS);
          for (const p of chatProblems(verdict, data, tally, before, { name: `Eio ${i}` }, echo)) add(p);
          if (ev.ackId !== '' && !tally.closed) {
            const acked = await client.next((p) => /^43\d/.test(p), REPLY_TIMEOUT_MS, mark);
            if (!acked) add('no acknowledgement packet');
          }
        } else if (ev.event !== 'typing') {
          await tally.until(() => tally.errors.length > before.errors || tally.closed !== null, REPLY_TIMEOUT_MS);
          const errors = tally.errors.slice(before.errors);
          if (errors.length === 0) add(tally.closed ? `connection closed (${describe(tally.closed)}) instead of UNKNOWN_EVENT` : 'no UNKNOWN_EVENT');
          for (const p of errorProblems(errors, ['UNKNOWN_EVENT'], echo)) add(p);
        }
      }

      // Whatever the junk did, the connection must either be closed or still answer.
      // Inputs after which silence is right: an Engine.IO close, a namespace disconnect, a second CONNECT.
      const ended = text !== null && (text === '1' || /^41/.test(text) || (c.joined && /^40/.test(text)));
      if (client.isOpen && !ended) {
        const errorsBeforeProbe = tally.errors.length;
        const probe = `fuzz-probe-${i}`;
        client.send(c.joined ? `42${JSON.stringify([probe])}` : `40${JSON.stringify({ name: probe })}`);
        const probeMark = client.packets.length;
        const answered = c.joined
          ? await tally.until(() => tally.errors.slice(errorsBeforeProbe).some((e) => e?.message?.includes(probe)) || tally.closed !== null, REPLY_TIMEOUT_MS)
          : (await client.next((p) => p.startsWith('44{') || p.startsWith('40{'), REPLY_TIMEOUT_MS, probeMark)) !== null;
        // After a binary packet header the parser rightly waits for its attachments.
        const parserMayBeWaiting = c.sends.some((s) => typeof s.data === 'string' && /^4[56]/.test(s.data));
        if (!answered && client.isOpen && !parserMayBeWaiting) add('the connection stopped answering after this input');
      }
      // Every error the connection drew must be one of the contract's input codes.
      for (const p of errorProblems(
        tally.errors.slice(before.errors).filter((e) => e?.code !== 'UNKNOWN_EVENT'),
        [...REALTIME_INPUT_CODES],
        echo,
      )) {
        if (!p.includes('error events for one input')) add(p);
      }
      if (!c.joined && tally.mine.length > 0) add('a message sent before joining was ACCEPTED');
    } finally {
      client.close();
    }
  });
}

// --- raw /ws: identification ---------------------------------------------------------------------

interface RawTally {
  client: RawClient;
  tally: Tally;
  joined: () => any;
}

function watchRaw(client: RawClient, userId: string | null, world: World): RawTally {
  const tally = new Tally();
  let welcome: any;
  client.ws.on('message', (raw: WebSocket.RawData) => {
    let frame: any;
    try {
      frame = JSON.parse((raw as Buffer).toString());
    } catch {
      tally.errors.push({ code: 'NOT_JSON_FROM_SERVER', message: (raw as Buffer).toString().slice(0, 200) });
      tally.notify();
      return;
    }
    if (frame?.event === 'error') tally.errors.push(frame.data);
    if (frame?.event === 'session_joined') welcome = frame.data;
    if (frame?.event === 'message_received' && userId !== null && frame.data?.user_id === userId) {
      tally.mine.push(frame.data);
      world.ledger.record(frame.data);
    }
    tally.notify();
  });
  void client.closed.then(({ code, reason }) => {
    tally.closed = { code, reason };
    tally.notify();
  });
  return { client, tally, joined: () => welcome };
}

/** A frame that is not a JSON object, within the size limit: INVALID_PAYLOAD before or after joining. */
function nonObjectFrame(rng: Rng): EioSend {
  const frame = anyNonObjectFrame(rng);
  if (typeof frame.data !== 'string') return frame;
  try {
    const value = JSON.parse(frame.data);
    // Malformed-JSON generators sometimes produce a valid object: that would be an identity.
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return { data: '[]' };
  } catch {
    // not JSON: exactly what we want
  }
  return frame;
}

function anyNonObjectFrame(rng: Rng): EioSend {
  return rng.choose<EioSend>([
    [30, () => ({ data: malformedJsonText(rng, () => ({ name: 'x' })) })],
    [20, () => ({ data: rng.pick(['[]', '1', '"x"', 'null', 'true', '[{"name":"a"}]', deepArrayText(7000)]) })],
    [20, () => ({ data: Buffer.from(Array.from({ length: rng.int(0, 300) }, () => rng.int(0, 255))) })],
    [10, () => ({ data: Buffer.from(JSON.stringify({ name: 'binary identity' })) })],
  ]);
}

interface RawJoinCase {
  seg: string;
  pathId: string;
  query?: string;
  preFrames: EioSend[];
  identity: string;
}

function rawJoinCase(rng: Rng, world: World): RawJoinCase {
  const active = () => rng.pick([...world.eventSessions, ...world.handshakeSessions]);
  const { seg, pathId } = rng.choose<{ seg: string; pathId: string }>([
    [55, () => ((id) => ({ seg: id, pathId: id }))(active())],
    [8, () => ({ seg: world.endedSession, pathId: world.endedSession })],
    [15, () => ((s) => ({ seg: encodeSegment(s), pathId: Buffer.from(s).toString() }))(junkString(rng, 300))],
    [4, () => ((s) => ({ seg: s, pathId: s }))(rng.pick(['%zz', '%', '%E0%A4%A', '%00']))],
    [4, () => ((id) => ({ seg: id.toUpperCase(), pathId: id.toUpperCase() }))(active())],
    [4, () => ((id) => ({ seg: id, pathId: id }))(seededUuid(rng))],
  ]);
  const query = rng.choose<string | undefined>([
    [85, () => undefined],
    [10, () => `token=${encodeSegment(badToken(rng, world.kit))}`],
    [5, () => `token=${encodeSegment(rng.pick(world.kit.guest))}`],
  ]);
  const preFrames = Array.from(
    {
      length: rng.choose<number>([
        [60, () => 0],
        [30, () => 1],
        [10, () => 2],
      ]),
    },
    () => nonObjectFrame(rng),
  );
  const identityObject = () => junkAuth(rng, world, rng.bool(0.1));
  const identity = rng.choose<string>([
    [50, () => JSON.stringify(identityObject())],
    [15, () => JSON.stringify({ event: 'join_session', data: rng.bool(0.8) ? identityObject() : junkValue(rng, 1, 2000) })],
    [10, () => JSON.stringify({ event: rng.pick(['send_message', 'typing', 'leave_session', junkString(rng, 50), 0, null]), data: identityObject() })],
    [5, () => JSON.stringify({ name: 'x'.repeat(rng.pick([16_300, 16_400, 20_000])) })],
    [5, () => JSON.stringify({ ...pollutionPayload(rng), name: 'Polluter' })],
  ]);
  return { seg, pathId, query, preFrames, identity };
}

function decodePathId(seg: string): string {
  try {
    return Buffer.from(decodeURIComponent(seg)).toString();
  } catch {
    return seg;
  }
}

export async function runRawJoins(world: World, rng: Rng, total: number, concurrency: number): Promise<void> {
  const cases = Array.from({ length: total }, () => rawJoinCase(rng, world));
  await pool(cases, concurrency, async (c, i) => {
    count(world, 'raw ws identification');
    const input = { path: `/ws/${c.seg}${c.query ? `?${c.query}` : ''}`, preFrames: c.preFrames.map((f) => (Buffer.isBuffer(f.data) ? f.data : f.data)), identity: c.identity };
    const add = (p: string) => world.findings.add('raw ws identification', i, input, p);
    let client: RawClient;
    try {
      client = new RawClient(new WebSocket(`${world.wsUrl}/ws/${c.seg}${c.query ? `?${c.query}` : ''}`));
      await client.opened;
    } catch (err) {
      // Node's own HTTP parser refuses a request line over its header limit (431) before any
      // Séance code runs, exactly as on the REST side.
      if (/HTTP 431$/.test((err as Error).message)) return;
      add(`upgrade failed: ${(err as Error).message}`);
      return;
    }
    const { tally, joined } = watchRaw(client, null, world);
    const echo = `${c.seg} ${decodePathId(c.seg)} ${c.query ?? ''} ${c.identity} ${c.preFrames.map((f) => f.data.toString()).join(' ')}`;
    try {
      for (const frame of c.preFrames) {
        const before = tally.errors.length;
        client.ws.send(frame.data, { binary: Buffer.isBuffer(frame.data) });
        await tally.until(() => tally.errors.length > before || tally.closed !== null, REPLY_TIMEOUT_MS);
        const errors = tally.errors.slice(before);
        if (tally.closed) {
          add(`closed (${describe(tally.closed)}) by a non-object frame before identifying`);
          return;
        }
        if (errors.length === 0) add('no INVALID_PAYLOAD for a non-object frame before identifying');
        for (const p of errorProblems(errors, ['INVALID_PAYLOAD'], echo)) add(p);
      }
      const before = tally.errors.length;
      client.send(c.identity);
      await tally.until(() => joined() !== undefined || tally.closed !== null, REPLY_TIMEOUT_MS);
      if (Buffer.byteLength(c.identity) > RAW_FRAME_LIMIT) {
        if (tally.closed?.code !== 1009) add(`identity frame of ${Buffer.byteLength(c.identity)} bytes: ${joined() ? 'joined' : `closed ${describe(tally.closed)}`}, expected close 1009`);
        return;
      }
      const frame = JSON.parse(c.identity) as Record<string, unknown>;
      const body = firstFrameBody(frame);
      const tokenInQuery = c.query ? decodeURIComponent(c.query.slice('token='.length)) : undefined;
      const verdict: Verdict =
        body === null
          ? { kind: 'reject', codes: ['VALIDATION_ERROR'] }
          : joinVerdict(body.body, {
              socketAuth: false,
              sessionState: () => 'missing',
              pathSession: sessionState(world, decodePathId(c.seg)),
              queryToken: tokenInQuery,
              isValidAccessToken: (t) => isValidAccessToken(world, t),
            });
      if (joined() !== undefined) {
        for (const p of joinedProblems(joined(), (body?.body ?? {}) as Record<string, unknown>, verdict, world, tokenInQuery)) add(p);
        return;
      }
      if (!tally.closed) {
        add('neither session_joined nor a close within 5 s');
        return;
      }
      const errors = tally.errors.slice(before);
      if (errors.length !== 1) add(`${errors.length} error frames before the close ${tally.closed.code}`);
      const error = errors[0];
      for (const p of refusalProblems(error?.code, error?.message, verdict, echo)) add(p);
      const expectedClose = error && WS_CLOSE_OF_CODE[error.code];
      if (expectedClose !== undefined && tally.closed.code !== expectedClose) add(`${error.code} closed with ${tally.closed.code}, expected ${expectedClose}`);
    } finally {
      client.close();
    }
  });
}

// --- raw /ws: frames on a joined connection ------------------------------------------------------

export interface RawFrameCase {
  frames: Array<EioSend & { fragments?: number }>;
  kind: 'junk' | 'valid';
  text?: string;
}

/** A send_message frame whose byte length is exactly `bytes`. */
function frameOfSize(bytes: number, unit = 'a'): string {
  const head = '{"event":"send_message","data":{"message":"';
  const tail = '"}}';
  const room = bytes - Buffer.byteLength(head + tail);
  const unitBytes = Buffer.byteLength(unit);
  const body = unit.repeat(Math.floor(room / unitBytes)) + 'a'.repeat(room % unitBytes);
  return head + body + tail;
}

function rawFrameCase(rng: Rng, tag: string, n: number): RawFrameCase {
  const frame = (data: string | Buffer, extra: Partial<EioSend & { fragments?: number }> = {}) => ({ kind: 'junk' as const, frames: [{ data, ...extra }] });
  return rng.choose<RawFrameCase>([
    [25, () => frame(JSON.stringify({ event: 'send_message', data: junkChatPayload(rng, 14_000) }))],
    [10, () => frame(JSON.stringify({ event: 'send_message', data: { message: junkString(rng, 20_000), user_name: rng.bool(0.3) ? junkString(rng, 100) : 'Impostor' } }))],
    [10, () => frame(malformedJsonText(rng, () => ({ event: 'send_message', data: { message: 'x' } })))],
    [6, () => frame(rng.pick(['[]', '1', '"x"', 'null', 'true', '-0', '[{"event":"send_message"}]', deepArrayText(8000), deepArrayText(10_000)]))],
    [
      5,
      () =>
        frame(
          rng.pick([deepObjectText(3000), deepObjectText(3000, 'event'), `{"event":"send_message","data":${deepObjectText(3000, rng.pick(['a', 'message']))}}`, `{"event":${deepArrayText(7000)}}`]),
        ),
    ],
    [8, () => frame(Buffer.from(rng.bool() ? JSON.stringify({ event: 'send_message', data: { message: 'binary' } }) : randomString(rng, 100)))],
    [3, () => frame(badUtf8(), { asText: true })],
    [
      6,
      () =>
        frame(
          JSON.stringify({
            event: rng.choose<unknown>([
              [70, () => uniqueUnknownEvent(rng)],
              [30, () => junkValue(rng, 1, 100)],
            ]),
            data: junkValue(rng, 1, 2000),
          }),
        ),
    ],
    [3, () => frame(JSON.stringify({ event: 'join_session', data: { name: 'Again', user_id: 'again' } }))],
    [3, () => frame(JSON.stringify({ event: 'typing', data: junkValue(rng, 1, 2000) }))],
    [5, () => frame(frameOfSize(rng.pick([16_383, 16_384, 16_385, 16_400, 16_000]), rng.pick(['a', 'é', '😀', ' '])))],
    [3, () => frame(JSON.stringify({ ...pollutionPayload(rng), event: 'send_message', data: { ...pollutionPayload(rng), message: rng.bool() ? junkString(rng, 100) : undefined } }))],
    [
      2,
      () =>
        frame(
          rng.pick([
            '{"event":"send_message","data":{"message":"\\ud800"}}',
            '{"event":"send_message","data":{"message":"a\\u0000b"}}',
            '{"event":"send_message","data":{"message":"\\udc00\\ud800 x"}}',
            '{"event":"send_message","data":{"message":"\\u0000"}}',
          ]),
        ),
    ],
    [2, () => frame(JSON.stringify({ event: 'send_message', data: { message: validText(rng, tag, n) } }), { fragments: rng.int(2, 5) })],
    [1, () => frame(frameOfSize(rng.pick([12_000, 20_000])), { fragments: rng.int(2, 6) })],
    [
      12,
      () =>
        ((text) => ({ kind: 'valid' as const, text, frames: [{ data: JSON.stringify({ event: 'send_message', data: { message: text, user_name: rng.bool(0.3) ? 'Impostor' : undefined } }) }] }))(
          validText(rng, tag, n),
        ),
    ],
  ]);
}

type FrameExpectation = { kind: 'chat'; verdict: Verdict; data: unknown } | { kind: 'error'; codes: string[] } | { kind: 'silent' } | { kind: 'close'; codes: number[] };

function frameExpectation(send: EioSend): FrameExpectation {
  const bytes = Buffer.isBuffer(send.data) ? send.data.length : Buffer.byteLength(send.data);
  if (bytes > RAW_FRAME_LIMIT) return { kind: 'close', codes: [1009] };
  if (Buffer.isBuffer(send.data) && !send.asText) return { kind: 'error', codes: ['INVALID_PAYLOAD'] };
  if (Buffer.isBuffer(send.data)) return { kind: 'close', codes: [1007] };
  let frame: unknown;
  try {
    frame = JSON.parse(send.data);
  } catch {
    return { kind: 'error', codes: ['INVALID_PAYLOAD'] };
  }
  if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) return { kind: 'error', codes: ['INVALID_PAYLOAD'] };
  const { event, data } = frame as { event?: unknown; data?: unknown };
  if (event === 'send_message') return { kind: 'chat', verdict: chatVerdict(data), data };
  if (event === 'typing') return { kind: 'silent' };
  if (event === 'leave_session') return { kind: 'close', codes: [1000] };
  if (event === 'join_session' || typeof event !== 'string') return { kind: 'error', codes: ['INVALID_PAYLOAD'] };
  return { kind: 'error', codes: ['UNKNOWN_EVENT'] };
}

function sendFragmented(ws: WebSocket, text: string, parts: number): void {
  const size = Math.ceil(text.length / parts);
  for (let i = 0; i < parts; i++) ws.send(text.slice(i * size, (i + 1) * size), { fin: i === parts - 1, binary: false });
}

/** Fixed raw frames run on every seed (see corpusRestCases). */
export function corpusRawFrames(): RawFrameCase[] {
  const frame = (data: string | Buffer, extra: Partial<EioSend> = {}): RawFrameCase => ({ kind: 'junk', frames: [{ data, ...extra }] });
  return [
    frame('{"event":"send_message","data":{"message":"\\u0000"}}'),
    frame('{"event":"send_message","data":{"message":"ghost\\u0000"}}'),
    frame(JSON.stringify({ event: 'send_message', data: { message: '\u0000'.repeat(500) } })),
    frame('{"event":"send_message","data":{"message":"\\ud800"}}'),
    frame(deepArrayText(8000)),
    frame(deepArrayText(10_000)),
    frame(deepObjectText(3000)),
    frame(deepObjectText(10_000)),
    frame(`{"event":"send_message","data":${deepObjectText(3000, 'message')}}`),
    frame(frameOfSize(16_384)),
    frame(frameOfSize(16_385)),
    frame(frameOfSize(16_384, 'é')),
    frame(Buffer.from('{"event":"send_message","data":{"message":"binary"}}')),
    frame(badUtf8(), { asText: true }),
    frame('{"event":"send_message","data":{"message":"hi"},"__proto__":{"event":"leave_session"}}'),
    frame('{"event":"__proto__"}'),
    frame('{"event":"send_message","data":null}'),
    frame('{"event":"send_message"}'),
    frame('{"event":"join_session","data":{"name":"Again"}}'),
    frame('{"event":"send_message","data":{"message":"a'),
  ];
}

export async function runRawFrames(world: World, rng: Rng, slots: number, perSlot: number, opts: { surface?: string; fixed?: RawFrameCase[] } = {}): Promise<void> {
  const surface = opts.surface ?? 'raw ws frames';
  await Promise.all(
    Array.from({ length: opts.fixed ? 1 : slots }, async (_, k) => {
      const slotRng = rng.fork(`raw-slot-${k}`);
      const sessionId = world.eventSessions[(k + 1) % world.eventSessions.length];
      const tag = opts.fixed ? 'raw-corpus' : `raw-${k}`;
      const me = { userId: tag, name: `Råw ${k}` };
      const join = async () => watchRaw(await RawClient.join(world.wsUrl, sessionId, { user_id: me.userId, name: me.name }), me.userId, world);
      const cases = opts.fixed ?? Array.from({ length: perSlot }, (_, n) => rawFrameCase(slotRng, tag, n));
      let conn: RawTally | null = await join();
      try {
        for (let n = 0; n < cases.length && conn; n++) {
          const c = cases[n];
          const index = k * perSlot + n;
          const { client, tally } = conn;
          const send = c.frames[0];
          const input = send.asText ? `<text frame, bytes ${(send.data as Buffer).toString('hex')}>` : send.data;
          const add = (p: string) => world.findings.add(surface, index, input, p);
          count(world, surface);
          const expectation: FrameExpectation = c.kind === 'valid' ? { kind: 'chat', verdict: { kind: 'accept' }, data: { message: c.text } } : frameExpectation(send);
          const before = { errors: tally.errors.length, mine: tally.mine.length };
          if (send.fragments && typeof send.data === 'string') sendFragmented(client.ws, send.data, send.fragments);
          else client.ws.send(send.data, { binary: Buffer.isBuffer(send.data) && !send.asText });
          const echo = typeof send.data === 'string' ? send.data : send.data.toString('latin1');

          if (expectation.kind === 'close') {
            await tally.until(() => tally.closed !== null || tally.errors.length > before.errors || tally.mine.length > before.mine, REPLY_TIMEOUT_MS);
            if (!tally.closed || !expectation.codes.includes(tally.closed.code ?? 0)) {
              add(
                `expected close ${expectation.codes.join(' or ')}, got ${tally.closed ? `close ${tally.closed.code}` : describe(tally.errors.slice(before.errors)[0] ?? tally.mine[before.mine] ?? 'nothing')}`,
              );
            }
          } else if (expectation.kind === 'chat') {
            await tally.until(() => tally.errors.length > before.errors || tally.mine.length > before.mine || tally.closed !== null, REPLY_TIMEOUT_MS);
            for (const p of chatProblems(expectation.verdict, expectation.data, tally, before, me, echo)) add(p);
          } else if (expectation.kind === 'error') {
            await tally.until(() => tally.errors.length > before.errors || tally.closed !== null, REPLY_TIMEOUT_MS);
            const errors = tally.errors.slice(before.errors);
            if (errors.length === 0)
              add(tally.closed ? `connection closed (${describe(tally.closed)}) instead of ${expectation.codes.join(' or ')}` : `no ${expectation.codes.join(' or ')} within ${REPLY_TIMEOUT_MS} ms`);
            for (const p of errorProblems(errors, expectation.codes, echo)) add(p);
          } else {
            const probe = `fuzz-probe-${index}`;
            client.send({ event: probe });
            await tally.until(() => tally.errors.slice(before.errors).some((e) => e?.message?.includes(probe)) || tally.closed !== null, REPLY_TIMEOUT_MS);
            const errors = tally.errors.slice(before.errors);
            if (!errors.some((e) => e?.message?.includes(probe))) add(tally.closed ? `connection closed (${describe(tally.closed)})` : 'no reply to the probe after typing');
            const others = errors.filter((e) => !e?.message?.includes(probe));
            if (others.length > 0) add(`typing drew errors: ${others.map((e) => e?.code).join(', ')}`);
          }

          if (tally.closed) {
            client.close();
            try {
              conn = await join();
            } catch (err) {
              add(`could not join again afterwards: ${(err as Error).message}`);
              conn = null;
            }
          }
        }
      } finally {
        conn?.client.close();
      }
    }),
  );
}

/**
 * A participant name with NUL in it, on both transports: what others see (message_received)
 * and what history keeps must be the name the join announced, or the join must be refused.
 */
export async function runNameCorpus(world: World): Promise<void> {
  const surface = 'corpus';
  const names = ['Nul\u0000Name', 'Lone \ud800 Surrogate'];
  for (const [n, name] of names.entries()) {
    count(world, surface);
    const sessionId = world.eventSessions[n % world.eventSessions.length];
    const userId = `corpus-name-${n}`;
    let raw: RawClient;
    try {
      raw = await RawClient.join(world.wsUrl, sessionId, { user_id: userId, name });
    } catch (err) {
      // Refusing the name is fine, if it is refused as bad input.
      const message = (err as Error).message;
      if (!/4000/.test(message)) world.findings.add(surface, n, { name }, `join with this name failed: ${message}`);
      continue;
    }
    try {
      const announced = raw.inbox.of('session_joined')[0]?.you?.name;
      const text = `hello from corpus name ${n}`;
      raw.send({ event: 'send_message', data: { message: text } });
      const received = await raw.inbox.waitFor('message_received', (m) => m.user_id === userId, REPLY_TIMEOUT_MS).catch(() => null);
      if (!received) {
        world.findings.add(surface, n, { name }, `no message_received for a valid message (errors: ${describe(raw.inbox.of('error'))})`);
        continue;
      }
      world.ledger.record(received);
      // A lone surrogate may come back as U+FFFD (UTF-8 cannot carry it); anything else is a different name.
      if (received.user_name !== announced && normalizeStored(received.user_name ?? '') !== normalizeStored(announced ?? ''))
        world.findings.add(surface, n, { name }, `joined as ${describe(announced)} but message_received says user_name ${describe(received.user_name)}`);
    } finally {
      raw.close();
    }
  }
}
