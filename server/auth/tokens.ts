/**
 * JWT issue and verify. Every verification pins the configured algorithm, so `alg: none`
 * and algorithm-swapped tokens are refused like any bad signature.
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

  constructor(private readonly auth: Config['auth']) {
    this.key = hmacKey(auth.jwtSecret);
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

  /** Returns the claims of a valid token, or throws UNAUTHORIZED (never says which check failed). */
  verify(token: unknown): TokenClaims {
    if (typeof token !== 'string' || token.length === 0 || token.length > 4096) {
      throw new AppError('UNAUTHORIZED', 'A valid token is required');
    }
    let payload: unknown;
    try {
      payload = jwt.verify(token, this.key, { algorithms: [this.auth.jwtAlgorithm] });
    } catch {
      throw new AppError('UNAUTHORIZED', 'Invalid or expired token');
    }
    return TokenService.claimsOf(payload);
  }

  /** Shape check shared with the passport strategy, which verifies the signature itself. */
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
