/**
 * The one way a token is verified, for REST and both realtime handshakes: a passport-jwt
 * strategy on a private Passport instance (no global state, so several apps can live in one
 * test process). It pins the configured algorithm, so `alg: none` and algorithm-swapped
 * tokens are refused like any bad signature. `requireAuth` answers 401 in the contract's
 * envelope instead of passport's plain-text reply.
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

/** Longer than any token this server issues: refused before it is parsed. */
const MAX_TOKEN_CHARS = 4096;

export interface TokenVerifier {
  /** The claims of a valid token, or UNAUTHORIZED (never says which check failed). */
  verify(token: unknown): Promise<TokenClaims>;
  /** The claims of the request's valid `Authorization: Bearer` token, or null (none, or not valid). */
  fromRequest(req: Pick<Request, 'headers'>): Promise<TokenClaims | null>;
  /** Express middleware: `req.auth` from a valid Bearer token, else 401 UNAUTHORIZED. */
  requireAuth: RequestHandler;
}

export function createTokenVerifier(auth: Pick<Config['auth'], 'jwtAlgorithm'>, secret: string): TokenVerifier {
  const passport = new Passport();
  passport.use(
    'jwt',
    new JwtStrategy(
      {
        jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
        // passport-jwt hands it to jsonwebtoken, which takes a key object (see hmacKey).
        secretOrKey: hmacKey(secret) as unknown as string,
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

  const fromRequest = (req: Pick<Request, 'headers'>): Promise<TokenClaims | null> => {
    const header = req.headers.authorization;
    if (typeof header === 'string' && header.length > MAX_TOKEN_CHARS + 7) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      // A plain object is all passport needs of a request (the realtime handshakes have no express one).
      const request = { headers: { authorization: header } } as unknown as Request;
      const fail = (err: unknown) => reject(err instanceof Error ? err : new Error(String(err)));
      const handler = passport.authenticate('jwt', { session: false }, (err: unknown, claims: TokenClaims | false) => (err ? fail(err) : resolve(claims || null))) as RequestHandler;
      void handler(request, {} as Response, fail);
    });
  };

  return {
    fromRequest,
    async verify(token) {
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_CHARS) throw new AppError('UNAUTHORIZED', 'A valid token is required');
      const claims = await fromRequest({ headers: { authorization: `Bearer ${token}` } });
      if (!claims) throw new AppError('UNAUTHORIZED', 'Invalid or expired token');
      return claims;
    },
    requireAuth(req: Request, _res: Response, next: NextFunction) {
      fromRequest(req).then((claims) => {
        if (!claims) return next(new AppError('UNAUTHORIZED', 'A valid Bearer token is required'));
        req.auth = claims;
        next();
      }, next);
    },
  };
}
