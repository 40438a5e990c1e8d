/**
 * Gives every request an id (the caller's X-Request-Id when it is sane), names the serving
 * node, and logs one line per request with method, path, status and duration (at debug for
 * probes and scrapes).
 */
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '../../logger';
import type { Metrics } from '../../metrics';

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    log: Logger;
  }
}

/** Probes and scrapes arrive every few seconds from every orchestrator and Prometheus: debug, not info. */
const QUIET_PATHS = new Set(['/livez', '/readyz', '/metrics']);
/** A probe's 503 is the node reporting an outage or a drain it already logs: news, not a fault of the request. */
const PROBE_PATHS = new Set(['/health', '/livez', '/readyz']);
const SAFE_REQUEST_ID = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * The route template a request matched (`/api/sessions/:id`), never its raw path: the metric's
 * label stays a short, fixed list whatever ids clients send. Static files and misses share one.
 */
function routeTemplate(req: Parameters<RequestHandler>[0]): string {
  const route = (req as { route?: { path?: unknown } }).route?.path;
  if (typeof route !== 'string') return 'unmatched';
  // A mounted router's route is relative to its mount (app.use('/api/sessions', …)), and after an
  // error reply express has reset req.baseUrl: the mount is the URL's leading segments (no mount
  // path of this app has a parameter).
  const segments = req.originalUrl.split('?')[0].split('/').filter(Boolean);
  const routeSegments = route.split('/').filter(Boolean);
  return `/${[...segments.slice(0, segments.length - routeSegments.length), ...routeSegments].join('/')}`;
}

export function requestContext(logger: Logger, nodeId: string, metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const incoming = req.headers['x-request-id'];
    req.id = typeof incoming === 'string' && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    req.log = logger.child({ req_id: req.id });
    res.setHeader('X-Request-Id', req.id);
    res.setHeader('X-Seance-Node', nodeId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const duration_ms = Number(process.hrtime.bigint() - started) / 1e6;
      const path = req.originalUrl.split('?')[0].slice(0, 200);
      const level = res.statusCode >= 500 ? (PROBE_PATHS.has(path) ? 'warn' : 'error') : QUIET_PATHS.has(path) ? 'debug' : 'info';
      metrics.httpRequest(req.method, routeTemplate(req), res.statusCode, duration_ms / 1000);
      req.log[level]({ method: req.method, path, status: res.statusCode, duration_ms: Math.round(duration_ms * 100) / 100 }, 'request');
    });
    next();
  };
}
