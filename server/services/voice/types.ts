/**
 * The seam between the voice service and the synthesizers behind it. A provider only turns
 * text into audio bytes; caching, claims, bounds and the fallback belong to the service.
 */

import type { AudioContentType } from '../../storage/ports';

export type { AudioContentType } from '../../storage/ports';

export interface SpokenAudio {
  bytes: Buffer;
  contentType: AudioContentType;
}

export interface VoiceProvider {
  /** As `TTS_PROVIDER` names it. */
  readonly name: string;
  /**
   * Everything besides text and voice that changes the sound (model, settings, effect
   * version): part of the content address, so a change makes new audio instead of serving old.
   */
  readonly fingerprint: string;
  /** The voice used for a request: the one asked for when this provider knows it, else its default. */
  voiceFor(requested: string | undefined): string;
  /** Rejects on any failure (the service falls back to the built-in voice). */
  speak(text: string, voice: string, signal: AbortSignal): Promise<SpokenAudio>;
  close?(): Promise<void>;
}
