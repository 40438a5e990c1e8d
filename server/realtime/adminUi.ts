/**
 * The optional Socket.IO Admin UI (@socket.io/admin-ui): off unless ADMIN_UI_PASSWORD is set.
 * When on, the `/admin` namespace (basic auth, the password kept only as a bcrypt hash)
 * reports this node's figures, and the UI's static page is served at /admin/.
 *
 * It sees the whole cluster: every node's `server_stats` reaches the UI through the cluster
 * adapter like any broadcast, and with Redis a login made on one node is good on every
 * node (RedisStore). Production mode: aggregated figures only. The development mode's
 * per-socket views would send every chat message to the UI, a cluster broadcast per event,
 * and wrap each socket's data in a proxy. Read-only: the UI watches, it cannot emit to,
 * move or disconnect participants.
 */
import path from 'node:path';
import { instrument, RedisStore } from '@socket.io/admin-ui';
import type Redis from 'ioredis';
import bcrypt from 'bcryptjs';
import express, { type RequestHandler } from 'express';
import type { Config } from '../../config';
import { redisNames } from '../cluster/names';
import type { SeanceServer } from './socketio';

export const ADMIN_NAMESPACE = '/admin';
const UI_DIR = path.join(path.dirname(require.resolve('@socket.io/admin-ui/package.json')), 'ui', 'dist');

/** Instruments `io` and returns the handler that serves the UI page, or null when the UI is off. */
export function attachAdminUi(io: SeanceServer, adminUi: Config['operations']['adminUi'], nodeId: string, redis: Redis | null): RequestHandler | null {
  if (!adminUi) return null;
  instrument(io, {
    ...(redis ? { store: new RedisStore(redis, { prefix: redisNames.adminUiPrefix, sessionDuration: 86_400 }) } : {}),
    namespaceName: ADMIN_NAMESPACE,
    auth: { type: 'basic', username: adminUi.username, password: bcrypt.hashSync(adminUi.password, 10) },
    // Aggregated figures only: no per-packet listener on the participants' sockets.
    mode: 'production',
    readonly: true,
    serverId: nodeId,
  });
  return express.static(UI_DIR);
}
