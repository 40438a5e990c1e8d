/**
 * Gives every request an id (the caller's X-Request-Id when it is sane), names the serving
 * node, and logs one line per request with method, path, status and duration (at debug for
 * probes and scrapes).
 */
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '../../logger';

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    log: Logger;
  }
}

/** Probes and scrapes arrive every few seconds from every orchestrator and Prometheus: debug, not info. */
const QUIET_PATHS = new Set(['/livez', '/readyz', '/metrics']);
const SAFE_REQUEST_ID = /^[A-Za-z0-9_.:-]{1,64}$/;

export function requestContext(logger: Logger, nodeId: string): RequestHandler {
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
      const level = res.statusCode >= 500 ? 'error' : QUIET_PATHS.has(path) ? 'debug' : 'info';
      req.log[level]({ method: req.method, path, status: res.statusCode, duration_ms: Math.round(duration_ms * 100) / 100 }, 'request');
    });
    next();
  };
}
