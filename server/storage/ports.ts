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

/** A stored message as the ordering layer repairs from it: a history item, and what it answers. */
export interface StoredMessage extends HistoryMessageView {
  in_reply_to: number | null;
}

export interface MessageStore {
  storeChat(sessionId: string, author: ParticipantView, text: string): Promise<ChatMessageView>;
  storeSpirit(sessionId: string, inReplyTo: number, text: string): Promise<HistoryMessageView>;
  /** A question and the spirit's answer, already known, stored together. */
  storeExchange(sessionId: string, author: ParticipantView, question: string, answer: string): Promise<{ message: ChatMessageView; answer: HistoryMessageView }>;
  /** The last `limit` messages, oldest first. */
  recent(sessionId: string, limit: number): Promise<HistoryMessageView[]>;
  /** A page of history, oldest first, older than `before` (a seq) when given. */
  page(sessionId: string, opts: { limit: number; before?: string }): Promise<HistoryPage>;
  /** The first `limit` messages with a seq above `afterSeq`, in seq order. */
  after(sessionId: string, afterSeq: number, limit: number): Promise<StoredMessage[]>;
  /** The seq of the session's latest message (0 when it has none). */
  latestSeq(sessionId: string): Promise<number>;
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
