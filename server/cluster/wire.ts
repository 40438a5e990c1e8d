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
/** A Socket.IO packet: EVENT packets carry `[event, payload…]`. */
const packet = Joi.object({ type: Joi.number().integer().min(0).max(6).required(), data: Joi.array(), nsp: text, id: Joi.number().integer() }).unknown(true);

/** `data` of each message type the adapter reads (socket.io-adapter's cluster-adapter.js). */
const DATA_KEYS: Partial<Record<MessageType, Joi.ObjectSchema>> = {
  [MessageType.BROADCAST]: Joi.object({ packet: packet.required(), opts: options.required(), requestId: text }),
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

const envelope = Joi.object({
  uid: text.required(),
  nsp: text,
  type: Joi.number()
    .integer()
    .valid(...Object.values(MessageType).filter((t) => typeof t === 'number'))
    .required(),
  data: Joi.any(),
  v: Joi.number(),
}).unknown(true);

/** Why a message was dropped, for the log: the first problem joi found. */
export type Verdict<T> = { ok: true; message: T } | { ok: false; reason: string };

function check<T>(value: unknown, isResponse: boolean): Verdict<T> {
  const head = envelope.validate(value);
  if (head.error) return { ok: false, reason: head.error.message };
  const message = head.value as { type: MessageType; nsp?: string; data?: unknown };
  if (isResponse && !RESPONSE_TYPES.has(message.type)) return { ok: false, reason: `type ${message.type} is not a response` };
  if (!isResponse && message.nsp === undefined && !RESPONSE_TYPES.has(message.type)) return { ok: false, reason: '"nsp" is required' };
  const data = DATA.get(message.type);
  if (data) {
    const body = data.validate(message.data);
    if (body.error) return { ok: false, reason: `data: ${body.error.message}` };
  }
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
