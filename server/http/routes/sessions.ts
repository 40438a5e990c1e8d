/** REST routes of the session resource. */
import type { IncomingMessage } from 'node:http';
import { Router, type RequestHandler } from 'express';
import type { TokenService } from '../../auth/tokens';
import { AppError } from '../../errors';
import type { MessageStore } from '../../storage/ports';
import type { Presence } from '../../services/presence/types';
import type { RateLimits } from '../../services/rateLimits';
import type { RoomService } from '../../services/rooms';
import type { SessionService } from '../../services/sessions';
import { schemas, validate } from '../../validation/schemas';
import { sendData } from '../envelope';

export interface SessionRouteDeps {
  sessions: SessionService;
  messages: MessageStore;
  presence: Presence;
  rooms: RoomService;
  tokens: TokenService;
  limits: RateLimits;
  /** Who is asking (through trusted proxies only): the key of per-address limits. */
  clientAddress: (req: IncomingMessage) => string;
  requireAuth: RequestHandler;
}

export function sessionRoutes(deps: SessionRouteDeps): Router {
  const router = Router();

  /**
   * @openapi
   * /api/sessions:
   *   post:
   *     tags: [Sessions]
   *     summary: Open a séance session
   *     description: Returns the session and a `creator_token` that may end it. Unknown fields are refused.
   *     requestBody:
   *       required: true
   *       content:
   *         application/json:
   *           schema: { $ref: '#/components/schemas/SessionCreate' }
   *     responses:
   *       201:
   *         description: Created
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/CreatedSessionEnvelope' }
   *       400: { $ref: '#/components/responses/ValidationError' }
   *       413: { $ref: '#/components/responses/PayloadTooLarge' }
   *       429: { $ref: '#/components/responses/RateLimited' }
   *       503: { $ref: '#/components/responses/ServiceUnavailable' }
   */
  router.post('/', async (req, res) => {
    await deps.limits.consume('sessionCreate', deps.clientAddress(req));
    const input = validate<{ name: string; max_users: number }>(schemas.createSession, req.body);
    const session = await deps.sessions.create(input);
    sendData(req, res, 201, { ...session, creator_token: deps.tokens.createCreatorToken(session.id) });
  });

  /**
   * @openapi
   * /api/sessions/{id}:
   *   get:
   *     tags: [Sessions]
   *     summary: A session with its cluster-wide participant count
   *     parameters: [{ $ref: '#/components/parameters/SessionId' }]
   *     responses:
   *       200:
   *         description: The session
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/SessionWithCountEnvelope' }
   *       404: { $ref: '#/components/responses/SessionNotFound' }
   *       503: { $ref: '#/components/responses/ServiceUnavailable' }
   *   delete:
   *     tags: [Sessions]
   *     summary: End a session (creator only)
   *     description: Every participant on every node gets `session_ended` and is disconnected; later joins get SESSION_INACTIVE.
   *     security: [{ bearerAuth: [] }]
   *     parameters: [{ $ref: '#/components/parameters/SessionId' }]
   *     responses:
   *       200:
   *         description: The ended session (`is_active` false)
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/SessionEnvelope' }
   *       401: { $ref: '#/components/responses/Unauthorized' }
   *       403: { $ref: '#/components/responses/Forbidden' }
   *       404: { $ref: '#/components/responses/SessionNotFound' }
   *       503: { $ref: '#/components/responses/ServiceUnavailable' }
   */
  router.get('/:id', async (req, res) => {
    sendData(req, res, 200, await deps.sessions.getWithCount(req.params.id));
  });

  router.delete('/:id', deps.requireAuth, async (req, res) => {
    if (!req.auth) throw new AppError('UNAUTHORIZED', 'A valid Bearer token is required');
    sendData(req, res, 200, await deps.rooms.end(req.params.id as string, req.auth));
  });

  /**
   * @openapi
   * /api/sessions/{id}/history:
   *   get:
   *     tags: [Sessions]
   *     summary: Stored messages, oldest first, paged backwards by cursor or forwards by seq
   *     description: Every message has `seq`, its place in the session (1, 2, 3, … with no gap). `before` pages back from the newest; `after_seq` pages forward (a client catching up gives the last seq it has). The two cannot be combined.
   *     parameters:
   *       - { $ref: '#/components/parameters/SessionId' }
   *       - { name: limit, in: query, schema: { type: integer, minimum: 1, maximum: 100, default: 50 } }
   *       - { name: before, in: query, description: '`meta.next_cursor` of the previous page', schema: { type: string } }
   *       - { name: after_seq, in: query, description: 'only messages with a greater `seq`, oldest first', schema: { type: integer, minimum: 0 } }
   *     responses:
   *       200:
   *         description: A page of history; `meta.next_cursor` (backward pages only) is null at the start of the session
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/HistoryEnvelope' }
   *       400: { $ref: '#/components/responses/ValidationError' }
   *       404: { $ref: '#/components/responses/SessionNotFound' }
   *       503: { $ref: '#/components/responses/ServiceUnavailable' }
   */
  router.get('/:id/history', async (req, res) => {
    const session = await deps.sessions.get(req.params.id);
    const query = validate<{ limit: number; before?: string; after_seq?: number }>(schemas.historyQuery, { ...req.query });
    if (query.after_seq !== undefined) {
      const messages = await deps.messages.after(session.id, query.after_seq, query.limit);
      sendData(
        req,
        res,
        200,
        messages.map(({ in_reply_to: _answered, ...item }) => item),
      );
      return;
    }
    const page = await deps.messages.page(session.id, query);
    sendData(req, res, 200, page.messages, { next_cursor: page.nextCursor });
  });

  /**
   * @openapi
   * /api/sessions/{id}/participants:
   *   get:
   *     tags: [Sessions]
   *     summary: Who is in the session now, across every node
   *     parameters: [{ $ref: '#/components/parameters/SessionId' }]
   *     responses:
   *       200:
   *         description: Participants in joining order
   *         content:
   *           application/json:
   *             schema: { $ref: '#/components/schemas/ParticipantsEnvelope' }
   *       404: { $ref: '#/components/responses/SessionNotFound' }
   *       503: { $ref: '#/components/responses/ServiceUnavailable' }
   */
  router.get('/:id/participants', async (req, res) => {
    const session = await deps.sessions.get(req.params.id);
    sendData(req, res, 200, await deps.presence.list(session.id));
  });

  return router;
}
