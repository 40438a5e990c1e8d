/**
 * This node's Prometheus figures (the contract's "Operations" series plus Node's default
 * process metrics), on prom-client with a registry of its own per app, so several apps in
 * one test process do not share counters.
 *
 * The hot path (every message, every delivery) only bumps plain numbers and observes the
 * delivery histogram: prom-client's labelled `inc` builds a label hash string per call, so
 * the labelled counters are copied from those numbers when Prometheus scrapes, and the
 * gauges (connections, sessions, Redis, database) are read at that moment too.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type Transport = 'socketio' | 'websocket';
export type RateLimitKind = 'message' | 'session_create' | 'connection' | 'speech' | 'audio';
/** cockatiel's CircuitState: 0 closed, 1 open, 2 half-open, 3 isolated. */
export type BreakerState = 0 | 1 | 2 | 3;

/** What the scrape reads from the running app (set once the app has built its parts). */
export interface MetricSources {
  connections(): Record<Transport, number>;
  sessionsActive(): number;
  redisUp(): boolean;
  /** Redis is configured but down: serving this node's clients only. */
  redisDegraded(): boolean;
  databaseUp(): Promise<boolean>;
  databasePool(): DatabasePoolStats;
}

/** The database connection pool at one moment (SQLite's single connection reports no pool: all zeros). */
export interface DatabasePoolStats {
  inUse: number;
  idle: number;
  /** Queries waiting for a connection: above 0 for long means the pool (or the database) is the bottleneck. */
  waiting: number;
  max: number;
}

// Deliveries take well under a millisecond when all is well; a gap repair or a stall shows in the tail.
const DELIVERY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
// The oracle answers in microseconds; a model in seconds; a failing one after its timeouts.
const SPIRIT_BUCKETS = [0.001, 0.01, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60];
// REST calls answer in milliseconds; audio generation and a slow database in seconds.
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const RATE_LIMIT_KINDS: RateLimitKind[] = ['message', 'session_create', 'connection', 'speech', 'audio'];

export class Metrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;

  // Plain numbers the hot path bumps; the scrape copies them into the counters below.
  private readonly n = { accepted: 0, rejected: 0, deliveries: 0, gapRepairs: 0, idleEnded: 0, expired: 0, takenOver: 0, givenUp: 0, holder: false };
  private readonly rateLimited = new Map<RateLimitKind, number>(RATE_LIMIT_KINDS.map((k) => [k, 0]));
  private readonly spiritFailures = new Map<string, number>();
  private readonly refusals = new Map<string, number>();
  private readonly breakerStates = new Map<string, BreakerState>();
  private readonly sources: { current: MetricSources | null } = { current: null };

  private readonly deliverySeconds: Histogram;
  private readonly spiritSeconds: Histogram<'provider'>;
  private readonly httpSeconds: Histogram<'method' | 'route' | 'status'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    const copy = <L extends string>(counter: Counter<L>, values: () => Iterable<[Partial<Record<L, string>>, number]>) => {
      counter.reset();
      for (const [labels, value] of values()) counter.inc(labels, value);
    };
    const { n, rateLimited, spiritFailures, refusals, breakerStates, sources } = this;
    new Counter({
      name: 'seance_messages_total',
      help: 'Chat messages received by this node: accepted (stored and broadcast) or rejected (invalid, rate limited, not stored).',
      labelNames: ['result'],
      registers,
      collect() {
        copy(this, () => [
          [{ result: 'accepted' }, n.accepted],
          [{ result: 'rejected' }, n.rejected],
        ]);
      },
    });
    new Counter({
      name: 'seance_deliveries_total',
      help: "Session events this node handed to its own clients (one per event, whatever the number of this node's listeners).",
      registers,
      collect() {
        this.reset();
        this.inc(n.deliveries);
      },
    });
    new Counter({
      name: 'seance_gap_repairs_total',
      help: "Holes in a session's seq order this node filled from the database before delivering on.",
      registers,
      collect() {
        this.reset();
        this.inc(n.gapRepairs);
      },
    });
    new Counter({
      name: 'seance_sessions_idle_ended_total',
      help: 'Sessions this node ended for idleness (as the maintenance lease holder).',
      registers,
      collect() {
        this.reset();
        this.inc(n.idleEnded);
      },
    });
    new Counter({
      name: 'seance_spirit_answers_taken_over_total',
      help: 'Questions this node took over from a node that was gone before it answered them, to answer them itself.',
      registers,
      collect() {
        this.reset();
        this.inc(n.takenOver);
      },
    });
    new Counter({
      name: 'seance_spirit_answers_given_up_total',
      help: 'Questions this node gave up answering: older than OWED_ANSWER_MAX_AGE_MINUTES, or their session ended.',
      registers,
      collect() {
        this.reset();
        this.inc(n.givenUp);
      },
    });
    new Counter({
      name: 'seance_messages_expired_total',
      help: 'Messages this node deleted under MESSAGE_RETENTION_DAYS (as the maintenance lease holder).',
      registers,
      collect() {
        this.reset();
        this.inc(n.expired);
      },
    });
    new Gauge({
      name: 'seance_maintenance_holder',
      help: '1 on the node that holds the maintenance lease (idle sessions, retention): one node of the cluster.',
      registers,
      collect() {
        this.set(n.holder ? 1 : 0);
      },
    });
    new Counter({
      name: 'seance_rate_limited_total',
      help: 'Requests refused with RATE_LIMITED, by limit.',
      labelNames: ['kind'],
      registers,
      collect() {
        copy(this, () => [...rateLimited].map(([kind, n]) => [{ kind }, n] as [{ kind: string }, number]));
      },
    });
    new Counter({
      name: 'seance_client_refusals_total',
      help: 'What a client tried that would have cost the others, refused, by rule.',
      labelNames: ['rule'],
      registers,
      collect() {
        copy(this, () => [...refusals].map(([rule, n]) => [{ rule }, n] as [{ rule: string }, number]));
      },
    });
    new Counter({
      name: 'seance_spirit_failures_total',
      help: 'Failed or timed-out spirit provider attempts, by provider.',
      labelNames: ['provider'],
      registers,
      collect() {
        copy(this, () => [...spiritFailures].map(([provider, n]) => [{ provider }, n] as [{ provider: string }, number]));
      },
    });
    this.deliverySeconds = new Histogram({
      name: 'seance_delivery_seconds',
      help: "From a session event's arrival at this node (from a local sender or from Redis) to its send to this node's clients.",
      buckets: DELIVERY_BUCKETS,
      registers,
    });
    this.spiritSeconds = new Histogram({
      name: 'seance_spirit_seconds',
      help: "Time to the spirit's answer, retries and fallback included, by configured provider.",
      labelNames: ['provider'],
      buckets: SPIRIT_BUCKETS,
      registers,
    });
    this.httpSeconds = new Histogram({
      name: 'seance_http_request_duration_seconds',
      help: 'HTTP requests this node answered (its _count is the request count), by method, route template (never the raw path) and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'seance_db_pool_connections',
      help: "This node's database pool: connections running a query (in_use) and open but free (idle).",
      labelNames: ['state'],
      registers,
      collect() {
        const pool = sources.current?.databasePool();
        this.set({ state: 'in_use' }, pool?.inUse ?? 0);
        this.set({ state: 'idle' }, pool?.idle ?? 0);
      },
    });
    new Gauge({
      name: 'seance_db_pool_waiting',
      help: 'Queries of this node waiting for a free database connection.',
      registers,
      collect() {
        this.set(sources.current?.databasePool().waiting ?? 0);
      },
    });
    new Gauge({
      name: 'seance_db_pool_max',
      help: 'The most database connections this node may open (DB_POOL_SIZE + DB_POOL_OVERFLOW).',
      registers,
      collect() {
        this.set(sources.current?.databasePool().max ?? 0);
      },
    });
    new Gauge({
      name: 'seance_spirit_breaker_state',
      help: "The spirit provider's circuit breaker on this node: 0 closed, 1 open (questions go to the oracle), 2 half-open (one probe).",
      labelNames: ['provider'],
      registers,
      collect() {
        this.reset();
        for (const [provider, state] of breakerStates) this.set({ provider }, state);
      },
    });
    new Gauge({
      name: 'seance_connections',
      help: 'Open realtime connections on this node, by transport.',
      labelNames: ['transport'],
      registers,
      collect() {
        const counts = sources.current?.connections() ?? { socketio: 0, websocket: 0 };
        this.set({ transport: 'socketio' }, counts.socketio);
        this.set({ transport: 'websocket' }, counts.websocket);
      },
    });
    new Gauge({
      name: 'seance_sessions_active',
      help: 'Sessions with at least one connection on this node.',
      registers,
      collect() {
        this.set(sources.current?.sessionsActive() ?? 0);
      },
    });
    new Gauge({
      name: 'seance_redis_up',
      help: '1 when every Redis connection of this node is ready; 0 when one is not (and when REDIS_URL is unset).',
      registers,
      collect() {
        this.set(sources.current?.redisUp() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'seance_degraded',
      help: '1 while Redis is configured and down: the node stays ready and serves its own clients, but sessions do not reach the other nodes.',
      registers,
      collect() {
        this.set(sources.current?.redisDegraded() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'seance_database_up',
      help: '1 when the database answered a ping during this scrape.',
      registers,
      async collect() {
        this.set((await sources.current?.databaseUp()) ? 1 : 0);
      },
    });
  }

  /** Called once by the app factory when the parts the gauges read exist. */
  setSources(sources: MetricSources): void {
    this.sources.current = sources;
  }

  /** Makes a provider's series visible (at 0) before its first question. */
  registerSpiritProvider(provider: string): void {
    this.spiritSeconds.zero({ provider });
    if (!this.spiritFailures.has(provider)) this.spiritFailures.set(provider, 0);
  }

  messageAccepted(): void {
    this.n.accepted += 1;
  }

  messageRejected(): void {
    this.n.rejected += 1;
  }

  rateLimitedOnce(kind: RateLimitKind): void {
    this.rateLimited.set(kind, (this.rateLimited.get(kind) ?? 0) + 1);
  }

  /** A client refused by `rule` (seance_client_refusals_total). */
  refused(rule: string): void {
    this.refusals.set(rule, (this.refusals.get(rule) ?? 0) + 1);
  }

  /** One event handed to this node's clients, `seconds` after it reached the node. */
  delivered(seconds: number): void {
    this.n.deliveries += 1;
    this.deliverySeconds.observe(seconds);
  }

  sessionEndedIdle(): void {
    this.n.idleEnded += 1;
  }

  messagesExpired(count: number): void {
    this.n.expired += count;
  }

  spiritAnswerTakenOver(): void {
    this.n.takenOver += 1;
  }

  spiritAnswerGivenUp(): void {
    this.n.givenUp += 1;
  }

  maintenanceHolder(held: boolean): void {
    this.n.holder = held;
  }

  gapRepaired(): void {
    this.n.gapRepairs += 1;
  }

  spiritAnswered(provider: string, seconds: number): void {
    this.spiritSeconds.observe({ provider }, seconds);
  }

  /** One HTTP request answered; `route` is the matched template (e.g. /api/sessions/:id). */
  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.httpSeconds.observe({ method, route, status: String(status) }, seconds);
  }

  spiritFailed(provider: string): void {
    this.spiritFailures.set(provider, (this.spiritFailures.get(provider) ?? 0) + 1);
  }

  breakerState(provider: string, state: BreakerState): void {
    this.breakerStates.set(provider, state);
  }

  /** The Prometheus text exposition of every series. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
