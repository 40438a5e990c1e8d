/** The REST envelope every /api reply wears (docs/protocol.md: REST). */
import type { Request, Response } from 'express';
import { HTTP_STATUS, type AppError } from '../errors';

export function meta(req: Request, extra: Record<string, unknown> = {}) {
  return { timestamp: new Date().toISOString(), request_id: req.id, ...extra };
}

export function sendData(req: Request, res: Response, status: number, data: unknown, extraMeta?: Record<string, unknown>): void {
  res.status(status).json({ success: true, data, meta: meta(req, extraMeta) });
}

export function sendError(req: Request, res: Response, error: AppError): void {
  if (error.retryAfterSeconds) res.setHeader('Retry-After', String(error.retryAfterSeconds));
  const body: Record<string, unknown> = { code: error.code, message: error.message };
  if (error.details) body.details = error.details;
  res.status(HTTP_STATUS[error.code]).json({ success: false, error: body, meta: meta(req) });
}
