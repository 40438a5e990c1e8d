/**
 * The realtime wire contract, typed once: the server, the tests and this client all import
 * it from here. `data` objects are identical on Socket.IO and on the raw /ws path.
 * docs/asyncapi.yaml describes the same events; a test fails when the two disagree.
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

export interface SessionJoinedData {
  session: SessionView;
  you: ParticipantView;
  users: ParticipantView[];
  messages: HistoryMessageView[];
  resumed: boolean;
  /** A token of `you.id`, so that another tab or a reconnect proves it is this participant. */
  token: string;
}

/** Why a join is refused: a Socket.IO `connect_error` (message = code), a raw `error` frame then a close. */
export const JOIN_REFUSAL_CODES = ['VALIDATION_ERROR', 'SESSION_NOT_FOUND', 'SESSION_INACTIVE', 'SESSION_FULL', 'UNAUTHORIZED', 'USER_ID_TAKEN', 'RATE_LIMITED'] as const;
export type JoinRefusalCode = (typeof JOIN_REFUSAL_CODES)[number];

/** The raw path's close code for each refused join; 4008 is "no identification within 10 s". */
export const RAW_CLOSE_CODES: Record<JoinRefusalCode, number> = {
  VALIDATION_ERROR: 4000,
  UNAUTHORIZED: 4001,
  SESSION_NOT_FOUND: 4004,
  SESSION_FULL: 4009,
  SESSION_INACTIVE: 4010,
  RATE_LIMITED: 4029,
  USER_ID_TAKEN: 4409,
};
export const RAW_CLOSE_JOIN_TIMEOUT = 4008;

/** A join the node cannot take right now (its database or Redis unreachable, draining, a bug): try again. */
export const JOIN_RETRY_CODES = ['SERVICE_UNAVAILABLE', 'INTERNAL_ERROR'] as const;
export type JoinRetryCode = (typeof JOIN_RETRY_CODES)[number];
export const RAW_RETRY_CLOSE_CODES: Record<JoinRetryCode, number> = { SERVICE_UNAVAILABLE: 1013, INTERNAL_ERROR: 1011 };

/** Codes of the `error` event (and of a refused `send_message` acknowledgement); the connection stays open. */
export const EVENT_ERROR_CODES = ['EMPTY_MESSAGE', 'MESSAGE_TOO_LONG', 'INVALID_PAYLOAD', 'UNKNOWN_EVENT', 'RATE_LIMITED', 'SPIRIT_ERROR', 'INTERNAL_ERROR'] as const;
export type EventErrorCode = (typeof EVENT_ERROR_CODES)[number];

export interface ServerToClientEvents {
  /** `messages`: the last 50, or on a resume (`resumed: true`) every message after the join's `last_seq`. */
  session_joined: (data: SessionJoinedData) => void;
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
