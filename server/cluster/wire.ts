/**
 * What a node accepts from the others over Redis Pub/Sub, checked here and nowhere else. Any
 * client of the Redis server can publish on the nodes' channels, and a node of another release
 * may send what this one does not know: a message that does not have the shape its reader
 * relies on is dropped (the caller logs it), so that it can never throw inside ioredis's
 * handler, where an exception ends the process.
 */
import Joi from 'joi';
import { MessageType, type ClusterMessage, type ClusterResponse } from 'socket.io-adapter';

const text = Joi.string().max(1024);
const names = Joi.array().items(text).max(10_000);

/** socket.io-adapter's encoded broadcast options. */
const options = Joi.object({ rooms: names.required(), except: names.required(), flags: Joi.object().unknown(true).required() }).unknown(true);

/** `data` of each message type the adapter reads (socket.io-adapter's cluster-adapter.js). */
const DATA_KEYS: Partial<Record<MessageType, Joi.ObjectSchema>> = {
  // BROADCAST is checked by hand below (broadcastProblem).
  [MessageType.SOCKETS_JOIN]: Joi.object({ opts: options.required(), rooms: names.required() }),
  [MessageType.SOCKETS_LEAVE]: Joi.object({ opts: options.required(), rooms: names.required() }),
  [MessageType.DISCONNECT_SOCKETS]: Joi.object({ opts: options.required(), close: Joi.boolean() }),
  [MessageType.FETCH_SOCKETS]: Joi.object({ opts: options.required(), requestId: text.required() }),
  [MessageType.SERVER_SIDE_EMIT]: Joi.object({ packet: Joi.array().min(1).required(), requestId: text }),
  [MessageType.BROADCAST_CLIENT_COUNT]: Joi.object({ requestId: text.required(), clientCount: Joi.number().integer().min(0).required() }),
  [MessageType.BROADCAST_ACK]: Joi.object({ requestId: text.required(), packet: Joi.any() }),
  [MessageType.FETCH_SOCKETS_RESPONSE]: Joi.object({ requestId: text.required(), sockets: Joi.array().required() }),
  [MessageType.SERVER_SIDE_EMIT_RESPONSE]: Joi.object({ requestId: text.required(), packet: Joi.any() }),
};

const DATA = new Map(Object.entries(DATA_KEYS).map(([type, schema]) => [Number(type) as MessageType, schema.unknown(true).required()]));

const RESPONSE_TYPES = new Set([MessageType.BROADCAST_CLIENT_COUNT, MessageType.BROADCAST_ACK, MessageType.FETCH_SOCKETS_RESPONSE, MessageType.SERVER_SIDE_EMIT_RESPONSE]);

const MESSAGE_TYPES = new Set(Object.values(MessageType).filter((t) => typeof t === 'number'));

const isText = (value: unknown): value is string => typeof value === 'string' && value.length <= 1024;
const isNames = (value: unknown) => Array.isArray(value) && value.length <= 10_000 && value.every(isText);
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isInteger = (value: unknown): value is number => Number.isInteger(value);

/**
 * A broadcast, checked by hand: it is nearly every message a node receives (each chat message
 * is three), and joi's generic walk over it cost an eighth of a busy node's CPU. The rules
 * are those of the joi schemas of the other types (names at most 1,024 characters, 10,000 per list).
 */
function broadcastProblem(data: unknown): string | null {
  if (!isRecord(data)) return 'data: must be an object';
  const { packet, opts, requestId } = data;
  if (!isRecord(packet)) return 'data: "packet" must be an object';
  if (!isInteger(packet.type) || packet.type < 0 || packet.type > 6) return 'data: "packet.type" must be a packet type';
  if (packet.data !== undefined && !Array.isArray(packet.data)) return 'data: "packet.data" must be an array';
  if (packet.nsp !== undefined && !isText(packet.nsp)) return 'data: "packet.nsp" must be a string';
  if (packet.id !== undefined && !isInteger(packet.id)) return 'data: "packet.id" must be an integer';
  if (!isRecord(opts)) return 'data: "opts" must be an object';
  if (!isNames(opts.rooms) || !isNames(opts.except)) return 'data: "opts.rooms" and "opts.except" must be lists of names';
  if (!isRecord(opts.flags)) return 'data: "opts.flags" must be an object';
  if (requestId !== undefined && !isText(requestId)) return 'data: "requestId" must be a string';
  return null;
}

/** Why a message was dropped, for the log: the first problem found. */
export type Verdict<T> = { ok: true; message: T } | { ok: false; reason: string };

function check<T>(value: unknown, isResponse: boolean): Verdict<T> {
  if (!isRecord(value)) return { ok: false, reason: 'not an object' };
  const { uid, nsp, type, v } = value;
  if (!isText(uid)) return { ok: false, reason: '"uid" is required' };
  if (nsp !== undefined && !isText(nsp)) return { ok: false, reason: '"nsp" must be a string' };
  if (v !== undefined && typeof v !== 'number') return { ok: false, reason: '"v" must be a number' };
  if (typeof type !== 'number' || !MESSAGE_TYPES.has(type)) return { ok: false, reason: '"type" is not a message type' };
  if (isResponse && !RESPONSE_TYPES.has(type)) return { ok: false, reason: `type ${type} is not a response` };
  if (!isResponse && nsp === undefined && !RESPONSE_TYPES.has(type)) return { ok: false, reason: '"nsp" is required' };
  if (type === (MessageType.BROADCAST as number)) {
    const problem = broadcastProblem(value.data);
    return problem ? { ok: false, reason: problem } : { ok: true, message: value as T };
  }
  const body = DATA.get(type)?.validate(value.data);
  if (body?.error) return { ok: false, reason: `data: ${body.error.message}` };
  return { ok: true, message: value as T };
}

/** One message of the adapter's channels (a room's, the namespace's). */
export const readClusterMessage = (value: unknown): Verdict<ClusterMessage> => check<ClusterMessage>(value, false);

/** One message of this node's response channel. */
export const readClusterResponse = (value: unknown): Verdict<ClusterResponse> => check<ClusterResponse>(value, true);

/** A rate limit lease request or answer, between two nodes (services/rateLimitLeases.ts). */
export type LeaseMessage = { type: 'revoke'; key: string; from: string; id: string } | { type: 'released'; id: string };

const leaseMessage = Joi.alternatives(
  Joi.object({ type: Joi.valid('revoke').required(), key: text.required(), from: text.required(), id: text.required() }),
  Joi.object({ type: Joi.valid('released').required(), id: text.required() }),
);

/** A lease message as text off its channel, or why it is not one. */
export function readLeaseMessage(raw: string): Verdict<LeaseMessage> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const { error } = leaseMessage.validate(value);
  return error ? { ok: false, reason: error.message } : { ok: true, message: value as LeaseMessage };
}
