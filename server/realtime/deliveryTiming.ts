/**
 * Times every session event from its arrival at this node to its send to this node's
 * clients (seance_delivery_seconds), at the two points where the adapter applies a
 * broadcast here: `broadcast` for events this node emits, `onMessage` for events another
 * node published through Redis. Installed after RawHub, so the time covers the raw /ws
 * clients' frames as well as the Socket.IO sockets' packets.
 *
 * Relies on the same adapter methods as RawHub (plain methods of socket.io-adapter's classes).
 */
import { performance } from 'node:perf_hooks';
import { MessageType, type Adapter, type BroadcastOptions, type ClusterMessage } from 'socket.io-adapter';
import type { Metrics } from '../metrics';

type HookableAdapter = Adapter & {
  uid?: string;
  onMessage?: (message: ClusterMessage, offset?: string) => unknown;
};

export function timeDeliveries(adapter: HookableAdapter, metrics: Metrics): void {
  const broadcast = adapter.broadcast.bind(adapter);
  adapter.broadcast = (packet: unknown, opts: BroadcastOptions) => {
    const arrived = performance.now();
    broadcast(packet, opts);
    metrics.delivered((performance.now() - arrived) / 1000);
  };
  const onMessage = adapter.onMessage?.bind(adapter);
  if (!onMessage) return;
  adapter.onMessage = (message, offset) => {
    if (message.type !== MessageType.BROADCAST || message.uid === adapter.uid) return onMessage(message, offset);
    const arrived = performance.now();
    const result = onMessage(message, offset);
    metrics.delivered((performance.now() - arrived) / 1000);
    return result;
  };
}
