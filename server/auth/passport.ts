/**
 * The REST side of auth: a passport-jwt strategy on a private Passport instance (no global
 * state, so several apps can live in one test process) and `requireAuth`, which answers
 * 401 in the contract's envelope instead of passport's plain-text reply.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Passport } from 'passport';
import { ExtractJwt, Strategy as JwtStrategy } from 'passport-jwt';
import type { Config } from '../../config';
import { AppError } from '../errors';
import { hmacKey, TokenService, type TokenClaims } from './tokens';

declare module 'express-serve-static-core' {
  interface Request {
    auth?: TokenClaims;
  }
}

export function createRequireAuth(auth: Config['auth']): RequestHandler {
  const passport = new Passport();
  passport.use(
    'jwt',
    new JwtStrategy(
      {
        jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
        // passport-jwt hands it to jsonwebtoken, which takes a key object (see hmacKey).
        secretOrKey: hmacKey(auth.jwtSecret) as unknown as string,
        algorithms: [auth.jwtAlgorithm],
      },
      (payload: unknown, done: (err: unknown, user?: TokenClaims | false) => void) => {
        try {
          done(null, TokenService.claimsOf(payload));
        } catch {
          done(null, false);
        }
      },
    ),
  );
  const authenticate = (req: Request, res: Response, next: NextFunction): void => {
    const handler = passport.authenticate('jwt', { session: false }, (err: unknown, claims: TokenClaims | false) => {
      if (err) return next(err);
      if (!claims) return next(new AppError('UNAUTHORIZED', 'A valid Bearer token is required'));
      req.auth = claims;
      next();
    }) as RequestHandler;
    void handler(req, res, next);
  };
  return authenticate;
}
