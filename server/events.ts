/**
 * The realtime wire contract, typed once and shared by the server and the tests.
 * `data` objects are identical on Socket.IO and on the raw /ws path.
 */
export interface SessionView {
  id: string;
  name: string;
  created_at: string;
  max_users: number;
  is_active: boolean;
}

export interface ParticipantView {
  id: string;
  name: string;
  joined_at: string;
}

export interface ChatMessageView {
  id: number;
  /** The message's place in its session: 1, 2, 3, … with no gap. */
  seq: number;
  session_id: string;
  user_id: string | null;
  user_name: string | null;
  message: string;
  timestamp: string;
}

/** A history row: chat messages and the spirit's answers alike. */
export interface HistoryMessageView extends ChatMessageView {
  is_spirit: boolean;
}

export interface SpiritResponseView {
  id: number;
  seq: number;
  session_id: string;
  in_reply_to: number;
  message: string;
  word_count: number;
  letter_timings: number[];
  /** Where the answer is served spoken; null when speech is off (TTS_PROVIDER=none). */
  audio_url: string | null;
  timestamp: string;
}

export interface ErrorView {
  code: string;
  message: string;
}

export interface ServerToClientEvents {
  /**
   * `messages`: the last 50, or on a resume (`resumed: true`) every message after the join's `last_seq`.
   * `token`: a token of `you.id`, so that another tab or a reconnect proves it is this participant.
   */
  session_joined: (data: { session: SessionView; you: ParticipantView; users: ParticipantView[]; messages: HistoryMessageView[]; resumed: boolean; token: string }) => void;
  user_joined: (data: ParticipantView) => void;
  user_left: (data: ParticipantView) => void;
  message_received: (data: ChatMessageView) => void;
  spirit_thinking: (data: { session_id: string; in_reply_to: number }) => void;
  spirit_response: (data: SpiritResponseView) => void;
  user_typing: (data: { id: string; name: string }) => void;
  session_ended: (data: { session_id: string; ended_at: string; reason: 'ended_by_creator' | 'idle' }) => void;
  error: (data: ErrorView) => void;
}

export type ServerEventName = keyof ServerToClientEvents;
export type ServerEventData<E extends ServerEventName> = Parameters<ServerToClientEvents[E]>[0];

export type SendMessageAck = { ok: true; id: number; seq: number } | { ok: false; error: ErrorView };

export interface ClientToServerEvents {
  send_message: (data: { message: string }, ack?: (reply: SendMessageAck) => void) => void;
  typing: (data?: Record<string, never>) => void;
  leave_session: (data?: Record<string, never>) => void;
}

export const CLIENT_EVENTS = ['send_message', 'typing', 'leave_session'] as const;
export type ClientEventName = (typeof CLIENT_EVENTS)[number];
