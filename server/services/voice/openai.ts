/**
 * Any server with OpenAI's speech endpoint: POST {OPENAI_BASE_URL}/audio/speech with
 * {model, input, voice, response_format: "mp3", speed}; the reply is the audio bytes.
 */
import type { Config } from '../../../config';
import { fetchAudio } from './fetchAudio';
import type { SpokenAudio, VoiceProvider } from './types';

/** Slower than normal speech: the spirit takes its time. */
const SPEED = 0.85;
/** Only the gpt-4o speech models take instructions; the tts-1 family refuses them. */
const INSTRUCTIONS = 'Speak slowly, low and hushed, like a spirit answering from far beyond the veil.';

export class OpenAIVoice implements VoiceProvider {
  readonly name = 'openai';
  readonly fingerprint: string;
  private readonly instructed: boolean;

  constructor(
    private readonly config: Config['voice']['openai'],
    private readonly maxBytes: number,
  ) {
    this.instructed = /^gpt-4o/.test(config.model);
    this.fingerprint = `${config.model}/mp3/speed-${SPEED}${this.instructed ? '/instructed-1' : ''}`;
  }

  voiceFor(requested: string | undefined): string {
    return requested ?? this.config.voice;
  }

  speak(text: string, voice: string, signal: AbortSignal): Promise<SpokenAudio> {
    const headers: Record<string, string> = { accept: 'audio/mpeg' };
    if (this.config.apiKey) headers.authorization = `Bearer ${this.config.apiKey}`;
    const body = { model: this.config.model, input: text, voice, response_format: 'mp3', speed: SPEED, ...(this.instructed ? { instructions: INSTRUCTIONS } : {}) };
    return fetchAudio(`${this.config.baseUrl}/audio/speech`, headers, body, signal, this.maxBytes);
  }
}
