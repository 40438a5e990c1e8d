/**
 * The events a stored message makes, built in one place: when it is stored (rooms.ts) and
 * when a node fills a hole from the database (ordering/sessionFeeds.ts), so both say the same.
 */
import type { ChatMessageView, HistoryMessageView, ServerEventData } from '../events';
import type { StoredMessage } from '../storage/ports';
import { letterTimings } from './spirit/shape';

/** What the spirit's answer looks like spoken: its words and one delay per character. */
export interface AnswerShape {
  word_count: number;
  letter_timings: number[];
}

/** Where an answer's audio is served, or null when speech is off. */
export type AudioUrl = (sessionId: string, messageId: number) => string | null;

export function spiritResponse(stored: HistoryMessageView, inReplyTo: number, shape: AnswerShape, audioUrl: string | null): ServerEventData<'spirit_response'> {
  return {
    id: stored.id,
    seq: stored.seq,
    session_id: stored.session_id,
    in_reply_to: inReplyTo,
    message: stored.message,
    word_count: shape.word_count,
    letter_timings: shape.letter_timings,
    audio_url: audioUrl,
    timestamp: stored.timestamp,
  };
}

export function messageReceived(stored: HistoryMessageView): ChatMessageView {
  return { id: stored.id, seq: stored.seq, session_id: stored.session_id, user_id: stored.user_id, user_name: stored.user_name, message: stored.message, timestamp: stored.timestamp };
}

/** The live event of a message read back from the database (its letter timings drawn again). */
export function eventOf(stored: StoredMessage, audioUrl: AudioUrl): { event: 'message_received'; data: ChatMessageView } | { event: 'spirit_response'; data: ServerEventData<'spirit_response'> } {
  if (!stored.is_spirit) return { event: 'message_received', data: messageReceived(stored) };
  const shape = { word_count: stored.message.split(/\s+/).filter(Boolean).length, letter_timings: letterTimings(stored.message) };
  return { event: 'spirit_response', data: spiritResponse(stored, stored.in_reply_to ?? 0, shape, audioUrl(stored.session_id, stored.id)) };
}

/** A delivered event as a history item (what `session_joined.messages` holds). */
export function historyItemOf(event: 'message_received' | 'spirit_response', data: ChatMessageView | ServerEventData<'spirit_response'>): HistoryMessageView {
  if (event === 'message_received') return { ...(data as ChatMessageView), is_spirit: false };
  const answer = data as ServerEventData<'spirit_response'>;
  return { id: answer.id, seq: answer.seq, session_id: answer.session_id, user_id: null, user_name: null, message: answer.message, is_spirit: true, timestamp: answer.timestamp };
}
