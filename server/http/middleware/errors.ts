/**
 * The one place an HTTP error is logged and answered. Body-parser failures become the
 * contract's codes; anything unknown is INTERNAL_ERROR with no stack or SQL in the reply.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, classifyError, isDependencyUnavailable, isServerFault } from '../../errors';
import { sendError } from '../envelope';

function fromBodyParser(err: { type?: string; status?: number }): AppError | null {
  if (err.type === 'entity.too.large') return new AppError('PAYLOAD_TOO_LARGE', 'The request body is too large');
  if (err.type === 'entity.parse.failed') return new AppError('VALIDATION_ERROR', 'Malformed JSON body', { body: 'Malformed JSON' });
  if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') {
    return new AppError('VALIDATION_ERROR', 'Unsupported body encoding', { body: 'Unsupported encoding' });
  }
  if (typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
    return new AppError('VALIDATION_ERROR', 'Malformed request', { body: 'Malformed request' });
  }
  return null;
}

/** A path whose percent-escapes do not decode names nothing we serve. */
function fromUndecodablePath(err: unknown, path: string): AppError | null {
  if (!(err instanceof URIError)) return null;
  return path.startsWith('/api/sessions/') ? new AppError('SESSION_NOT_FOUND', 'Session not found') : new AppError('NOT_FOUND', 'No such route');
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new AppError('NOT_FOUND', `No route for ${req.method} ${req.path.slice(0, 200)}`));
};

export const errorHandler: ErrorRequestHandler = (err: unknown, req, res, _next) => {
  const error = err instanceof AppError || isDependencyUnavailable(err) ? classifyError(err) : (fromUndecodablePath(err, req.path) ?? fromBodyParser(err ?? {}) ?? classifyError(err));
  if (isServerFault(error)) req.log.error({ err }, 'request failed');
  if (res.headersSent) {
    res.end();
    return;
  }
  sendError(req, res, error);
};
