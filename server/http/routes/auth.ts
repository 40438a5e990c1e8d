/** REST route that issues guest tokens for joining sessions. */
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { TokenService } from '../../auth/tokens';
import { schemas, validate } from '../../validation/schemas';
import { sendData } from '../envelope';

export function authRoutes(deps: { tokens: TokenService }): Router {
  const router = Router();

  /**
   * @openapi
   * /api/auth/token:
   *   post:
   *     tags: [Auth]
   *     summary: Issue a guest token
   *     description: The token's claims are the participant's identity when it joins a session.
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
   *       413: { $ref: '#/components/responses/PayloadTooLarge' }
   */
  router.post('/token', (req, res) => {
    const input = validate<{ name: string; user_id?: string }>(schemas.issueToken, req.body);
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
