/**
 * The one place that reads the environment. `loadConfig` validates every variable with a
 * single joi schema, lists every problem at once, and returns a frozen object that the
 * rest of the code receives by injection.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Joi from 'joi';
import proxyAddr from 'proxy-addr';

export type NodeEnv = 'development' | 'production' | 'test';
export type SpiritProviderName = 'oracle' | 'gemini' | 'openai';
export type VoiceProviderName = 'espeak' | 'elevenlabs' | 'openai' | 'none';

export interface Config {
  nodeEnv: NodeEnv;
  host: string;
  port: number;
  nodeId: string;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** Project root (the folder holding package.json); migrations and ./data live under it. */
  rootDir: string;
  database: {
    url: string;
    dialect: 'postgres' | 'sqlite';
    /** SQLite file path when dialect is sqlite. */
    storage?: string;
    poolSize: number;
    poolOverflow: number;
    migrateOnStart: boolean;
    /** TLS to PostgreSQL, from `sslmode` in DATABASE_URL (null: plain TCP). */
    tls: DatabaseTls | null;
  };
  /** null: single node, no Redis. */
  redis: RedisTarget | null;
  corsOrigins: readonly string[] | '*';
  trustProxy: string;
  bodyLimitBytes: number;
  auth: {
    /** null: a single node with the embedded database keeps its own random secret (auth/secret.ts). */
    jwtSecret: string | null;
    /** Where that secret is kept, beside the SQLite file; null for an in-memory database (a new secret each start). */
    jwtSecretFile: string | null;
    jwtAlgorithm: 'HS256' | 'HS384' | 'HS512';
    accessTokenExpireMinutes: number;
    requireAuth: boolean;
  };
  spirit: {
    provider: SpiritProviderName;
    timeoutMs: number;
    retries: number;
    retryBaseMs: number;
    /** Consecutive failed attempts that open the breaker: questions then go straight to the oracle. */
    breakerFailures: number;
    /** How long the breaker stays open before one probe question is let through. */
    breakerCooldownMs: number;
    /** How long the built-in oracle "thinks" before it answers; 0 answers at once. */
    oracleDelayMs: number;
    /** How often a node looks for answers owed by itself or by nodes that are gone. */
    owedAnswersIntervalMs: number;
    /** A question still unanswered after this long is given up (never answered). */
    owedAnswerMaxAgeMs: number;
    gemini: { apiKey: string | null; model: string; baseUrl: string };
    openai: { apiKey: string | null; model: string; baseUrl: string };
  };
  /** The spirit's voice (text to speech). */
  voice: {
    provider: VoiceProviderName;
    timeoutMs: number;
    /** Generations under way at once on this node (and built-in synthesis threads). */
    concurrency: number;
    maxBytes: number;
    /** What audio made for texts that are not stored answers may weigh in all (least recently used first out). */
    cacheMaxBytes: number;
    elevenlabs: { apiKey: string | null; voiceId: string; baseUrl: string; modelId: string };
    openai: { apiKey: string | null; baseUrl: string; model: string; voice: string };
  };
  limits: {
    messagesPerWindow: number;
    messageWindowSeconds: number;
    sessionCreatesPerMinute: number;
    connectionsPerMinute: number;
    /** POST /api/tts/generate per client address per minute. */
    speechPerMinute: number;
    /** Requests of an answer's audio path per client address per minute. */
    audioPerMinute: number;
  };
  /** What one client may cost the others (CONTRACT: Clients that misbehave). */
  clients: {
    /** Client events per second per connection; a burst may spend `eventBurst` at once. */
    eventRate: number;
    eventBurst: number;
    /** Unsent output past which a connection is closed as a slow reader. */
    maxBufferBytes: number;
    maxConnectionsPerParticipant: number;
    /** Per client address on this node; 0: no cap. */
    maxConnectionsPerAddress: number;
  };
  realtime: {
    pingIntervalMs: number;
    joinTimeoutMs: number;
    presenceTtlMs: number;
  };
  shutdownTimeoutMs: number;
  /**
   * When a shutdown still running is cut short (exit code 1): SHUTDOWN_TIMEOUT_MS plus time to
   * close Redis and the database. An orchestrator's grace period must be at least this long.
   */
  hardExitMs: number;
  /** True when clients reach the server over HTTPS (TLS ends in front of it): HSTS and upgrade-insecure-requests. */
  behindTls: boolean;
  operations: {
    /** null: /metrics is open (nginx does not publish it). */
    metricsToken: string | null;
    /** null: the Socket.IO Admin UI is off. */
    adminUi: { username: string; password: string } | null;
  };
  lifecycle: {
    /** A session with no join and no message for this long ends by itself. */
    sessionIdleTimeoutMs: number;
    /** null: keep messages forever. */
    messageRetentionMs: number | null;
    /** How often the maintenance holder looks for idle sessions and expired messages. */
    sweepIntervalMs: number;
  };
}

/** libpq's sslmode values that mean TLS, as the pg driver's `ssl` option will apply them. */
export type SslMode = 'require' | 'verify-ca' | 'verify-full';

export interface DatabaseTls {
  mode: SslMode;
  /** PEM of the CA that signed the server certificate (PGSSLROOTCERT or sslrootcert); null: the system's CAs. */
  ca: string | null;
  /** Where `ca` was read from, for messages. */
  caFile: string | null;
}

export interface RedisAddress {
  host: string;
  port: number;
}

/** The three ways to reach Redis (exactly one may be configured). */
export type RedisTarget =
  | { mode: 'single'; url: string }
  | { mode: 'sentinel'; sentinels: readonly RedisAddress[]; name: string; sentinelPassword: string | null; password: string | null }
  | { mode: 'cluster'; nodes: readonly RedisAddress[]; password: string | null };

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Closing Redis and the database after the drain: the hard exit comes this long after SHUTDOWN_TIMEOUT_MS. */
export const SHUTDOWN_CLOSE_MARGIN_MS = 2_000;

const MIN_PRODUCTION_SECRET_LENGTH = 32;

/** `host:port[,host:port…]` (spaces around commas allowed; IPv6 hosts in brackets). */
const ADDRESS_LIST = /^\s*(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}\s*(,\s*(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}\s*)*$/;

const schema = Joi.object({
  NODE_ENV: Joi.string().valid('development', 'production', 'test').default('development'),
  HOST: Joi.string().default('0.0.0.0'),
  PORT: Joi.number().integer().min(0).max(65535).default(8000),
  NODE_ID: Joi.string()
    .pattern(/^[A-Za-z0-9_.:-]{1,64}$/)
    .message('NODE_ID must be 1-64 of [A-Za-z0-9_.:-]'),
  LOG_LEVEL: Joi.string().lowercase().valid('trace', 'debug', 'info', 'warn', 'error', 'fatal').default('info'),
  DATABASE_URL: Joi.string()
    .pattern(/^(postgres|postgresql|sqlite):/)
    .message('DATABASE_URL must start with postgres://, postgresql:// or sqlite:'),
  PGSSLROOTCERT: Joi.string(),
  DB_POOL_SIZE: Joi.number().integer().min(1).max(500).default(20),
  DB_POOL_OVERFLOW: Joi.number().integer().min(0).max(500).default(10),
  MIGRATE_ON_START: Joi.boolean().truthy('1').falsy('0').default(true),
  REDIS_URL: Joi.string().uri({ scheme: ['redis', 'rediss'] }),
  REDIS_SENTINELS: Joi.string().pattern(ADDRESS_LIST).message('REDIS_SENTINELS must be a comma-separated list of host:port'),
  REDIS_SENTINEL_NAME: Joi.string()
    .pattern(/^[A-Za-z0-9_.-]{1,64}$/)
    .message('REDIS_SENTINEL_NAME must be 1-64 of [A-Za-z0-9_.-]'),
  REDIS_SENTINEL_PASSWORD: Joi.string(),
  REDIS_PASSWORD: Joi.string(),
  REDIS_CLUSTER_NODES: Joi.string().pattern(ADDRESS_LIST).message('REDIS_CLUSTER_NODES must be a comma-separated list of host:port'),
  CORS_ORIGINS: Joi.string().default('http://localhost:3000,http://127.0.0.1:3000,http://localhost:8000,http://127.0.0.1:8000'),
  // Only a proxy named here may say who the client is (X-Forwarded-For): anyone else could
  // spoof it and slip past every per-address limit. The shipped compose file names its network.
  TRUST_PROXY: Joi.string().default('loopback'),
  BODY_LIMIT_BYTES: Joi.number()
    .integer()
    .min(256)
    .max(10 * 1024 * 1024)
    .default(16 * 1024),
  JWT_SECRET: Joi.string(),
  JWT_ALGORITHM: Joi.string().valid('HS256', 'HS384', 'HS512').default('HS256'),
  ACCESS_TOKEN_EXPIRE_MINUTES: Joi.number()
    .integer()
    .min(1)
    .max(60 * 24 * 30)
    .default(30),
  REQUIRE_AUTH: Joi.boolean().truthy('1').falsy('0').default(false),
  SPIRIT_PROVIDER: Joi.string().lowercase().valid('oracle', 'gemini', 'openai').default('oracle'),
  SPIRIT_TIMEOUT_MS: Joi.number().integer().min(50).max(120000).default(10000),
  SPIRIT_RETRIES: Joi.number().integer().min(0).max(10).default(2),
  SPIRIT_RETRY_BASE_MS: Joi.number().integer().min(0).max(60000).default(250),
  SPIRIT_BREAKER_FAILURES: Joi.number().integer().min(1).max(1000).default(5),
  SPIRIT_BREAKER_COOLDOWN_MS: Joi.number().integer().min(100).max(3_600_000).default(30_000),
  SPIRIT_ORACLE_DELAY_MS: Joi.number().integer().min(0).max(60000).default(1500),
  OWED_ANSWERS_INTERVAL_MS: Joi.number().integer().min(100).max(60000).default(1000),
  OWED_ANSWER_MAX_AGE_MINUTES: Joi.number().min(0.1).max(1440).default(10),
  GOOGLE_API_KEY: Joi.string(),
  GEMINI_MODEL: Joi.string().default('gemini-2.0-flash'),
  GEMINI_BASE_URL: Joi.string()
    .uri({ scheme: ['http', 'https'] })
    .default('https://generativelanguage.googleapis.com/v1beta'),
  OPENAI_API_KEY: Joi.string(),
  OPENAI_MODEL: Joi.string().default('gpt-4o-mini'),
  OPENAI_BASE_URL: Joi.string()
    .uri({ scheme: ['http', 'https'] })
    .default('https://api.openai.com/v1'),
  TTS_PROVIDER: Joi.string().lowercase().valid('espeak', 'elevenlabs', 'openai', 'none').default('espeak'),
  TTS_TIMEOUT_MS: Joi.number().integer().min(50).max(120000).default(15000),
  TTS_CONCURRENCY: Joi.number().integer().min(1).max(64).default(1),
  TTS_MAX_BYTES: Joi.number()
    .integer()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(8 * 1024 * 1024),
  TTS_RATE_LIMIT: Joi.number().integer().min(1).max(1000000).default(20),
  AUDIO_RATE_LIMIT: Joi.number().integer().min(1).max(1000000).default(120),
  // About 50 to 2,500 texts of the built-in voice (60 KB to 3.7 MB each).
  TTS_CACHE_MAX_BYTES: Joi.number()
    .integer()
    .min(64 * 1024)
    .max(2 ** 40)
    .default(256 * 1024 * 1024),
  ELEVENLABS_API_KEY: Joi.string(),
  // A premade ElevenLabs voice ("Adam": deep, calm); any voice id of the account works.
  ELEVENLABS_VOICE_ID: Joi.string()
    .pattern(/^[A-Za-z0-9_-]{1,100}$/)
    .default('pNInz6obpgDQGcFmaJgB'),
  ELEVENLABS_BASE_URL: Joi.string()
    .uri({ scheme: ['http', 'https'] })
    .default('https://api.elevenlabs.io'),
  ELEVENLABS_MODEL_ID: Joi.string().default('eleven_multilingual_v2'),
  TTS_MODEL: Joi.string().default('tts-1'),
  TTS_VOICE: Joi.string().default('onyx'),
  MESSAGE_RATE_LIMIT: Joi.number().integer().min(1).max(100000).default(10),
  MESSAGE_RATE_WINDOW_S: Joi.number().integer().min(1).max(3600).default(10),
  SESSION_CREATE_RATE_LIMIT: Joi.number().integer().min(1).max(1000000).default(120),
  CONNECT_RATE_LIMIT: Joi.number().integer().min(1).max(1000000).default(600),
  CLIENT_EVENT_RATE: Joi.number().integer().min(1).max(1_000_000).default(20),
  MAX_CONNECTION_BUFFER_BYTES: Joi.number()
    .integer()
    .min(16 * 1024)
    .max(1024 * 1024 * 1024)
    .default(1024 * 1024),
  MAX_CONNECTIONS_PER_PARTICIPANT: Joi.number().integer().min(1).max(10_000).default(5),
  MAX_CONNECTIONS_PER_ADDRESS: Joi.number().integer().min(0).max(10_000_000).default(256),
  WS_PING_INTERVAL_MS: Joi.number().integer().min(100).max(600000).default(25000),
  WS_JOIN_TIMEOUT_MS: Joi.number().integer().min(100).max(600000).default(10000),
  PRESENCE_TTL_MS: Joi.number().integer().min(1000).max(600000).default(15000),
  SHUTDOWN_TIMEOUT_MS: Joi.number().integer().min(100).max(60000).default(8000),
  BEHIND_TLS: Joi.boolean().truthy('1').falsy('0').default(false),
  METRICS_TOKEN: Joi.string().min(16).message('METRICS_TOKEN must be at least 16 characters'),
  ADMIN_UI_USERNAME: Joi.string()
    .pattern(/^[A-Za-z0-9_.-]{1,64}$/)
    .default('admin'),
  ADMIN_UI_PASSWORD: Joi.string().min(12).message('ADMIN_UI_PASSWORD must be at least 12 characters'),
  // Fractions are allowed so tests (and the curious) can watch a session end in seconds.
  SESSION_IDLE_TIMEOUT_MINUTES: Joi.number().greater(0).max(525_600).default(1440),
  MESSAGE_RETENTION_DAYS: Joi.number().greater(0).max(36_500),
  MAINTENANCE_INTERVAL_MS: Joi.number().integer().min(100).max(3_600_000),
}).unknown(true);

/** Every environment variable the server reads (.env.example must list exactly these). */
export const CONFIG_VARIABLES: readonly string[] = Object.freeze(Object.keys(schema.describe().keys as object));

/** Walks up from this file to the folder with package.json: works from source and from dist/. */
function findRootDir(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

/** The list, or '*', or a message saying what is wrong with the value. */
function parseOrigins(raw: string): readonly string[] | string {
  const text = raw.trim();
  if (text === '*') return '*';
  let list: unknown;
  if (text.startsWith('[')) {
    try {
      list = JSON.parse(text);
    } catch {
      return 'CORS_ORIGINS is not a valid JSON array';
    }
  } else {
    list = text
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean);
  }
  if (!Array.isArray(list) || !list.every((o) => typeof o === 'string' && /^https?:\/\/[^/\s]+$/.test(o))) {
    return 'CORS_ORIGINS must be "*" or a list of origins like http://localhost:3000 (comma separated or a JSON array)';
  }
  return Object.freeze(list as string[]);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * `signsTokens: false` is for tools that only reach the database (sequelize-cli's migrations):
 * they sign and verify nothing, so the JWT secret's rules do not stop them.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, opts: { signsTokens?: boolean } = {}): Config {
  const signsTokens = opts.signsTokens ?? true;
  // Empty strings mean "unset" (compose files and .env templates often leave them blank).
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const { value, error } = schema.validate(input, { abortEarly: false, convert: true });
  const problems = error ? error.details.map((d) => d.message) : [];
  const v = value as Record<string, any>;

  const origins = parseOrigins(v.CORS_ORIGINS);
  if (typeof origins === 'string' && origins !== '*') problems.push(origins);

  const nodeEnv = v.NODE_ENV as NodeEnv;
  const jwtSecret: string | null = v.JWT_SECRET ?? null;
  const clusterSettings = ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'].filter((name) => v[name] !== undefined);
  if (v.DATABASE_URL !== undefined && !String(v.DATABASE_URL).startsWith('sqlite:')) clusterSettings.push('DATABASE_URL');
  if (!signsTokens) {
    // Nothing to check: no token is signed or verified.
  } else if (nodeEnv === 'production' && !jwtSecret) {
    problems.push(`JWT_SECRET is required in production (at least ${MIN_PRODUCTION_SECRET_LENGTH} characters, e.g. JWT_SECRET=$(openssl rand -hex 32))`);
  } else if (!jwtSecret && clusterSettings.length > 0) {
    // Every node must sign and verify with the same secret, and no node can make it up alone.
    problems.push(`JWT_SECRET is required on a node configured for a cluster (${clusterSettings.join(', ')} set): give every node the same random secret, e.g. JWT_SECRET=$(openssl rand -hex 32)`);
  } else if (jwtSecret && nodeEnv === 'production' && jwtSecret.length < MIN_PRODUCTION_SECRET_LENGTH) {
    problems.push(`JWT_SECRET is too short for production: ${jwtSecret.length} characters, at least ${MIN_PRODUCTION_SECRET_LENGTH} needed`);
  }

  const idleTimeoutMs = Math.round(v.SESSION_IDLE_TIMEOUT_MINUTES * 60_000);
  if (idleTimeoutMs < 1000) problems.push('SESSION_IDLE_TIMEOUT_MINUTES must be at least one second (0.0167)');

  const trustProblem = checkTrustProxy(v.TRUST_PROXY);
  if (trustProblem) problems.push(trustProblem);

  if (v.SPIRIT_PROVIDER === 'gemini' && !v.GOOGLE_API_KEY) problems.push('SPIRIT_PROVIDER=gemini needs GOOGLE_API_KEY');
  if (v.TTS_PROVIDER === 'elevenlabs' && !v.ELEVENLABS_API_KEY) problems.push('TTS_PROVIDER=elevenlabs needs ELEVENLABS_API_KEY');
  const redis = redisTarget(v, problems);

  if (problems.length > 0) throw new ConfigError(problems);

  const rootDir = findRootDir();
  const { url: databaseUrl, tls } = databaseTls(v.DATABASE_URL ?? `sqlite:${path.join('data', 'seance.sqlite')}`, v.PGSSLROOTCERT, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  const isSqlite = databaseUrl.startsWith('sqlite:');
  const sqlitePath = isSqlite ? databaseUrl.replace(/^sqlite:(\/\/)?/, '') : undefined;

  const sqliteStorage = sqlitePath === undefined ? undefined : sqlitePath === ':memory:' ? sqlitePath : path.resolve(rootDir, sqlitePath);
  const config: Config = {
    nodeEnv,
    host: v.HOST,
    port: v.PORT,
    nodeId: v.NODE_ID ?? `${os.hostname()}-${process.pid}`,
    logLevel: v.LOG_LEVEL,
    rootDir,
    database: {
      url: databaseUrl,
      dialect: isSqlite ? 'sqlite' : 'postgres',
      storage: sqliteStorage,
      poolSize: v.DB_POOL_SIZE,
      poolOverflow: v.DB_POOL_OVERFLOW,
      migrateOnStart: v.MIGRATE_ON_START,
      tls,
    },
    redis,
    corsOrigins: origins as readonly string[] | '*',
    trustProxy: v.TRUST_PROXY,
    bodyLimitBytes: v.BODY_LIMIT_BYTES,
    auth: {
      jwtSecret,
      jwtSecretFile: jwtSecret === null && sqliteStorage !== undefined && sqliteStorage !== ':memory:' ? `${sqliteStorage}.jwt-secret` : null,
      jwtAlgorithm: v.JWT_ALGORITHM,
      accessTokenExpireMinutes: v.ACCESS_TOKEN_EXPIRE_MINUTES,
      requireAuth: v.REQUIRE_AUTH,
    },
    spirit: {
      provider: v.SPIRIT_PROVIDER,
      timeoutMs: v.SPIRIT_TIMEOUT_MS,
      retries: v.SPIRIT_RETRIES,
      retryBaseMs: v.SPIRIT_RETRY_BASE_MS,
      breakerFailures: v.SPIRIT_BREAKER_FAILURES,
      breakerCooldownMs: v.SPIRIT_BREAKER_COOLDOWN_MS,
      oracleDelayMs: v.SPIRIT_ORACLE_DELAY_MS,
      owedAnswersIntervalMs: v.OWED_ANSWERS_INTERVAL_MS,
      owedAnswerMaxAgeMs: Math.round(v.OWED_ANSWER_MAX_AGE_MINUTES * 60_000),
      gemini: { apiKey: v.GOOGLE_API_KEY ?? null, model: v.GEMINI_MODEL, baseUrl: v.GEMINI_BASE_URL.replace(/\/+$/, '') },
      openai: { apiKey: v.OPENAI_API_KEY ?? null, model: v.OPENAI_MODEL, baseUrl: v.OPENAI_BASE_URL.replace(/\/+$/, '') },
    },
    voice: {
      provider: v.TTS_PROVIDER,
      timeoutMs: v.TTS_TIMEOUT_MS,
      concurrency: v.TTS_CONCURRENCY,
      maxBytes: v.TTS_MAX_BYTES,
      cacheMaxBytes: v.TTS_CACHE_MAX_BYTES,
      elevenlabs: { apiKey: v.ELEVENLABS_API_KEY ?? null, voiceId: v.ELEVENLABS_VOICE_ID, baseUrl: v.ELEVENLABS_BASE_URL.replace(/\/+$/, ''), modelId: v.ELEVENLABS_MODEL_ID },
      openai: { apiKey: v.OPENAI_API_KEY ?? null, baseUrl: v.OPENAI_BASE_URL.replace(/\/+$/, ''), model: v.TTS_MODEL, voice: v.TTS_VOICE },
    },
    limits: {
      messagesPerWindow: v.MESSAGE_RATE_LIMIT,
      messageWindowSeconds: v.MESSAGE_RATE_WINDOW_S,
      sessionCreatesPerMinute: v.SESSION_CREATE_RATE_LIMIT,
      connectionsPerMinute: v.CONNECT_RATE_LIMIT,
      speechPerMinute: v.TTS_RATE_LIMIT,
      audioPerMinute: v.AUDIO_RATE_LIMIT,
    },
    clients: {
      eventRate: v.CLIENT_EVENT_RATE,
      // "20 per second, bursts of 40": a client may spend two seconds' worth at once.
      eventBurst: 2 * v.CLIENT_EVENT_RATE,
      maxBufferBytes: v.MAX_CONNECTION_BUFFER_BYTES,
      maxConnectionsPerParticipant: v.MAX_CONNECTIONS_PER_PARTICIPANT,
      maxConnectionsPerAddress: v.MAX_CONNECTIONS_PER_ADDRESS,
    },
    realtime: {
      pingIntervalMs: v.WS_PING_INTERVAL_MS,
      joinTimeoutMs: v.WS_JOIN_TIMEOUT_MS,
      presenceTtlMs: v.PRESENCE_TTL_MS,
    },
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    hardExitMs: v.SHUTDOWN_TIMEOUT_MS + SHUTDOWN_CLOSE_MARGIN_MS,
    behindTls: v.BEHIND_TLS,
    operations: {
      metricsToken: v.METRICS_TOKEN ?? null,
      adminUi: v.ADMIN_UI_PASSWORD ? { username: v.ADMIN_UI_USERNAME, password: v.ADMIN_UI_PASSWORD } : null,
    },
    lifecycle: {
      sessionIdleTimeoutMs: idleTimeoutMs,
      messageRetentionMs: v.MESSAGE_RETENTION_DAYS === undefined ? null : Math.round(v.MESSAGE_RETENTION_DAYS * 86_400_000),
      // Often enough that a session ends within a tenth of its timeout late, never more than once a minute apart.
      sweepIntervalMs: v.MAINTENANCE_INTERVAL_MS ?? Math.min(60_000, Math.max(500, Math.round(idleTimeoutMs / 10))),
    },
  };
  return deepFreeze(config);
}

const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'];

/**
 * `sslmode` and `sslrootcert` as libpq reads them from a PostgreSQL URL (PGSSLROOTCERT too).
 * Sequelize hands the pg driver a fixed list of options and drops these, so they are taken
 * out of the URL here and applied by the database module as the driver's `ssl` option.
 */
function databaseTls(rawUrl: string, rootCertEnv: string | undefined, problems: string[]): { url: string; tls: DatabaseTls | null } {
  if (rawUrl.startsWith('sqlite:')) return { url: rawUrl, tls: null };
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    problems.push('DATABASE_URL is not a valid URL');
    return { url: rawUrl, tls: null };
  }
  if (!url.searchParams.has('sslmode') && !url.searchParams.has('sslrootcert')) return { url: rawUrl, tls: null };
  const mode = url.searchParams.get('sslmode') ?? 'disable';
  const caFile = url.searchParams.get('sslrootcert') ?? rootCertEnv ?? null;
  url.searchParams.delete('sslmode');
  url.searchParams.delete('sslrootcert');
  const cleaned = url.toString();
  if (!SSL_MODES.includes(mode)) {
    problems.push(`DATABASE_URL: sslmode must be one of ${SSL_MODES.join(', ')} (got "${mode}")`);
    return { url: cleaned, tls: null };
  }
  if (mode === 'disable') return { url: cleaned, tls: null };
  let ca: string | null = null;
  if (caFile !== null && mode !== 'require') {
    try {
      ca = fs.readFileSync(caFile, 'utf8');
    } catch (err) {
      problems.push(`PGSSLROOTCERT: cannot read ${caFile} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  return { url: cleaned, tls: { mode: mode as SslMode, ca, caFile: ca === null ? null : caFile } };
}

/** TRUST_PROXY as proxy-addr (express's own) reads it: names (loopback, linklocal, uniquelocal), addresses, CIDR ranges. */
function checkTrustProxy(raw: string): string | null {
  try {
    proxyAddr.compile(trustedProxies(raw));
    return null;
  } catch (err) {
    return `TRUST_PROXY must list loopback, linklocal, uniquelocal, addresses or CIDR ranges, comma separated (${(err as Error).message})`;
  }
}

/** The entries of TRUST_PROXY. */
export function trustedProxies(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function parseAddresses(name: string, list: string, problems: string[]): RedisAddress[] {
  const addresses = list
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean)
    .map((a) => {
      const at = a.lastIndexOf(':');
      return { host: a.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(a.slice(at + 1)) };
    });
  for (const { host, port } of addresses) if (port < 1 || port > 65535) problems.push(`${name}: port of ${host} must be 1-65535`);
  return addresses;
}

/** Which Redis the node joins: one server, a Sentinel-watched master, or a Redis Cluster. */
function redisTarget(v: Record<string, any>, problems: string[]): RedisTarget | null {
  const chosen = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter((name) => v[name] !== undefined);
  if (chosen.length > 1) {
    problems.push(`Set only one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES (got ${chosen.join(', ')})`);
    return null;
  }
  const mode = chosen[0];
  if (mode !== 'REDIS_SENTINELS') {
    if (v.REDIS_SENTINEL_NAME !== undefined) problems.push('REDIS_SENTINEL_NAME needs REDIS_SENTINELS');
    if (v.REDIS_SENTINEL_PASSWORD !== undefined) problems.push('REDIS_SENTINEL_PASSWORD needs REDIS_SENTINELS');
  }
  if (v.REDIS_PASSWORD !== undefined && mode !== 'REDIS_SENTINELS' && mode !== 'REDIS_CLUSTER_NODES') {
    problems.push('REDIS_PASSWORD goes with REDIS_SENTINELS or REDIS_CLUSTER_NODES (with REDIS_URL, put it in the URL: redis://:PASSWORD@host:6379)');
  }
  const password: string | null = v.REDIS_PASSWORD ?? null;
  switch (mode) {
    case 'REDIS_URL':
      return { mode: 'single', url: v.REDIS_URL };
    case 'REDIS_SENTINELS':
      if (v.REDIS_SENTINEL_NAME === undefined) problems.push('REDIS_SENTINELS needs REDIS_SENTINEL_NAME (the master name the sentinels monitor)');
      return {
        mode: 'sentinel',
        sentinels: parseAddresses('REDIS_SENTINELS', v.REDIS_SENTINELS, problems),
        name: v.REDIS_SENTINEL_NAME ?? '',
        sentinelPassword: v.REDIS_SENTINEL_PASSWORD ?? null,
        password,
      };
    case 'REDIS_CLUSTER_NODES':
      return { mode: 'cluster', nodes: parseAddresses('REDIS_CLUSTER_NODES', v.REDIS_CLUSTER_NODES, problems), password };
    default:
      return null;
  }
}
