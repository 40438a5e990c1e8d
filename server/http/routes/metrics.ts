/** GET /metrics: this node's Prometheus figures, behind METRICS_TOKEN when one is set. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Router } from 'express';
import { AppError } from '../../errors';
import type { Metrics } from '../../metrics';

const digest = (text: string) => createHash('sha256').update(text).digest();

export function metricsRoutes(deps: { metrics: Metrics; token: string | null }): Router {
  const router = Router();
  // Compared as digests: equal lengths, so the comparison takes the same time for any guess.
  const expected = deps.token === null ? null : digest(`Bearer ${deps.token}`);

  /**
   * @openapi
   * /metrics:
   *   get:
   *     tags: [Operations]
   *     summary: "This node's Prometheus metrics (text format); needs `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set"
   *     security: [{ metricsToken: [] }]
   *     responses:
   *       200:
   *         description: Prometheus text exposition format
   *         content:
   *           text/plain: { schema: { type: string } }
   *       401:
   *         description: METRICS_TOKEN is set and the request does not carry it
   *         content:
   *           application/json: { schema: { $ref: '#/components/schemas/ErrorEnvelope' } }
   */
  router.get('/metrics', async (req, res) => {
    if (expected && !timingSafeEqual(digest(req.headers.authorization ?? ''), expected)) {
      throw new AppError('UNAUTHORIZED', 'This endpoint needs Authorization: Bearer <METRICS_TOKEN>');
    }
    const body = await deps.metrics.render();
    res.setHeader('Content-Type', deps.metrics.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(body);
  });

  return router;
}
