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
 *
 * When the publishing connection comes back after losing Redis (a restart, a Sentinel failover
 * to the promoted replica), the other nodes' subscriptions are being restored at the same
 * moment; Pub/Sub delivers only to subscriptions that exist. So what was published meanwhile,
 * and what is published in the first RESUBSCRIBE_GRACE_MS after, leaves once that time is up:
 * late rather than to nobody.
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
/** How long publishes wait after the connection is back for the other nodes to resubscribe. */
export const RESUBSCRIBE_GRACE_MS = 1_000;
/** The most publishes one Redis message carries (a backlog after an outage leaves in several). */
const MAX_BATCH = 200;

export function batchRoomPublishes(adapter: unknown, pub: Redis, logger: Logger): void {
  const target = adapter as ShardedAdapterInternals;
  /** Per channel, in order; MessagePack (binary) payloads cannot join a JSON array and leave alone. */
  const pending = new Map<string, Array<string | Buffer>>();
  let scheduled = false;
  let timer: NodeJS.Timeout | null = null;
  let heldUntil = 0;
  let lost = false;

  const send = (channel: string, payload: string | Buffer) => {
    pub.spublish(channel, payload).catch((err: Error) => logger.warn({ err: { message: err.message }, channel }, 'could not publish to the cluster'));
  };
  const sendBatch = (channel: string, batch: string[]) => {
    if (batch.length > 0) send(channel, batch.length === 1 ? batch[0] : `[${batch.join(',')}]`);
  };
  const flush = () => {
    scheduled = false;
    // Redis is away: everything waits for it (the 'ready' handler flushes).
    if (pub.status !== 'ready') return;
    const wait = heldUntil - Date.now();
    if (wait > 0) {
      timer ??= setTimeout(() => {
        timer = null;
        flush();
      }, wait);
      return;
    }
    for (const [channel, payloads] of pending) {
      let batch: string[] = [];
      for (const payload of payloads) {
        if (typeof payload !== 'string' || batch.length === MAX_BATCH) {
          sendBatch(channel, batch);
          batch = [];
        }
        if (typeof payload === 'string') batch.push(payload);
        else send(channel, payload);
      }
      sendBatch(channel, batch);
    }
    pending.clear();
  };

  pub.on('close', () => (lost = true));
  pub.on('ready', () => {
    if (!lost) return;
    lost = false;
    heldUntil = Date.now() + RESUBSCRIBE_GRACE_MS;
    flush();
  });

  target.doPublish = (message) => {
    const channel = target.computeChannel(message);
    const payload = target.encode(message);
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
