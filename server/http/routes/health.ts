/** GET /health: what a load balancer and an operator need to know about this node. */
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
  router.get('/health', async (_req, res) => {
    const database = await withTimeout(deps.db.ping(), DB_CHECK_TIMEOUT_MS).then(
      () => 'connected',
      () => 'disconnected',
    );
    const redis = deps.redis ? (deps.redis.isReady() ? 'connected' : 'disconnected') : 'disabled';
    const draining = deps.isDraining();
    const healthy = database === 'connected' && redis !== 'disconnected' && !draining;
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

  return router;
}
