/**
 * GET /health: what a load balancer and an operator need to know about this node.
 * GET /livez and /readyz: the two questions an orchestrator asks separately. Liveness checks
 * nothing beyond the process answering (a database blip must not get every pod restarted);
 * readiness says whether this node can serve sessions now. A Redis outage does not make a
 * node unready: it still stores and delivers its own clients' messages (the other nodes' catch
 * up when Redis returns), and failing every replica's readiness at once would leave a Service
 * with no endpoint at all. /health and seance_degraded say so instead.
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
   *         description: Unhealthy; the failing part says "disconnected" (draining is true during shutdown; degraded is true when only Redis is down and the node still serves its own clients)
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
    const ready = database === 'connected' && !draining;
    return { database, redis, draining, ready, degraded: ready && redis === 'disconnected', healthy: ready && redis !== 'disconnected' };
  };

  router.get('/health', async (_req, res) => {
    const { database, redis, draining, degraded, healthy } = await check();
    res.status(healthy ? 200 : 503).json({
      status: healthy ? 'healthy' : 'unhealthy',
      ...(draining ? { draining: true } : {}),
      ...(degraded ? { degraded: true } : {}),
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
   *     summary: Readiness (database reachable, not draining; for a readiness probe); a Redis outage leaves it 200 with degraded true
   *     responses:
   *       200:
   *         description: This node can serve sessions (degraded is true while Redis is down, when it serves its own clients only)
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/Ready' }
   *       503:
   *         description: Not ready; the database says "disconnected", or draining is true during shutdown
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/Ready' }
   */
  router.get('/readyz', async (_req, res) => {
    const { database, redis, draining, ready, degraded } = await check();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', database, redis, draining, degraded, node_id: deps.nodeId });
  });

  return router;
}
