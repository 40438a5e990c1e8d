/**
 * Any OpenAI-compatible chat completions server (OpenAI, Ollama, vLLM, LM Studio, ...).
 * Any failure is thrown: the service owns retries and the fallback.
 */
import type { Config } from '../../../config';
import { buildTurns, SPIRIT_INSTRUCTION } from './personality';
import type { SpiritProvider, SpiritRequest } from './types';
import { postJson } from './postJson';

export type OpenAIOptions = Config['spirit']['openai'];

const MAX_TOKENS = 256;
const TEMPERATURE = 0.9;

interface ChatCompletionResponse {
  choices?: Array<{ message?: { content?: unknown }; finish_reason?: string }>;
  error?: { code?: unknown; type?: unknown };
}

/** Content is a string on most servers, an array of text parts on a few. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part: { text?: unknown }) => (typeof part?.text === 'string' ? part.text : '')).join('');
  }
  return '';
}

export class OpenAIProvider implements SpiritProvider {
  readonly name = 'openai';

  constructor(private readonly options: OpenAIOptions) {}

  async answer(req: SpiritRequest, signal: AbortSignal): Promise<string> {
    const { apiKey, baseUrl, model } = this.options;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    // Local servers usually run without a key; sending an empty Bearer would be refused by some.
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    const body = {
      model,
      messages: [{ role: 'system', content: SPIRIT_INSTRUCTION }, ...buildTurns(req).map((turn) => ({ role: turn.role === 'spirit' ? 'assistant' : 'user', content: turn.text }))],
      max_tokens: MAX_TOKENS,
      temperature: TEMPERATURE,
    };

    const res = await postJson<ChatCompletionResponse>(`${baseUrl}/chat/completions`, headers, body, signal);
    const data = res.data;
    if (!res.ok) {
      // Only the error code: OpenAI's messages quote part of a rejected key.
      const code = data?.error?.code ?? data?.error?.type;
      throw new Error(`openai answered HTTP ${res.status}${typeof code === 'string' ? ` ${code}` : ''}`);
    }
    if (!data || typeof data !== 'object') throw new Error('openai answered with a body that is not a JSON object');

    const choice = data.choices?.[0];
    // Reasoning models served this way (DeepSeek R1 on Ollama, ...) put their thoughts inline.
    const text = contentText(choice?.message?.content).replace(/<think>[\s\S]*?(<\/think>|$)/g, '');
    if (text.trim() === '') throw new Error(`openai answered without text (${choice?.finish_reason ?? 'no choice'})`);
    return text;
  }
}
