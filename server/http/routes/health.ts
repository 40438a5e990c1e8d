/**
 * GET /health: what a load balancer and an operator need to know about this node.
 * GET /livez and /readyz: the two questions an orchestrator asks separately. Liveness checks
 * nothing beyond the process answering (a database blip must not get every pod restarted);
 * readiness says whether this node can serve sessions now.
 */
import { Router } from 'express';
import type { Database } from '../../db';
import type { RedisConnections } from '../../redis';

const DB_CHECK_TIMEOUT_MS = 2_000;

export interface HealthDeps {
  db: Database;
  redis: RedisConnections | null;
  nodeId: string;
  /** True once the node is shutting down: it reports unhealthy so traffic moves elsewhere. */
  isDraining: () => boolean;
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([work, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]).finally(() => clearTimeout(timer));
}

export function healthRoutes(deps: HealthDeps): Router {
  const router = Router();
  const started = Date.now();

  /**
   * @openapi
   * /health:
   *   get:
   *     tags: [Operations]
   *     summary: Node health (no envelope)
   *     responses:
   *       200:
   *         description: Healthy
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/Health' }
   *       503:
   *         description: Unhealthy; the failing part says "disconnected" (or status "draining" during shutdown)
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/Health' }
   */
  const check = async () => {
    const database = await withTimeout(deps.db.ping(), DB_CHECK_TIMEOUT_MS).then(
      () => 'connected',
      () => 'disconnected',
    );
    const redis = deps.redis ? (deps.redis.isReady() ? 'connected' : 'disconnected') : 'disabled';
    const draining = deps.isDraining();
    return { database, redis, draining, healthy: database === 'connected' && redis !== 'disconnected' && !draining };
  };

  router.get('/health', async (_req, res) => {
    const { database, redis, draining, healthy } = await check();
    res.status(healthy ? 200 : 503).json({
      status: healthy ? 'healthy' : 'unhealthy',
      ...(draining ? { draining: true } : {}),
      database,
      redis,
      node_id: deps.nodeId,
      uptime_s: Math.round((Date.now() - started) / 1000),
      timestamp: new Date().toISOString(),
    });
  });

  /**
   * @openapi
   * /livez:
   *   get:
   *     tags: [Operations]
   *     summary: Liveness (no dependency is checked; for a liveness probe)
   *     responses:
   *       200:
   *         description: The process serves requests
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/Live' }
   */
  router.get('/livez', (_req, res) => {
    res.json({ status: 'alive', node_id: deps.nodeId });
  });

  /**
   * @openapi
   * /readyz:
   *   get:
   *     tags: [Operations]
   *     summary: Readiness (database, Redis when configured, not draining; for a readiness probe)
   *     responses:
   *       200:
   *         description: This node can serve sessions
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/Ready' }
   *       503:
   *         description: Not ready; the failing part says "disconnected", or draining is true during shutdown
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/Ready' }
   */
  router.get('/readyz', async (_req, res) => {
    const { database, redis, draining, healthy } = await check();
    res.status(healthy ? 200 : 503).json({ status: healthy ? 'ready' : 'not_ready', database, redis, draining, node_id: deps.nodeId });
  });

  return router;
}
