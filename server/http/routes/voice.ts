/**
 * The spirit's voice over HTTP: an answer's audio at a stable, cacheable path, and
 * POST /api/tts/generate, the call the existing frontend makes. Both reply with the audio
 * itself (not an envelope); their errors wear the envelope like every /api reply.
 */
import type { IncomingMessage } from 'node:http';
import { Router, type Request, type Response } from 'express';
import { AppError } from '../../errors';
import type { MessageStore } from '../../storage/ports';
import type { RateLimits } from '../../services/rateLimits';
import type { StoredAudio, VoiceService } from '../../services/voice';
import { isSessionId, isStoredNumber, schemas, validate } from '../../validation/schemas';

export interface VoiceRouteDeps {
  voice: VoiceService;
  messages: MessageStore;
  limits: RateLimits;
  /** Who is asking (through trusted proxies only): the key of per-address limits. */
  clientAddress: (req: IncomingMessage) => string;
}

/** An answer's audio never changes: the same text and voice always map to the same bytes. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const MESSAGE_ID = /^[1-9][0-9]{0,9}$/;

function sendAudio(res: Response, audio: StoredAudio): void {
  res.setHeader('Content-Type', audio.contentType);
  res.setHeader('Content-Length', String(audio.bytes.length));
  res.setHeader('X-Seance-Voice', audio.fallback ? `${audio.provider}; fallback` : audio.provider);
  res.status(200).end(audio.bytes);
}

export function voiceRoutes(deps: VoiceRouteDeps): Router {
  const router = Router();
  const notFound = () => new AppError('NOT_FOUND', 'No spoken answer here');

  /**
   * @openapi
   * /api/sessions/{id}/messages/{message_id}/audio:
   *   get:
   *     tags: [Voice]
   *     summary: One of the spirit's answers, spoken
   *     description: |
   *       The path a `spirit_response` names in `audio_url`. Made on the first request (by any node) and kept
   *       in the database as long as the message, so every node serves the same bytes; cacheable for good
   *       (`ETag`, `immutable`). Limited per client address (`AUDIO_RATE_LIMIT` a minute).
   *       404 when speech is off (`TTS_PROVIDER=none`) or the message is not one of the spirit's answers.
   *     parameters:
   *       - { $ref: '#/components/parameters/SessionId' }
   *       - { name: message_id, in: path, required: true, schema: { type: integer } }
   *     responses:
   *       200:
   *         description: The audio
   *         headers:
   *           ETag: { schema: { type: string } }
   *           Cache-Control: { schema: { type: string } }
   *         content:
   *           audio/wav: { schema: { type: string, format: binary } }
   *           audio/mpeg: { schema: { type: string, format: binary } }
   *       304: { description: Not modified (If-None-Match matched) }
   *       404: { $ref: '#/components/responses/NotFound' }
   *       429: { $ref: '#/components/responses/RateLimited' }
   *       503: { $ref: '#/components/responses/ServiceUnavailable' }
   */
  router.get('/api/sessions/:id/messages/:messageId/audio', async (req: Request, res: Response) => {
    const { id, messageId } = req.params as { id: string; messageId: string };
    if (!deps.voice.enabled || !isSessionId(id) || !MESSAGE_ID.test(messageId) || !isStoredNumber(Number(messageId))) throw notFound();
    await deps.limits.consume('audio', deps.clientAddress(req));
    const text = await deps.messages.spiritText(id, Number(messageId));
    if (text === null) throw notFound();
    const audio = await deps.voice.speakAnswer(Number(messageId), text);
    const etag = `"${audio.digest}"`;
    res.setHeader('ETag', etag);
    res.setHeader('Cache-Control', IMMUTABLE);
    if (req.headers['if-none-match']?.split(/\s*,\s*/).includes(etag)) {
      res.status(304).end();
      return;
    }
    sendAudio(res, audio);
  });

  /**
   * @openapi
   * /api/tts/generate:
   *   post:
   *     tags: [Voice]
   *     summary: Speak any text in the spirit's voice
   *     description: |
   *       The call the existing web frontend makes. `voice_id` picks a voice of the configured provider
   *       (an ElevenLabs voice id, an OpenAI voice name, or one of the built-in `rms`, `awb`, `slt`, `kal16`);
   *       unknown to it, the provider's default is used. A text and voice is spoken once for the whole
   *       cluster and kept, least recently used first out (`TTS_CACHE_MAX_BYTES`). Limited per client
   *       address (`TTS_RATE_LIMIT` a minute).
   *     requestBody:
   *       required: true
   *       content:
   *         application/json:
   *           schema:
   *             type: object
   *             required: [text]
   *             additionalProperties: false
   *             properties:
   *               text: { type: string, minLength: 1, maxLength: 500 }
   *               voice_id: { type: string, maxLength: 100 }
   *     responses:
   *       200:
   *         description: The audio
   *         content:
   *           audio/wav: { schema: { type: string, format: binary } }
   *           audio/mpeg: { schema: { type: string, format: binary } }
   *       400: { $ref: '#/components/responses/ValidationError' }
   *       404: { $ref: '#/components/responses/NotFound' }
   *       429: { $ref: '#/components/responses/RateLimited' }
   *       413: { $ref: '#/components/responses/PayloadTooLarge' }
   *       503: { $ref: '#/components/responses/ServiceUnavailable' }
   */
  router.post('/api/tts/generate', async (req: Request, res: Response) => {
    if (!deps.voice.enabled) throw new AppError('NOT_FOUND', 'Speech is turned off on this server (TTS_PROVIDER=none)');
    await deps.limits.consume('speech', deps.clientAddress(req));
    const input = validate<{ text: string; voice_id?: string }>(schemas.speak, req.body);
    const audio = await deps.voice.speak(input.text, input.voice_id);
    res.setHeader('Cache-Control', 'no-store');
    sendAudio(res, audio);
  });

  return router;
}
