/**
 * ElevenLabs text-to-speech: POST {base}/v1/text-to-speech/{voice_id} with the `xi-api-key`
 * header and {text, model_id, voice_settings}; the reply is MP3 bytes.
 */
import type { Config } from '../../../config';
import { fetchAudio } from './fetchAudio';
import type { SpokenAudio, VoiceProvider } from './types';

/** Lower stability than ElevenLabs' default: a more wavering, less announcer-like delivery. */
const VOICE_SETTINGS = { stability: 0.3, similarity_boost: 0.75 };
const OUTPUT_FORMAT = 'mp3_44100_128';

export class ElevenLabsVoice implements VoiceProvider {
  readonly name = 'elevenlabs';
  readonly fingerprint: string;

  constructor(
    private readonly config: Config['voice']['elevenlabs'],
    private readonly maxBytes: number,
  ) {
    this.fingerprint = `${config.modelId}/${OUTPUT_FORMAT}/stability-${VOICE_SETTINGS.stability}`;
  }

  voiceFor(requested: string | undefined): string {
    return requested ?? this.config.voiceId;
  }

  speak(text: string, voice: string, signal: AbortSignal): Promise<SpokenAudio> {
    const url = `${this.config.baseUrl}/v1/text-to-speech/${encodeURIComponent(voice)}?output_format=${OUTPUT_FORMAT}`;
    const headers = { 'xi-api-key': this.config.apiKey ?? '', accept: 'audio/mpeg' };
    return fetchAudio(url, headers, { text, model_id: this.config.modelId, voice_settings: VOICE_SETTINGS }, signal, this.maxBytes);
  }
}
