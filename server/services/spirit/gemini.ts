/**
 * Google Gemini through the REST `generateContent` call. Any failure is thrown: the service
 * owns retries and the fallback.
 */
import type { Config } from '../../../config';
import { buildTurns, SPIRIT_INSTRUCTION } from './personality';
import type { SpiritProvider, SpiritRequest } from './types';
import { postJson } from './postJson';

export type GeminiOptions = Config['spirit']['gemini'];

// Room for a 30-word answer with slack: thinking models spend output tokens before the
// text, and too tight a budget leaves them with none for the answer itself.
const MAX_OUTPUT_TOKENS = 256;
const TEMPERATURE = 0.9;

interface GeminiResponse {
  candidates?: Array<{
    content?: { parts?: Array<{ text?: unknown; thought?: unknown }> };
    finishReason?: string;
  }>;
  promptFeedback?: { blockReason?: string };
  error?: { status?: string };
}

export class GeminiProvider implements SpiritProvider {
  readonly name = 'gemini';

  constructor(private readonly options: GeminiOptions) {}

  async answer(req: SpiritRequest, signal: AbortSignal): Promise<string> {
    const { apiKey, baseUrl } = this.options;
    // Google's docs name models "models/gemini-…"; the path already carries that prefix.
    const model = this.options.model.replace(/^models\//, '');
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    // The key goes in a header, never in the URL, so that no error or log line carries it.
    if (apiKey) headers['x-goog-api-key'] = apiKey;
    const body = {
      system_instruction: { parts: [{ text: SPIRIT_INSTRUCTION }] },
      contents: buildTurns(req).map((turn) => ({
        role: turn.role === 'spirit' ? 'model' : 'user',
        parts: [{ text: turn.text }],
      })),
      generationConfig: { maxOutputTokens: MAX_OUTPUT_TOKENS, temperature: TEMPERATURE },
    };

    const res = await postJson<GeminiResponse>(`${baseUrl}/models/${model}:generateContent`, headers, body, signal);
    const data = res.data;
    if (!res.ok) {
      // Only the status code name: an error body may quote the request.
      throw new Error(`gemini answered HTTP ${res.status}${data?.error?.status ? ` ${data.error.status}` : ''}`);
    }
    if (!data || typeof data !== 'object') throw new Error('gemini answered with a body that is not a JSON object');

    const candidate = data.candidates?.[0];
    const parts = candidate?.content?.parts;
    const text = Array.isArray(parts)
      ? parts
          .filter((part) => typeof part?.text === 'string' && part.thought !== true)
          .map((part) => part.text as string)
          .join('')
      : '';
    if (text.trim() === '') {
      const reason = data.promptFeedback?.blockReason ?? candidate?.finishReason ?? 'no candidate';
      throw new Error(`gemini answered without text (${reason})`);
    }
    return text;
  }
}
