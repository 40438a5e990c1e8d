/**
 * The OpenAPI 3 document: shared schemas here, each operation documented beside its route
 * (`@openapi` blocks, collected by swagger-jsdoc from the route files, source or built).
 */
import path from 'node:path';
import swaggerJsdoc from 'swagger-jsdoc';

const envelope = (data: object) => ({
  type: 'object',
  required: ['success', 'data', 'meta'],
  properties: { success: { type: 'boolean', enum: [true] }, data, meta: { $ref: '#/components/schemas/Meta' } },
});
const errorResponse = (description: string, code: string) => ({
  description,
  content: {
    'application/json': {
      schema: { $ref: '#/components/schemas/ErrorEnvelope' },
      example: { success: false, error: { code, message: description }, meta: { timestamp: '2026-11-22T10:00:00.000Z', request_id: 'a1b2' } },
    },
  },
});

const session = {
  type: 'object',
  required: ['id', 'name', 'created_at', 'max_users', 'is_active'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string', minLength: 1, maxLength: 100 },
    created_at: { type: 'string', format: 'date-time' },
    max_users: { type: 'integer', minimum: 2, maximum: 12 },
    is_active: { type: 'boolean' },
  },
};

const definition = {
  openapi: '3.0.3',
  info: {
    title: 'Séance API',
    version: '0.1.0',
    description:
      'REST side of the Séance realtime backend. Realtime events travel over Socket.IO (`/socket.io`) and the raw WebSocket path `/ws/{session_id}`; see docs/protocol.md in the repository.',
  },
  components: {
    securitySchemes: {
      bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, when the server sets one' },
    },
    parameters: {
      SessionId: { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } },
    },
    schemas: {
      Meta: {
        type: 'object',
        properties: { timestamp: { type: 'string', format: 'date-time' }, request_id: { type: 'string' }, next_cursor: { type: 'string', nullable: true } },
      },
      Error: {
        type: 'object',
        required: ['code', 'message'],
        properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object', additionalProperties: { type: 'string' } } },
      },
      ErrorEnvelope: {
        type: 'object',
        properties: { success: { type: 'boolean', enum: [false] }, error: { $ref: '#/components/schemas/Error' }, meta: { $ref: '#/components/schemas/Meta' } },
      },
      SessionCreate: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: 100 }, max_users: { type: 'integer', minimum: 2, maximum: 12, default: 6 } },
      },
      Session: session,
      Participant: {
        type: 'object',
        properties: { id: { type: 'string' }, name: { type: 'string' }, joined_at: { type: 'string', format: 'date-time' } },
      },
      HistoryMessage: {
        type: 'object',
        properties: {
          id: { type: 'integer' },
          seq: { type: 'integer', minimum: 1, description: 'the message’s place in its session: 1, 2, 3, … with no gap' },
          session_id: { type: 'string', format: 'uuid' },
          user_id: { type: 'string', nullable: true },
          user_name: { type: 'string', nullable: true },
          message: { type: 'string' },
          is_spirit: { type: 'boolean' },
          timestamp: { type: 'string', format: 'date-time' },
        },
      },
      TokenRequest: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: 50 }, user_id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
      },
      Health: {
        type: 'object',
        properties: {
          status: { type: 'string', enum: ['healthy', 'unhealthy'] },
          draining: { type: 'boolean', description: 'present (true) while the node shuts down' },
          degraded: { type: 'boolean', description: 'present (true) while Redis is down and the node serves only its own clients' },
          database: { type: 'string', enum: ['connected', 'disconnected'] },
          redis: { type: 'string', enum: ['connected', 'disconnected', 'disabled'] },
          node_id: { type: 'string' },
          uptime_s: { type: 'integer' },
          timestamp: { type: 'string', format: 'date-time' },
        },
      },
      Live: {
        type: 'object',
        properties: { status: { type: 'string', enum: ['alive'] }, node_id: { type: 'string' } },
      },
      Ready: {
        type: 'object',
        properties: {
          status: { type: 'string', enum: ['ready', 'not_ready'] },
          database: { type: 'string', enum: ['connected', 'disconnected'] },
          redis: { type: 'string', enum: ['connected', 'disconnected', 'disabled'] },
          draining: { type: 'boolean' },
          degraded: { type: 'boolean', description: 'true while Redis is down: ready for its own clients, no cross-node fan-out' },
          node_id: { type: 'string' },
        },
      },
      SessionEnvelope: envelope({ $ref: '#/components/schemas/Session' }),
      CreatedSessionEnvelope: envelope({ allOf: [{ $ref: '#/components/schemas/Session' }, { type: 'object', properties: { creator_token: { type: 'string' } } }] }),
      SessionWithCountEnvelope: envelope({ allOf: [{ $ref: '#/components/schemas/Session' }, { type: 'object', properties: { participant_count: { type: 'integer' } } }] }),
      HistoryEnvelope: envelope({ type: 'array', items: { $ref: '#/components/schemas/HistoryMessage' } }),
      ParticipantsEnvelope: envelope({ type: 'array', items: { $ref: '#/components/schemas/Participant' } }),
      TokenEnvelope: envelope({
        type: 'object',
        properties: {
          access_token: { type: 'string' },
          token_type: { type: 'string', enum: ['Bearer'] },
          expires_in: { type: 'integer' },
          user: { $ref: '#/components/schemas/Participant' },
        },
      }),
    },
    responses: {
      ValidationError: errorResponse('Invalid input; details name each bad field', 'VALIDATION_ERROR'),
      PayloadTooLarge: errorResponse('The request body is too large', 'PAYLOAD_TOO_LARGE'),
      RateLimited: errorResponse('Too many requests; see Retry-After', 'RATE_LIMITED'),
      SessionNotFound: errorResponse('Session not found', 'SESSION_NOT_FOUND'),
      Unauthorized: errorResponse('A valid Bearer token is required', 'UNAUTHORIZED'),
      Forbidden: errorResponse('The token given does not allow this (another session, or another user id)', 'FORBIDDEN'),
      NotFound: errorResponse('No such route', 'NOT_FOUND'),
      ServiceUnavailable: errorResponse('A service this server needs is unavailable (or the server is restarting); try again shortly', 'SERVICE_UNAVAILABLE'),
    },
  },
  paths: {
    '/': { get: { tags: ['Operations'], summary: 'Redirects to /docs', responses: { 302: { description: 'Redirect to /docs' } } } },
    '/openapi.json': { get: { tags: ['Operations'], summary: 'This document', responses: { 200: { description: 'OpenAPI 3 document' } } } },
    '/asyncapi.json': { get: { tags: ['Operations'], summary: 'The realtime protocol (Socket.IO and /ws): AsyncAPI 3 document', responses: { 200: { description: 'AsyncAPI 3 document' } } } },
    '/docs': { get: { tags: ['Operations'], summary: 'Swagger UI', responses: { 200: { description: 'HTML' } } } },
    '/play': { get: { tags: ['Operations'], summary: 'A page to try a séance in a browser (join by link, chat, hear the spirit)', responses: { 200: { description: 'HTML' } } } },
    '/admin/': {
      get: {
        tags: ['Operations'],
        summary: 'Socket.IO Admin UI page (only when ADMIN_UI_PASSWORD is set; its Socket.IO namespace is /admin)',
        responses: { 200: { description: 'HTML' }, 404: { description: 'The Admin UI is off' } },
      },
    },
  },
};

export function buildOpenApiDocument(): object {
  return swaggerJsdoc({
    definition,
    apis: [path.join(__dirname, 'routes', '*.ts'), path.join(__dirname, 'routes', '*.js')],
    failOnErrors: true,
  });
}
