/**
 * The library internals the server relies on, checked once at start: a dependency upgrade
 * that moves one makes the server refuse to start with a message naming it, instead of
 * silently losing batching, raw delivery, write coalescing, broken-connection handling or
 * pool metrics. The realtime libraries are pinned to exact versions in package.json;
 * test/realtime/extensions/internals.test.ts runs this check.
 */
import path from 'node:path';
import { Socket as EngineSocket } from 'engine.io';
import { Adapter, ClusterAdapter } from 'socket.io-adapter';
import { WebSocket } from 'ws';
/* eslint-disable @typescript-eslint/no-require-imports -- library modules that are no public entry point */
const { Pool } = require('sequelize-pool') as { Pool: { prototype: object } };
const AbstractConnectionManager = require('sequelize/lib/dialects/abstract/connection-manager') as { prototype: object };
const PostgresConnectionManager = require('sequelize/lib/dialects/postgres/connection-manager') as { prototype: object };
/* eslint-enable @typescript-eslint/no-require-imports */

interface Internal {
  what: string;
  holds: () => boolean;
}

const isMethod = (target: object, name: string) => typeof (target as Record<string, unknown>)[name] === 'function';
const hasGetter = (target: object, name: string) => typeof Object.getOwnPropertyDescriptor(target, name)?.get === 'function';
const sourceOf = (target: object, name: string) => String(Reflect.get(target, name));

/** `ws` keeps the TCP socket as `_socket`, assigned in `setSocket` (engineWrites.ts corks it). */
function wsKeepsTcpSocket(ws: { prototype: object }): boolean {
  const setSocket = (ws.prototype as { setSocket?: unknown }).setSocket;
  return typeof setSocket === 'function' && /this\._socket\s*=\s*socket/.test(String(setSocket));
}

/** engine.io's own copy of `ws` (its websocket transport's `socket`), which may differ from ours. */
function enginesWs(): { prototype: object } {
  const engineDir = path.dirname(require.resolve('engine.io'));
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a module found at run time, by path
  return (require(require.resolve('ws', { paths: [engineDir] })) as { WebSocket: { prototype: object } }).WebSocket;
}

export const INTERNALS: Internal[] = [
  { what: 'socket.io-adapter ClusterAdapter#onMessage', holds: () => isMethod(ClusterAdapter.prototype, 'onMessage') },
  { what: 'socket.io-adapter ClusterAdapter#onResponse', holds: () => isMethod(ClusterAdapter.prototype, 'onResponse') },
  { what: 'socket.io-adapter ClusterAdapter#publish', holds: () => isMethod(ClusterAdapter.prototype, 'publish') },
  { what: 'socket.io-adapter Adapter#broadcast', holds: () => isMethod(Adapter.prototype, 'broadcast') },
  { what: 'engine.io Socket#flush', holds: () => isMethod(EngineSocket.prototype, 'flush') },
  { what: "engine.io Socket#sendPacket (a holder's liveness ping)", holds: () => isMethod(EngineSocket.prototype, 'sendPacket') },
  // slowReaders.ts counts a Socket.IO connection's queued output from these two events.
  { what: "engine.io Socket 'packetCreate' event", holds: () => /emit(Reserved)?\("packetCreate"/.test(String(Reflect.get(EngineSocket.prototype, 'sendPacket'))) },
  // engineHeartbeat.ts sees every packet received, before engine.io acts on it.
  { what: "engine.io Socket 'packet' event", holds: () => /emit(Reserved)?\("packet"/.test(String(Reflect.get(EngineSocket.prototype, 'onPacket'))) },
  { what: "engine.io Socket 'flush' event", holds: () => /emit(Reserved)?\("flush"/.test(String(Reflect.get(EngineSocket.prototype, 'flush'))) },
  { what: "ws WebSocket#_socket (the raw edge's TCP socket)", holds: () => wsKeepsTcpSocket(WebSocket) },
  { what: "engine.io's ws WebSocket#_socket", holds: () => wsKeepsTcpSocket(enginesWs()) },
  // storage/sequelize/pgStatements.ts borrows pg clients from Sequelize's pool and marks a broken one.
  {
    what: 'sequelize ConnectionManager#getConnection / #releaseConnection',
    holds: () => isMethod(AbstractConnectionManager.prototype, 'getConnection') && isMethod(AbstractConnectionManager.prototype, 'releaseConnection'),
  },
  { what: "sequelize's PostgreSQL pool drops a client marked _invalid", holds: () => /_invalid/.test(sourceOf(PostgresConnectionManager.prototype, 'validate')) },
  // db.ts reads the pool's counts for seance_db_pool_* metrics.
  { what: 'sequelize ConnectionManager#pool (sequelize-pool)', holds: () => /this\.pool\s*=\s*new Pool\(/.test(sourceOf(AbstractConnectionManager.prototype, 'initPools')) },
  { what: 'sequelize-pool Pool#using / #available / #waiting / #maxSize', holds: () => ['using', 'available', 'waiting', 'maxSize'].every((name) => hasGetter(Pool.prototype, name)) },
];

/** Throws one error naming every internal that moved. */
export function checkLibraryInternals(internals: Internal[] = INTERNALS): void {
  const moved = internals.filter((internal) => !internal.holds()).map((internal) => internal.what);
  if (moved.length > 0) {
    throw new Error(`a dependency upgrade moved internals that server/realtime/extensions relies on: ${moved.join(', ')}. Pin the previous version or update the extension.`);
  }
}
