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
import { createRequestPolicy, type RequestPolicy } from './requestPolicy';
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

/**
 * The steps, in order: the domain services; the HTTP server and Socket.IO on it; how events
 * travel (cluster adapter, ordering, raw hub) and the room service on top; the HTTP routes;
 * then start the background work. `close` drains in the reverse order.
 */
export async function createApp(deps: AppDeps): Promise<App> {
  checkLibraryInternals();
  const metrics = new Metrics();
  const services = createServices(deps, metrics);
  const app = express();
  const httpServer = createServer(app);
  const io = createSocketServer(httpServer, deps.config, services.policy);
  const realtime = createRealtime(deps, services, io, metrics);
  let draining = false;
  watchGauges(metrics, deps, io, realtime.rawHub);
  mountHttp(app, deps, services, realtime, metrics, () => draining);
  routeUpgrades(httpServer, realtime.rawEdge);

  await Promise.all([services.presence.start(), services.limits.start(), services.liveness.start()]);
  realtime.lifecycle.start();
  realtime.owedAnswers.start();

  const upgraded = trackUpgradedSockets(httpServer);
  let closing: Promise<void> | null = null;
  const shutdown = async () => {
    draining = true;
    await drain(deps.config, httpServer, io, services, realtime, upgraded);
  };
  return { httpServer, io, rooms: realtime.rooms, feeds: realtime.feeds, metrics, close: () => (closing ??= shutdown()) };
}

type Services = ReturnType<typeof createServices>;
type Realtime = ReturnType<typeof createRealtime>;

/** The domain: tokens, limits, presence, storage, sessions, the spirit and its voice. */
function createServices(deps: AppDeps, metrics: Metrics) {
  const { config, logger, db, redis } = deps;
  const secret = signingSecret(config.auth);
  const presence: Presence = redis ? new RedisPresence(redis.command, config.nodeId, config.realtime.presenceTtlMs, logger.child({ component: 'presence' })) : new MemoryPresence(config.nodeId);
  const stores = sequelizeStores(db, config.nodeId);
  const voice = new VoiceService({ config: config.voice, store: stores.audio, logger: logger.child({ component: 'voice' }), provider: deps.voiceProvider });
  return {
    policy: createRequestPolicy(config),
    tokens: new TokenService(config.auth, secret),
    verifier: createTokenVerifier(config.auth, secret),
    liveness: new Liveness(config.nodeId, redis, logger.child({ component: 'liveness' })),
    limits: new RateLimits(config.limits, redis, config.nodeId, logger, metrics),
    presence,
    stores,
    sessions: new SessionService(stores.sessions, presence),
    spirit: createSpiritService(config.spirit, logger.child({ component: 'spirit' }), deps.spiritProvider, metrics),
    voice,
    audioUrl: (sessionId: string, messageId: number) => voice.audioUrl(sessionId, messageId),
  };
}

function createSocketServer(httpServer: HttpServer, config: Config, policy: RequestPolicy): SeanceServer {
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
  // Long-polling replies name their node too: that is how an operator checks stickiness.
  io.engine.on('headers', (headers: Record<string, string>) => {
    headers['X-Seance-Node'] = config.nodeId;
  });
  coalesceEngineWrites(io.engine);
  return io;
}

/**
 * How an event reaches clients: the cluster adapter carries it between nodes, ordering lets
 * stored messages out in seq order, the raw hub hands them to raw clients; the room service
 * and the answer and maintenance work sit on top; both edges (Socket.IO, raw /ws) feed them.
 */
function createRealtime(deps: AppDeps, services: Services, io: SeanceServer, metrics: Metrics) {
  const { config, logger, db, redis } = deps;
  const { presence, liveness, policy, audioUrl } = services;
  const { messages } = services.stores;
  // Sharded Pub/Sub (Redis 7) with a channel per room, subscribed only by the nodes that hold a
  // member: a session's traffic reaches the nodes that serve it and no others.
  const adapter = seanceAdapter(redis, logger.child({ component: 'adapter' }));
  io.adapter(adapter.factory);
  const rawHub = new RawHub(adapter.main);
  adapter.main.onDelivered((seconds) => metrics.delivered(seconds));
  // Stored messages reach this node's clients in seq order, holes filled from the database.
  const feeds = new SessionFeeds(
    {
      hold: (sessionId) => adapter.main.hold(roomNames.session(sessionId)),
      release: (sessionId) => adapter.main.release(roomNames.session(sessionId)),
      deliver: (sessionId, event, data) => adapter.main.deliverToRoom(roomNames.session(sessionId), event, data),
    },
    messages,
    logger,
    { gapRepaired: () => metrics.gapRepaired(), delivered: (seconds) => metrics.delivered(seconds) },
    audioUrl,
  );
  adapter.main.setOrdering(feeds);
  const broadcaster = createBroadcaster(io);
  const answers = new SpiritAnswers({ nodeId: config.nodeId, messages, spirit: services.spirit, broadcaster, logger, metrics, audioUrl });
  const rooms = new RoomService({
    config,
    logger,
    sessions: services.sessions,
    messages,
    users: services.stores.users,
    presence,
    spirit: services.spirit,
    tokens: services.tokens,
    verifier: services.verifier,
    holders: liveness,
    limits: services.limits,
    broadcaster,
    metrics,
    audioUrl,
    answers,
    subscriptions: feeds,
  });
  // Three rounds of slack in both leases: a holder that dies is replaced within about three intervals.
  const lease = (intervalMs: number, component: string, key?: string) =>
    redis ? new RedisLease(redis.command, config.nodeId, Math.max(3 * intervalMs, 2_000), logger.child({ component }), key) : new LocalLease();
  const owedAnswers = new OwedAnswers({
    config: { intervalMs: config.spirit.owedAnswersIntervalMs, maxAgeMs: config.spirit.owedAnswerMaxAgeMs },
    messages,
    sessions: services.stores.sessions,
    presence,
    answers,
    lease: lease(config.spirit.owedAnswersIntervalMs, 'owed-answers', redisNames.answersLease),
    logger,
    metrics,
  });
  const lifecycle = new SessionLifecycle({
    config: config.lifecycle,
    store: sequelizeMaintenance(db),
    presence,
    broadcaster,
    lease: lease(config.lifecycle.sweepIntervalMs, 'maintenance'),
    logger: logger.child({ component: 'maintenance' }),
    metrics,
  });
  // Both transports share one count of connections per client address.
  const addresses = new AddressSlots(config.clients.maxConnectionsPerAddress);
  attachSocketHandlers(io, { rooms, feeds, liveness, policy, logger, config, addresses, metrics });
  const adminUiPage = attachAdminUi(io, config.operations.adminUi, { nodeId: config.nodeId, redis: redis?.command ?? null, clientAddress: policy.clientAddress, metrics });
  const rawEdge = createRawEdge({ config, rooms, hub: rawHub, feeds, liveness, policy, logger, addresses, metrics });
  return { rawHub, feeds, rooms, owedAnswers, lifecycle, adminUiPage, rawEdge };
}

/** What the metrics read when scraped. */
function watchGauges(metrics: Metrics, deps: AppDeps, io: SeanceServer, rawHub: RawHub): void {
  const { db, redis } = deps;
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
}

/** Middleware, the REST API, its documents, /play, probes and metrics. */
function mountHttp(app: express.Express, deps: AppDeps, services: Services, realtime: Realtime, metrics: Metrics, isDraining: () => boolean): void {
  const { config, logger, db, redis } = deps;
  const { policy, tokens, verifier, limits, voice, presence } = services;
  const { messages } = services.stores;
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
  app.use(
    '/api/sessions',
    sessionRoutes({ sessions: services.sessions, messages, presence, rooms: realtime.rooms, tokens, limits, clientAddress: policy.clientAddress, requireAuth: verifier.requireAuth }),
  );
  app.use('/api/auth', authRoutes({ tokens, verifier }));
  app.use(voiceRoutes({ voice, messages, limits, clientAddress: policy.clientAddress }));
  app.use(healthRoutes({ db, redis, nodeId: config.nodeId, isDraining }));
  app.use(metricsRoutes({ metrics, token: config.operations.metricsToken }));
  if (realtime.adminUiPage) app.use('/admin', realtime.adminUiPage);
  app.use(notFound);
  app.use(errorHandler);
}

/** /ws/{id} goes to the raw edge, /socket.io/ to engine.io; any other upgrade is a 404. */
function routeUpgrades(httpServer: HttpServer, rawEdge: Realtime['rawEdge']): void {
  httpServer.on('upgrade', (req, socket, head) => {
    if (rawEdge.handleUpgrade(req, socket, head)) return;
    if (!(req.url ?? '').startsWith('/socket.io/')) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
}

/**
 * Every upgraded (WebSocket) connection, of both transports: a client that never takes the
 * close keeps its TCP socket open for long after its WebSocket has said goodbye.
 */
function trackUpgradedSockets(httpServer: HttpServer): Set<Duplex> {
  const upgraded = new Set<Duplex>();
  httpServer.on('upgrade', (_req, socket: Duplex) => {
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
  });
  return upgraded;
}

/** Graceful shutdown, within SHUTDOWN_TIMEOUT_MS: finish what was accepted, send clients elsewhere, let go. */
async function drain(config: Config, httpServer: HttpServer, io: SeanceServer, services: Services, realtime: Realtime, upgraded: Set<Duplex>): Promise<void> {
  const { rooms, rawHub, owedAnswers, rawEdge, lifecycle } = realtime;
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
  await Promise.all([services.presence.stop(), services.limits.stop(), services.liveness.stop(), services.voice.close()]);
  await new Promise<void>((resolve) => void io.close(() => resolve()));
  httpServer.closeAllConnections();
}

/** Waits for `work`, but never past `deadline`. */
async function until(deadline: number, work: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work(), new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
  clearTimeout(timer);
}
