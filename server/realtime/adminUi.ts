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
 *
 * Each password tried costs a bcrypt on the main thread (tens of milliseconds): an address that
 * has given ADMIN_LOGIN_FAILURES wrong ones within a minute is refused before bcrypt runs.
 */
import path from 'node:path';
import { instrument, RedisStore } from '@socket.io/admin-ui';
import type Redis from 'ioredis';
import bcrypt from 'bcryptjs';
import express, { type RequestHandler } from 'express';
import type { IncomingMessage } from 'node:http';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Config } from '../../config';
import { redisNames } from '../cluster/names';
import type { Metrics } from '../metrics';
import type { SeanceServer } from './socketio';

export const ADMIN_NAMESPACE = '/admin';
/** Wrong passwords an address may try per minute. */
export const ADMIN_LOGIN_FAILURES = 5;

export interface AdminUiDeps {
  nodeId: string;
  redis: Redis | null;
  /** Who is asking (through trusted proxies only). */
  clientAddress: (req: IncomingMessage) => string;
  metrics?: Metrics;
}
const UI_DIR = path.join(path.dirname(require.resolve('@socket.io/admin-ui/package.json')), 'ui', 'dist');

/** Instruments `io` and returns the handler that serves the UI page, or null when the UI is off. */
export function attachAdminUi(io: SeanceServer, adminUi: Config['operations']['adminUi'], deps: AdminUiDeps): RequestHandler | null {
  if (!adminUi) return null;
  const { nodeId, redis } = deps;
  throttleLogins(io, deps);
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

/**
 * Registered before instrument()'s own check, so it runs first: a login attempt with a password
 * takes a point (given back when the login succeeds); with none left, the attempt is refused
 * without comparing anything.
 */
function throttleLogins(io: SeanceServer, deps: AdminUiDeps): void {
  const failures = new RateLimiterMemory({ keyPrefix: 'admin-login', points: ADMIN_LOGIN_FAILURES, duration: 60 });
  const admin = io.of(ADMIN_NAMESPACE);
  admin.use((socket, next) => {
    const auth = (socket.handshake.auth ?? {}) as { password?: unknown };
    if (auth.password === undefined) return next();
    failures.consume(deps.clientAddress(socket.request)).then(
      () => next(),
      () => {
        deps.metrics?.refused('admin_login');
        next(new Error('too many failed logins; retry in a minute'));
      },
    );
  });
  admin.on('connection', (socket) => {
    if ((socket.handshake.auth as { password?: unknown } | undefined)?.password !== undefined) void failures.reward(deps.clientAddress(socket.request), 1);
  });
}
