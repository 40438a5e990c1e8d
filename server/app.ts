/**
 * The application factory: builds the HTTP server, Socket.IO, the raw /ws edge and the
 * services from injected dependencies. Nothing here reads the environment or opens a port,
 * so tests start as many real servers as they like, each on port 0.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import cors from 'cors';
import express from 'express';
import helmet from 'helmet';
import { Server as SocketIOServer } from 'socket.io';
import swaggerUi from 'swagger-ui-express';
import type { Config } from '../config';
import { createTokenVerifier } from './auth/passport';
import { signingSecret } from './auth/secret';
import { TokenService } from './auth/tokens';
import type { Database } from './db';
import { errorHandler, notFound } from './http/middleware/errors';
import { requestContext } from './http/middleware/requestContext';
import { loadAsyncApiDocument } from './http/asyncapi';
import { buildOpenApiDocument } from './http/openapi';
import { authRoutes } from './http/routes/auth';
import { healthRoutes } from './http/routes/health';
import { metricsRoutes } from './http/routes/metrics';
import { sessionRoutes } from './http/routes/sessions';
import { voiceRoutes } from './http/routes/voice';
import type { Logger } from './logger';
import { Metrics } from './metrics';
import type { ServerToClientEvents } from './events';
import { createBroadcaster } from './realtime/broadcaster';
import { seanceAdapter } from './realtime/extensions/clusterAdapter';
import { coalesceEngineWrites } from './realtime/extensions/engineWrites';
import { checkLibraryInternals } from './realtime/extensions/internals';
import { attachAdminUi } from './realtime/adminUi';
import { AddressSlots } from './realtime/addressSlots';
import { RawHub } from './realtime/rawHub';
import { Liveness } from './realtime/liveness';
import { createRawEdge } from './realtime/rawWs';
import { attachSocketHandlers, type SeanceServer } from './realtime/socketio';
import type { RedisConnections } from './redis';
import { SessionFeeds } from './ordering/sessionFeeds';
import { createRequestPolicy } from './requestPolicy';
import { MemoryPresence } from './services/presence/memory';
import { RedisPresence } from './services/presence/redis';
import type { Presence } from './services/presence/types';
import { RateLimits } from './services/rateLimits';
import { RoomService } from './services/rooms';
import { redisNames, rooms as roomNames } from './cluster/names';
import { LocalLease, RedisLease } from './services/maintenanceLease';
import { OwedAnswers } from './services/owedAnswers';
import { SessionLifecycle } from './services/sessionLifecycle';
import { SpiritAnswers } from './services/spiritAnswers';
import { SessionService } from './services/sessions';
import { createSpiritService } from './services/spirit';
import { sequelizeMaintenance, sequelizeStores } from './storage/sequelize';
import type { SpiritProvider } from './services/spirit/types';
import { VoiceService } from './services/voice';
import type { VoiceProvider } from './services/voice/types';

export interface AppDeps {
  config: Config;
  logger: Logger;
  db: Database;
  /** null: a single node with in-process presence and rate limits. */
  redis: RedisConnections | null;
  /** Replaces the configured spirit provider (tests point it at a fake server through config instead). */
  spiritProvider?: SpiritProvider;
  /** Replaces the configured voice provider (tests point it at a fake server through config instead). */
  voiceProvider?: VoiceProvider;
}

export interface App {
  httpServer: HttpServer;
  io: SeanceServer;
  rooms: RoomService;
  /** Ordering of stored messages on this node (gap repairs, delivery timing). */
  feeds: SessionFeeds;
  metrics: Metrics;
  /** Graceful shutdown: stop accepting, finish in-flight work, send clients elsewhere, release presence. */
  close(): Promise<void>;
}

const CORS_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
/** WebSocket close code 1012 "service restart": the client should reconnect (to another node). */
const SERVICE_RESTART = 1012;
/** How long a draining node waits for its clients to take the close before destroying their sockets. */
const CLOSE_GRACE_MS = 1500;

export async function createApp(deps: AppDeps): Promise<App> {
  const { config, logger, db, redis } = deps;
  checkLibraryInternals();
  const policy = createRequestPolicy(config);
  const metrics = new Metrics();
  const secret = signingSecret(config.auth);
  const tokens = new TokenService(config.auth, secret);
  const verifier = createTokenVerifier(config.auth, secret);
  const liveness = new Liveness(config.nodeId, redis, logger.child({ component: 'liveness' }));
  const limits = new RateLimits(config.limits, redis, config.nodeId, logger, metrics);
  const presence: Presence = redis ? new RedisPresence(redis.command, config.nodeId, config.realtime.presenceTtlMs, logger.child({ component: 'presence' })) : new MemoryPresence(config.nodeId);
  const { sessions: sessionStore, messages, users, audio } = sequelizeStores(db, config.nodeId);
  const sessions = new SessionService(sessionStore, presence);
  const spirit = createSpiritService(config.spirit, logger.child({ component: 'spirit' }), deps.spiritProvider, metrics);
  const voice = new VoiceService({
    config: config.voice,
    store: audio,
    logger: logger.child({ component: 'voice' }),
    provider: deps.voiceProvider,
  });

  const app = express();
  const httpServer = createServer(app);
  const io: SeanceServer = new SocketIOServer(httpServer, {
    path: '/socket.io',
    // /socket.io/socket.io.min.js: the client the /play page (and any simple frontend) loads.
    serveClient: true,
    // The raw /ws path shares this server's upgrades: engine.io must leave other paths alone.
    destroyUpgrade: false,
    perMessageDeflate: false,
    httpCompression: false,
    pingInterval: config.realtime.pingIntervalMs,
    pingTimeout: 20_000,
    maxHttpBufferSize: 64 * 1024,
    cors: { origin: (origin, cb) => cb(null, policy.isOriginAllowed(origin)), credentials: true, methods: CORS_METHODS },
    // Cross-site WebSocket hijacking: browsers from foreign origins are refused on every transport.
    allowRequest: (req, cb) => cb(null, policy.isOriginAllowed(req.headers.origin, req.headers.host)),
  });
  // Sharded Pub/Sub (Redis 7) with a channel per room, subscribed only by the nodes that hold a
  // member: a session's traffic reaches the nodes that serve it and no others.
  const adapter = seanceAdapter(redis, logger.child({ component: 'adapter' }));
  io.adapter(adapter.factory);
  // Long-polling replies name their node too: that is how an operator checks stickiness.
  io.engine.on('headers', (headers: Record<string, string>) => {
    headers['X-Seance-Node'] = config.nodeId;
  });

  coalesceEngineWrites(io.engine);

  const rawHub = new RawHub(adapter.main);
  adapter.main.onDelivered((seconds) => metrics.delivered(seconds));
  const audioUrl = (sessionId: string, messageId: number) => voice.audioUrl(sessionId, messageId);
  // Stored messages reach this node's clients in seq order, holes filled from the database.
  const feeds = new SessionFeeds(
    {
      hold: (sessionId) => adapter.main.hold(roomNames.session(sessionId)),
      release: (sessionId) => adapter.main.release(roomNames.session(sessionId)),
      deliver: (sessionId, event, data) => io.to(roomNames.session(sessionId)).local.emit(event, ...([data] as Parameters<ServerToClientEvents[typeof event]>)),
    },
    messages,
    logger,
    { gapRepaired: () => metrics.gapRepaired(), delivered: (seconds) => metrics.delivered(seconds) },
    audioUrl,
  );
  adapter.main.setOrdering(feeds);
  const broadcaster = createBroadcaster(io);
  const answers = new SpiritAnswers({ nodeId: config.nodeId, messages, spirit, broadcaster, logger, metrics, audioUrl });
  const rooms = new RoomService({
    config,
    logger,
    sessions,
    messages,
    users,
    presence,
    spirit,
    tokens,
    verifier,
    holders: liveness,
    limits,
    broadcaster,
    metrics,
    audioUrl,
    answers,
    subscriptions: feeds,
  });
  const owedAnswers = new OwedAnswers({
    config: { intervalMs: config.spirit.owedAnswersIntervalMs, maxAgeMs: config.spirit.owedAnswerMaxAgeMs },
    messages,
    sessions: sessionStore,
    presence,
    answers,
    // Three rounds of slack, as the maintenance lease: a holder that dies is replaced within about three intervals.
    lease: redis
      ? new RedisLease(redis.command, config.nodeId, Math.max(3 * config.spirit.owedAnswersIntervalMs, 2_000), logger.child({ component: 'owed-answers' }), redisNames.answersLease)
      : new LocalLease(),
    logger,
    metrics,
  });
  // Both transports share one count of connections per client address.
  const addresses = new AddressSlots(config.clients.maxConnectionsPerAddress);
  attachSocketHandlers(io, { rooms, feeds, liveness, policy, logger, config, addresses, metrics });
  const adminUiPage = attachAdminUi(io, config.operations.adminUi, { nodeId: config.nodeId, redis: redis?.command ?? null, clientAddress: policy.clientAddress, metrics });
  const lifecycle = new SessionLifecycle({
    config: config.lifecycle,
    store: sequelizeMaintenance(db),
    presence,
    broadcaster,
    // Three rounds of slack: a holder that dies is replaced within about three intervals.
    lease: redis ? new RedisLease(redis.command, config.nodeId, Math.max(3 * config.lifecycle.sweepIntervalMs, 2_000), logger.child({ component: 'maintenance' })) : new LocalLease(),
    logger: logger.child({ component: 'maintenance' }),
    metrics,
  });
  const rawEdge = createRawEdge({ config, rooms, hub: rawHub, feeds, liveness, policy, logger, addresses, metrics });

  httpServer.on('upgrade', (req, socket, head) => {
    if (rawEdge.handleUpgrade(req, socket, head)) return;
    if (!(req.url ?? '').startsWith('/socket.io/')) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });

  let draining = false;
  metrics.setSources({
    connections: () => ({ socketio: io.of('/').sockets.size, websocket: rawHub.size }),
    sessionsActive: () => {
      let count = 0;
      for (const room of io.of('/').adapter.rooms.keys()) if (roomNames.sessionOf(room) !== null) count += 1;
      return count;
    },
    redisUp: () => redis?.isReady() ?? false,
    redisDegraded: () => redis !== null && !redis.isReady(),
    databasePool: () => db.poolStats(),
    databaseUp: () =>
      db.ping().then(
        () => true,
        () => false,
      ),
  });
  const openApi = buildOpenApiDocument();
  const asyncApi = loadAsyncApiDocument(config.rootDir);
  app.disable('x-powered-by');
  app.set('trust proxy', policy.trusts);
  app.use(requestContext(logger, config.nodeId, metrics));
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          // Swagger UI's page runs an inline style and loads its own assets from /docs.
          'script-src': ["'self'"],
          'style-src': ["'self'", "'unsafe-inline'"],
          'img-src': ["'self'", 'data:'],
          // Over plain HTTP (compose serves :8000), upgrading the page's assets to https would
          // leave Swagger UI blank: only ask for it when TLS is in front (BEHIND_TLS).
          'upgrade-insecure-requests': config.behindTls ? [] : null,
        },
      },
      // HSTS over plain HTTP is ignored at best; on a name later served with TLS it pins browsers.
      strictTransportSecurity: config.behindTls,
      crossOriginResourcePolicy: { policy: 'cross-origin' },
    }),
  );
  app.use(
    cors({
      origin: (origin, cb) => cb(null, policy.isOriginAllowed(origin)),
      credentials: true,
      methods: CORS_METHODS,
      exposedHeaders: ['X-Request-Id', 'X-Seance-Node', 'Retry-After'],
    }),
  );
  app.use(express.json({ limit: config.bodyLimitBytes }));
  app.get('/', (_req, res) => res.redirect(302, '/docs'));
  app.get('/openapi.json', (_req, res) => res.json(openApi));
  app.get('/asyncapi.json', (_req, res) => res.json(asyncApi));
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(openApi, { customSiteTitle: 'Séance API' }));
  // A small page to try a séance in a browser: static files, its script outside the HTML (CSP: script-src 'self').
  const playDir = path.join(config.rootDir, 'public', 'play');
  app.get('/play', (_req, res) => res.sendFile(path.join(playDir, 'index.html')));
  // The page runs on @seance/client, the same package frontends install (its browser build).
  app.get('/play/seance-client.js', (_req, res) => res.sendFile(path.join(config.rootDir, 'client', 'dist', 'seance-client.js')));
  app.use('/play', express.static(playDir, { index: 'index.html' }));
  app.use('/api/sessions', sessionRoutes({ sessions, messages, presence, rooms, tokens, limits, clientAddress: policy.clientAddress, requireAuth: verifier.requireAuth }));
  app.use('/api/auth', authRoutes({ tokens, verifier }));
  app.use(voiceRoutes({ voice, messages, limits, clientAddress: policy.clientAddress }));
  app.use(healthRoutes({ db, redis, nodeId: config.nodeId, isDraining: () => draining }));
  app.use(metricsRoutes({ metrics, token: config.operations.metricsToken }));
  if (adminUiPage) app.use('/admin', adminUiPage);
  app.use(notFound);
  app.use(errorHandler);

  await Promise.all([presence.start(), limits.start(), liveness.start()]);
  lifecycle.start();
  owedAnswers.start();

  // Every upgraded (WebSocket) connection, of both transports: a client that never takes the
  // close keeps its TCP socket open for long after its WebSocket has said goodbye.
  const upgraded = new Set<Duplex>();
  httpServer.on('upgrade', (_req, socket: Duplex) => {
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
  });

  let closing: Promise<void> | null = null;
  async function shutdown(): Promise<void> {
    draining = true;
    const deadline = Date.now() + config.shutdownTimeoutMs;
    httpServer.close();
    // No more questions taken over from others: this node only pays its own debts now.
    await until(deadline, () => owedAnswers.stop());
    // New messages are refused from now on (the clients send them again elsewhere), so what is
    // pending can only shrink; the messages being stored finish and are acknowledged first.
    await until(deadline, () => rooms.stopAccepting());
    // Closing the transport (not a socket.io "disconnect") makes clients reconnect by themselves,
    // to another node, resuming from their last seq. A connection that slipped in meanwhile goes too.
    const sendClientsAway = () => {
      for (const socket of io.of('/').sockets.values()) socket.conn.close();
      rawHub.closeAll(SERVICE_RESTART, 'server restarting');
    };
    sendClientsAway();
    const clientsGone = async () => {
      while (io.of('/').sockets.size > 0 || rawHub.size > 0) {
        await new Promise((r) => setTimeout(r, 20));
        sendClientsAway();
      }
    };
    // A client that never takes the close (a reader that stopped reading) would hold the drain
    // to its end: after a short grace its socket is destroyed.
    await until(Math.min(deadline, Date.now() + CLOSE_GRACE_MS), clientsGone);
    for (const socket of upgraded) socket.destroy();
    // Spirit answers still under way are stored and broadcast (through the cluster to where
    // their clients went, or read on resume) before the process goes. What is not answered by
    // the deadline stays owed by this node in the database: once it leaves presence below,
    // another node takes it over within OWED_ANSWERS_INTERVAL_MS.
    await until(deadline, async () => {
      await clientsGone();
      await rooms.drain();
    });
    rawEdge.close();
    await lifecycle.stop();
    await Promise.all([presence.stop(), limits.stop(), liveness.stop(), voice.close()]);
    await new Promise<void>((resolve) => void io.close(() => resolve()));
    httpServer.closeAllConnections();
  }

  return {
    httpServer,
    io,
    rooms,
    feeds,
    metrics,
    close: () => (closing ??= shutdown()),
  };
}

/** Waits for `work`, but never past `deadline`. */
async function until(deadline: number, work: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work(), new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
  clearTimeout(timer);
}
