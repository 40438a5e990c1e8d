/**
 * How the sharded Redis adapter's broadcasts leave this node.
 *
 * A message causes three broadcasts to its session's room in one tick (message_received,
 * spirit_thinking, spirit_response). Published one by one, each is a Redis message that every
 * node holding the room must read, parse and dispatch. Here the publishes a tick makes to one
 * channel leave as one Redis message, a JSON array of them in order, which the receiving side
 * unpacks. The adapter also waits for Redis to confirm a publish before it delivers the event
 * to this node's own sockets; here it does not wait (as the classic Redis adapter does not):
 * local listeners get the event at once, and a failed publish is logged.
 *
 * Both ends must run this code: a node without it would drop the batches it cannot parse.
 */
import type { ClusterMessage } from 'socket.io-adapter';
import type Redis from 'ioredis';
import type { Logger } from '../logger';

/** The sharded adapter's own methods this module builds on (plain methods of its class). */
interface ShardedAdapterInternals {
  doPublish(message: ClusterMessage): Promise<string>;
  computeChannel(message: ClusterMessage): string;
  encode(message: ClusterMessage): string | Buffer;
  onRawMessage(raw: Buffer, channel: Buffer | string): void;
  onMessage(message: ClusterMessage): unknown;
}

const JSON_ARRAY = 0x5b; // '['

export function batchRoomPublishes(adapter: unknown, pub: Redis, logger: Logger): void {
  const target = adapter as ShardedAdapterInternals;
  const pending = new Map<string, string[]>();
  let scheduled = false;

  const send = (channel: string, payload: string | Buffer) => {
    pub.spublish(channel, payload).catch((err: Error) => logger.warn({ err: { message: err.message }, channel }, 'could not publish to the cluster'));
  };
  const flush = () => {
    scheduled = false;
    for (const [channel, payloads] of pending) send(channel, payloads.length === 1 ? payloads[0] : `[${payloads.join(',')}]`);
    pending.clear();
  };

  target.doPublish = (message) => {
    const channel = target.computeChannel(message);
    const payload = target.encode(message);
    if (typeof payload !== 'string') {
      // MessagePack (binary data) cannot join a JSON array: what is queued goes first, in order.
      flush();
      send(channel, payload);
      return Promise.resolve('');
    }
    const queued = pending.get(channel);
    if (queued) queued.push(payload);
    else pending.set(channel, [payload]);
    if (!scheduled) {
      scheduled = true;
      process.nextTick(flush);
    }
    return Promise.resolve('');
  };

  const onRawMessage = target.onRawMessage.bind(target);
  target.onRawMessage = (raw, channel) => {
    if (raw[0] !== JSON_ARRAY) return onRawMessage(raw, channel);
    let batch: unknown;
    try {
      batch = JSON.parse(raw.toString());
    } catch {
      return;
    }
    if (Array.isArray(batch)) for (const message of batch) target.onMessage(message as ClusterMessage);
  };
}
