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

/** A question whose spirit answer is still owed, and the node (NODE_ID) that owes it. */
export interface OwedQuestion {
  id: number;
  seq: number;
  session_id: string;
  user_name: string | null;
  message: string;
  timestamp: string;
  owner: string;
}

export interface MessageStore {
  /** With `owesAnswer` (a NODE_ID), the question is stored as owed an answer by that node. */
  storeChat(sessionId: string, author: ParticipantView, text: string, opts?: { owesAnswer?: string }): Promise<ChatMessageView>;
  storeSpirit(sessionId: string, inReplyTo: number, text: string): Promise<HistoryMessageView>;
  /**
   * Stores the answer to an owed question and clears the debt in one write, only while `owner`
   * still owes it: null when it does not (another node took it over, or it was given up).
   */
  storeOwedAnswer(sessionId: string, questionId: number, owner: string, text: string): Promise<HistoryMessageView | null>;
  /** Questions still owed an answer (by `owner` when given), oldest first. */
  owed(opts: { owner?: string; limit: number }): Promise<OwedQuestion[]>;
  /** Moves a debt from `from` to `to` if `from` still owes it; true when it moved. */
  takeOver(questionId: number, from: string, to: string): Promise<boolean>;
  /** Clears a debt without an answer if `owner` still owes it; true when it did. */
  giveUp(questionId: number, owner: string): Promise<boolean>;
  /** The spirit's stored answer to a question, or null (an answer's store retried after an outage). */
  answerTo(sessionId: string, questionId: number): Promise<HistoryMessageView | null>;
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
  /** The text of one of the spirit's answers in this session, or null when there is no such answer. */
  spiritText(sessionId: string, id: number): Promise<string | null>;
}

export interface UserStore {
  /** Remembers a participant identity as of its latest join. */
  recordJoin(participant: ParticipantView): Promise<void>;
}

export type AudioContentType = 'audio/wav' | 'audio/mpeg';

export interface StoredAudio {
  bytes: Buffer;
  contentType: AudioContentType;
  /** A hash of `bytes`: the ETag. */
  digest: string;
  /** Who actually spoke: the configured provider, or the built-in voice after a failure. */
  provider: string;
  fallback: boolean;
}

export type AudioLookup = { state: 'ready'; audio: StoredAudio } | { state: 'pending'; claim: string; claimedAt: Date } | { state: 'absent' };

/** Whose audio a row is: an answer's goes with its message; any other text's is kept least recently used first out. */
export interface AudioOwner {
  /** The content address (provider, settings, voice, text), whatever the row's key. */
  contentKey: string;
  /** The spirit's answer it speaks; null for any other text (`tts/generate`). */
  messageId: number | null;
}

/**
 * Spoken audio, shared by every node. A node about to make audio first claims its key; exactly
 * one claim wins, cluster-wide. The others wait for the audio, or take a claim over once it is
 * stale (its node died mid-way).
 */
export interface AudioStore {
  lookup(key: string): Promise<AudioLookup>;
  /** Audio of this content already made under any key (an answer's, another request's), or null. */
  findContent(contentKey: string): Promise<StoredAudio | null>;
  /** The claim's token when this node now owns the key; null when another claim exists. */
  claim(key: string, voice: string, owner: AudioOwner): Promise<string | null>;
  /** Replaces a stale claim (`seen`) with this node's; null when someone else got there first. */
  takeOver(key: string, seen: string): Promise<string | null>;
  complete(key: string, claim: string, audio: StoredAudio): Promise<void>;
  /** Gives a claim up (nothing could be made): the next request tries again. */
  abandon(key: string, claim: string): Promise<void>;
  /** Marks the audio as served now: the least recently used goes first. */
  touch(key: string): Promise<void>;
  /** Deletes the least recently used audio of no message until what is left weighs at most `maxBytes`; resolves with how many went. */
  evict(maxBytes: number): Promise<number>;
}

export interface Stores {
  sessions: SessionStore;
  messages: MessageStore;
  users: UserStore;
  audio: AudioStore;
}

/** Housekeeping over the whole deployment (idle sessions, message retention), run by one node at a time. */
export interface MaintenanceStore {
  /** Active sessions created before `cutoff` with no message since, at most `limit` of them. */
  idleCandidates(cutoff: Date, limit: number): Promise<string[]>;
  /** Ends the session if it is still active; false when it had already ended (the creator, another node). */
  endIfActive(id: string, endedAt: Date): Promise<boolean>;
  /** Deletes at most `limit` messages of sessions that ended before `cutoff`, and their audio; resolves with how many messages. */
  deleteExpiredMessages(cutoff: Date, limit: number): Promise<number>;
}
