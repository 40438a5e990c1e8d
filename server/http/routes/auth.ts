/** REST route that issues guest tokens for joining sessions. */
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { TokenVerifier } from '../../auth/passport';
import type { TokenService } from '../../auth/tokens';
import { AppError } from '../../errors';
import { schemas, validate } from '../../validation/schemas';
import { sendData } from '../envelope';

export function authRoutes(deps: { tokens: TokenService; verifier: TokenVerifier }): Router {
  const router = Router();

  /**
   * @openapi
   * /api/auth/token:
   *   post:
   *     tags: [Auth]
   *     summary: Issue a guest token
   *     description: >-
   *       The token's claims are the participant's identity when it joins a session. The server
   *       chooses the user id; a `user_id` in the body is a refresh, allowed only with
   *       `Authorization: Bearer` and a valid token of that same user id.
   *     requestBody:
   *       required: true
   *       content:
   *         application/json:
   *           schema: { $ref: '#/components/schemas/TokenRequest' }
   *     responses:
   *       201:
   *         description: Issued
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/TokenEnvelope' }
   *       400: { $ref: '#/components/responses/ValidationError' }
   *       403: { $ref: '#/components/responses/Forbidden' }
   *       413: { $ref: '#/components/responses/PayloadTooLarge' }
   */
  router.post('/token', async (req, res) => {
    const input = validate<{ name: string; user_id?: string }>(schemas.issueToken, req.body);
    if (input.user_id !== undefined) {
      // Naming an id is how someone would become somebody else: only that id's holder may (a refresh).
      const claims = await deps.verifier.fromRequest(req);
      if (claims?.typ !== 'access' || claims.sub !== input.user_id) {
        throw new AppError('FORBIDDEN', 'A user_id is given only to its holder: send Authorization: Bearer <a valid token of that user_id>, or leave user_id out');
      }
    }
    const user = { id: input.user_id ?? randomUUID(), name: input.name };
    sendData(req, res, 201, {
      access_token: deps.tokens.createAccessToken(user),
      token_type: 'Bearer',
      expires_in: deps.tokens.expiresInSeconds,
      user,
    });
  });

  return router;
}
