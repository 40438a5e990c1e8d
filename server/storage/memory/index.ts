/**
 * Stores that live in this process only: the domain's rules (services/rooms.ts) get unit
 * tests that run in milliseconds, with no database. The server itself always uses the
 * database (../sequelize); these answer exactly as it does, and one contract suite holds
 * both to it (test/storage/storePorts.contract.test.ts).
 */
import { randomUUID } from 'node:crypto';
import type { ChatMessageView, HistoryMessageView, ParticipantView, SessionView } from '../../events';
import type { AudioLookup, AudioOwner, AudioStore, HistoryPage, MaintenanceStore, MessageStore, OwedQuestion, SessionStore, StoredAudio, StoredMessage, UserStore } from '../ports';

export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, { view: SessionView; endedAt: Date | null }>();

  async create(input: { name: string; max_users: number }): Promise<SessionView> {
    const view: SessionView = { id: randomUUID(), name: input.name, created_at: new Date().toISOString(), max_users: input.max_users, is_active: true };
    this.sessions.set(view.id, { view, endedAt: null });
    return { ...view };
  }

  async find(id: string): Promise<SessionView | null> {
    const entry = this.sessions.get(id);
    return entry ? { ...entry.view } : null;
  }

  async end(id: string): Promise<{ session: SessionView; endedAt: Date } | null> {
    const entry = this.sessions.get(id);
    if (!entry) return null;
    if (entry.view.is_active) {
      entry.view.is_active = false;
      entry.endedAt = new Date();
    }
    return { session: { ...entry.view }, endedAt: entry.endedAt ?? new Date() };
  }

  has(id: string): boolean {
    return this.sessions.has(id);
  }

  /** Every session with when it ended (null while active), oldest first: for MemoryMaintenanceStore. */
  all(): Array<{ view: SessionView; endedAt: Date | null }> {
    return [...this.sessions.values()].map(({ view, endedAt }) => ({ view: { ...view }, endedAt }));
  }

  /** Ends the session at `endedAt` if it is still active (MaintenanceStore.endIfActive). */
  endIfActive(id: string, endedAt: Date): boolean {
    const entry = this.sessions.get(id);
    if (!entry?.view.is_active) return false;
    entry.view.is_active = false;
    entry.endedAt = endedAt;
    return true;
  }
}

export class MemoryMessageStore implements MessageStore {
  private nextId = 1;
  private readonly bySession = new Map<string, StoredMessage[]>();
  /** Each session's latest seq (the `last_seq` column): retention deletes messages, never numbers. */
  private readonly lastSeqs = new Map<string, number>();
  /** Questions owed an answer, by id: the node that owes it (the `answer_owner` column). */
  private readonly owners = new Map<number, { question: StoredMessage; owner: string }>();

  /** With `sessions`, storing into a session it does not hold rejects, as on the database. */
  constructor(private readonly sessions?: Pick<MemorySessionStore, 'has'>) {}

  async storeChat(sessionId: string, author: ParticipantView, text: string, opts: { owesAnswer?: string } = {}): Promise<ChatMessageView> {
    const stored = this.append(sessionId, author, text, null);
    if (opts.owesAnswer !== undefined) this.owners.set(stored.id, { question: stored, owner: opts.owesAnswer });
    return chatItem(stored);
  }

  async storeOwedAnswer(sessionId: string, questionId: number, owner: string, text: string): Promise<HistoryMessageView | null> {
    const debt = this.owners.get(questionId);
    if (!debt || debt.owner !== owner || debt.question.session_id !== sessionId) return null;
    this.owners.delete(questionId);
    return historyItem(this.append(sessionId, null, text, questionId));
  }

  async owed(opts: { owner?: string; limit: number }): Promise<OwedQuestion[]> {
    return [...this.owners.values()]
      .filter((debt) => opts.owner === undefined || debt.owner === opts.owner)
      .sort((a, b) => a.question.id - b.question.id)
      .slice(0, opts.limit)
      .map(({ question: q, owner }) => ({ id: q.id, seq: q.seq, session_id: q.session_id, user_name: q.user_name, message: q.message, timestamp: q.timestamp, owner }));
  }

  async takeOver(questionId: number, from: string, to: string): Promise<boolean> {
    const debt = this.owners.get(questionId);
    if (!debt || debt.owner !== from) return false;
    debt.owner = to;
    return true;
  }

  async giveUp(questionId: number, owner: string): Promise<boolean> {
    if (this.owners.get(questionId)?.owner !== owner) return false;
    return this.owners.delete(questionId);
  }

  async storeSpirit(sessionId: string, inReplyTo: number, text: string): Promise<HistoryMessageView> {
    return historyItem(this.append(sessionId, null, text, inReplyTo));
  }

  async answerTo(sessionId: string, questionId: number): Promise<HistoryMessageView | null> {
    const found = (this.bySession.get(sessionId) ?? []).find((m) => m.is_spirit && m.in_reply_to === questionId);
    return found ? historyItem(found) : null;
  }

  async storeExchange(sessionId: string, author: ParticipantView, question: string, answer: string): Promise<{ message: ChatMessageView; answer: HistoryMessageView }> {
    // Both in one turn: nothing stored meanwhile comes between them.
    const asked = this.append(sessionId, author, question, null);
    return { message: chatItem(asked), answer: historyItem(this.append(sessionId, null, answer, asked.id)) };
  }

  async recent(sessionId: string, limit: number): Promise<HistoryMessageView[]> {
    return (await this.page(sessionId, { limit })).messages;
  }

  async page(sessionId: string, opts: { limit: number; before?: string }): Promise<HistoryPage> {
    const all = this.bySession.get(sessionId) ?? [];
    const older = opts.before ? all.filter((m) => m.seq < Number(opts.before)) : all;
    const page = older.slice(-opts.limit);
    return { messages: page.map(historyItem), nextCursor: older.length > opts.limit && page.length > 0 ? String(page[0].seq) : null };
  }

  async spiritText(sessionId: string, id: number): Promise<string | null> {
    return this.bySession.get(sessionId)?.find((m) => m.id === id && m.is_spirit)?.message ?? null;
  }

  async after(sessionId: string, afterSeq: number, limit: number): Promise<StoredMessage[]> {
    return (this.bySession.get(sessionId) ?? [])
      .filter((m) => m.seq > afterSeq)
      .slice(0, limit)
      .map((m) => ({ ...m }));
  }

  async latestSeq(sessionId: string): Promise<number> {
    return this.lastSeqs.get(sessionId) ?? 0;
  }

  /** When the session's latest message was stored (MemoryMaintenanceStore's idleness). */
  latestTimestamp(sessionId: string): string | null {
    return this.bySession.get(sessionId)?.at(-1)?.timestamp ?? null;
  }

  /** Retention: deletes at most `limit` messages of these sessions (and their debts); returns their ids. */
  deleteOf(sessionIds: string[], limit: number): number[] {
    const deleted: number[] = [];
    for (const sessionId of sessionIds) {
      const list = this.bySession.get(sessionId) ?? [];
      const gone = list.splice(0, limit - deleted.length);
      for (const message of gone) {
        this.owners.delete(message.id);
        deleted.push(message.id);
      }
    }
    return deleted;
  }

  private append(sessionId: string, author: ParticipantView | null, text: string, inReplyTo: number | null): StoredMessage {
    // As the database's foreign key does, when the store knows the sessions (memoryStores).
    if (this.sessions && !this.sessions.has(sessionId)) throw new Error(`session ${sessionId} does not exist`);
    let list = this.bySession.get(sessionId);
    if (!list) this.bySession.set(sessionId, (list = []));
    const seq = (this.lastSeqs.get(sessionId) ?? 0) + 1;
    this.lastSeqs.set(sessionId, seq);
    const message: StoredMessage = {
      id: this.nextId++,
      seq,
      session_id: sessionId,
      user_id: author?.id ?? null,
      user_name: author?.name ?? null,
      message: text,
      is_spirit: author === null,
      timestamp: new Date().toISOString(),
      in_reply_to: inReplyTo,
    };
    list.push(message);
    return { ...message };
  }
}

function historyItem({ in_reply_to: _answered, ...item }: StoredMessage): HistoryMessageView {
  return { ...item };
}

function chatItem({ is_spirit: _spirit, in_reply_to: _none, ...chat }: StoredMessage): ChatMessageView {
  return chat;
}

export class MemoryUserStore implements UserStore {
  readonly known = new Map<string, ParticipantView>();

  async recordJoin(participant: ParticipantView): Promise<void> {
    this.known.set(participant.id, participant);
  }
}

/** One process's audio: claims and audio by key, as the Sequelize store keeps them in a table. */
export class MemoryAudioStore implements AudioStore {
  private readonly rows = new Map<string, { claim: string; claimedAt: Date; audio: StoredAudio | null; owner: AudioOwner; usedAt: number }>();
  private claims = 0;
  /** A strictly increasing clock for `usedAt`: two uses in one millisecond keep their order. */
  private uses = 0;

  async lookup(key: string): Promise<AudioLookup> {
    const row = this.rows.get(key);
    if (!row) return { state: 'absent' };
    return row.audio ? { state: 'ready', audio: { ...row.audio } } : { state: 'pending', claim: row.claim, claimedAt: row.claimedAt };
  }

  async findContent(contentKey: string): Promise<StoredAudio | null> {
    for (const row of this.rows.values()) if (row.audio && row.owner.contentKey === contentKey) return { ...row.audio };
    return null;
  }

  async claim(key: string, _voice: string, owner: AudioOwner): Promise<string | null> {
    if (this.rows.has(key)) return null;
    const claim = `memory#${++this.claims}`;
    this.rows.set(key, { claim, claimedAt: new Date(), audio: null, owner, usedAt: ++this.uses });
    return claim;
  }

  async takeOver(key: string, seen: string): Promise<string | null> {
    const row = this.rows.get(key);
    if (!row || row.audio || row.claim !== seen) return null;
    row.claim = `memory#${++this.claims}`;
    row.claimedAt = new Date();
    return row.claim;
  }

  async complete(key: string, claim: string, audio: StoredAudio): Promise<void> {
    const row = this.rows.get(key);
    if (row && row.claim === claim && !row.audio) {
      row.audio = { ...audio };
      row.usedAt = ++this.uses;
    }
  }

  async abandon(key: string, claim: string): Promise<void> {
    const row = this.rows.get(key);
    if (row && row.claim === claim && !row.audio) this.rows.delete(key);
  }

  async touch(key: string): Promise<void> {
    const row = this.rows.get(key);
    if (row) row.usedAt = ++this.uses;
  }

  /** Retention: the audio of deleted messages goes with them. */
  forgetMessages(ids: ReadonlySet<number>): void {
    for (const [key, row] of this.rows) if (row.owner.messageId !== null && ids.has(row.owner.messageId)) this.rows.delete(key);
  }

  async evict(maxBytes: number): Promise<number> {
    const kept = [...this.rows].filter(([, row]) => row.audio && row.owner.messageId === null).sort(([, a], [, b]) => b.usedAt - a.usedAt);
    let total = 0;
    let evicted = 0;
    for (const [key, row] of kept) {
      total += row.audio!.bytes.length;
      if (total > maxBytes) {
        this.rows.delete(key);
        evicted += 1;
      }
    }
    return evicted;
  }
}

export interface MemoryStores {
  sessions: MemorySessionStore;
  messages: MemoryMessageStore;
  users: MemoryUserStore;
  audio: MemoryAudioStore;
}

export function memoryStores(): MemoryStores {
  const sessions = new MemorySessionStore();
  return { sessions, messages: new MemoryMessageStore(sessions), users: new MemoryUserStore(), audio: new MemoryAudioStore() };
}

/** The housekeeping of SequelizeMaintenanceStore over one set of memory stores. */
export class MemoryMaintenanceStore implements MaintenanceStore {
  constructor(private readonly stores: MemoryStores) {}

  async idleCandidates(cutoff: Date, limit: number): Promise<string[]> {
    const idle = this.stores.sessions.all().filter(({ view }) => {
      const latest = this.stores.messages.latestTimestamp(view.id);
      return view.is_active && Date.parse(view.created_at) < cutoff.getTime() && (latest === null || Date.parse(latest) < cutoff.getTime());
    });
    return idle.slice(0, limit).map(({ view }) => view.id);
  }

  async endIfActive(id: string, endedAt: Date): Promise<boolean> {
    return this.stores.sessions.endIfActive(id, endedAt);
  }

  async deleteExpiredMessages(cutoff: Date, limit: number): Promise<number> {
    const expired = this.stores.sessions.all().filter(({ view, endedAt }) => !view.is_active && endedAt !== null && endedAt < cutoff);
    const sessionIds = expired.map(({ view }) => view.id);
    const ids = this.stores.messages.deleteOf(sessionIds, limit);
    this.stores.audio.forgetMessages(new Set(ids));
    return ids.length;
  }
}
