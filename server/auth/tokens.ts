/**
 * JWT issue, and the claims a valid token must carry. Verification is passport-jwt's, on one
 * path for REST and both realtime transports (passport.ts).
 */
import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Config } from '../../config';
import { AppError } from '../errors';

/** A guest's identity token from POST /api/auth/token. */
export interface AccessClaims {
  typ: 'access';
  sub: string;
  name: string;
}

/** The token POST /api/sessions hands the creator: it may end that one session. */
export interface CreatorClaims {
  typ: 'creator';
  sub: string;
  sid: string;
}

export type TokenClaims = AccessClaims | CreatorClaims;

/**
 * The HMAC secret as a key object, made once. Given a string, jsonwebtoken first tries it as
 * a PEM key and turns it into a key object on every sign and verify, throwing and catching an
 * exception each time (about 0.2 ms, the largest cost of creating a session).
 */
export function hmacKey(secret: string): KeyObject {
  return createSecretKey(Buffer.from(secret, 'utf8'));
}

export class TokenService {
  private readonly key: KeyObject;

  constructor(
    private readonly auth: Pick<Config['auth'], 'jwtAlgorithm' | 'accessTokenExpireMinutes'>,
    secret: string,
  ) {
    this.key = hmacKey(secret);
  }

  get expiresInSeconds(): number {
    return this.auth.accessTokenExpireMinutes * 60;
  }

  createAccessToken(user: { id: string; name: string }): string {
    const claims: Omit<AccessClaims, 'sub'> = { typ: 'access', name: user.name };
    return this.sign(claims, user.id);
  }

  /**
   * No expiry: the token is good for as long as its session is active (ending checks the
   * session), so a creator can end a séance that lasted longer than any token lifetime.
   */
  createCreatorToken(sessionId: string): string {
    const claims: Omit<CreatorClaims, 'sub'> = { typ: 'creator', sid: sessionId };
    return this.sign(claims, `creator:${sessionId}`, null);
  }

  /** The claims of a verified token's payload, or UNAUTHORIZED when it lacks what they need. */
  static claimsOf(payload: unknown): TokenClaims {
    const p = payload as { sub?: unknown; typ?: unknown; name?: unknown; sid?: unknown } | null;
    if (p && typeof p.sub === 'string') {
      if (p.typ === 'access' && typeof p.name === 'string') return { typ: 'access', sub: p.sub, name: p.name };
      if (p.typ === 'creator' && typeof p.sid === 'string') return { typ: 'creator', sub: p.sub, sid: p.sid };
    }
    throw new AppError('UNAUTHORIZED', 'Invalid or expired token');
  }

  private sign(claims: object, subject: string, expiresInSeconds: number | null = this.expiresInSeconds): string {
    return jwt.sign(claims, this.key, {
      algorithm: this.auth.jwtAlgorithm,
      ...(expiresInSeconds === null ? {} : { expiresIn: expiresInSeconds }),
      subject,
      jwtid: randomUUID(),
    });
  }
}
