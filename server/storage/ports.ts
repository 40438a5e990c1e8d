/**
 * What the services need from storage, and nothing more: a Sequelize implementation
 * (./sequelize, PostgreSQL or the embedded SQLite) for the server, and an in-memory one
 * (./memory) that gives the domain rules millisecond unit tests.
 */
import type { ChatMessageView, HistoryMessageView, ParticipantView, SessionView } from '../events';

export interface SessionStore {
  create(input: { name: string; max_users: number }): Promise<SessionView>;
  /** The session, or null when there is none with this id (the id is a valid UUID). */
  find(id: string): Promise<SessionView | null>;
  /** Marks the session ended; ending twice keeps the first time. Null when there is no such session. */
  end(id: string): Promise<{ session: SessionView; endedAt: Date } | null>;
}

export interface HistoryPage {
  messages: HistoryMessageView[];
  /** The `before` value for the next (older) page; null once the start is reached. */
  nextCursor: string | null;
}

export interface MessageStore {
  storeChat(sessionId: string, author: ParticipantView, text: string): Promise<ChatMessageView>;
  storeSpirit(sessionId: string, inReplyTo: number, text: string): Promise<HistoryMessageView>;
  /** A question and the spirit's answer, already known, stored together. */
  storeExchange(sessionId: string, author: ParticipantView, question: string, answer: string): Promise<{ message: ChatMessageView; answer: HistoryMessageView }>;
  /** The last `limit` messages, oldest first. */
  recent(sessionId: string, limit: number): Promise<HistoryMessageView[]>;
  /** A page of history, oldest first, older than `before` when given. */
  page(sessionId: string, opts: { limit: number; before?: string }): Promise<HistoryPage>;
}

export interface UserStore {
  /** Remembers a participant identity as of its latest join. */
  recordJoin(participant: ParticipantView): Promise<void>;
}

export interface Stores {
  sessions: SessionStore;
  messages: MessageStore;
  users: UserStore;
}
