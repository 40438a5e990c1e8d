/**
 * Message storage and history. Storing is one (batched) INSERT ... RETURNING, the only
 * database work on the message path; `seq` orders a session's history and serves as the
 * pagination cursor both ways. On PostgreSQL the latest messages asked for together (every
 * join reads them, and a node's clients all join again at once after a failover) are read
 * by one statement (StatementBatches).
 */
import { Op, type Sequelize, type WhereOptions } from 'sequelize';
import type { Message } from '../../../models';
import type { Models } from '../../../models';
import type { ChatMessageView, HistoryMessageView, ParticipantView } from '../../events';
import type { HistoryPage, MessageStore, OwedQuestion, StoredMessage } from '../ports';
import { MessageWriter, type NewMessage, type StoredRef } from './messageWriter';
import type { PgStatements } from './pgStatements';
import { StatementBatches } from './statementBatches';
import { historyMessageView, iso } from './views';

/** A messages row as the named statements read it (the model's columns). */
type MessageRow = Pick<Message, 'id' | 'seq' | 'session_id' | 'user_id' | 'user_name' | 'text' | 'is_spirit' | 'in_reply_to' | 'timestamp'>;
const MESSAGE_COLUMNS = 'id, seq, session_id, user_id, user_name, "text", is_spirit, in_reply_to, "timestamp"';

/** The last `limit` messages of a session. */
interface RecentAsk {
  sessionId: string;
  limit: number;
}
/**
 * Each asked session's last messages, oldest first, `n` telling which ask a row answers
 * (asks are numbered from 1 in the order of the arrays).
 */
const RECENT_SQL = [
  'SELECT asked.n, m.id, m.seq, m.session_id, m.user_id, m.user_name, m."text", m.is_spirit, m.in_reply_to, m."timestamp"',
  'FROM unnest($1::uuid[], $2::integer[]) WITH ORDINALITY AS asked(session_id, lim, n)',
  'CROSS JOIN LATERAL (SELECT * FROM messages WHERE session_id = asked.session_id ORDER BY seq DESC LIMIT asked.lim) m',
  'ORDER BY asked.n, m.seq',
].join('\n');
/** Sessions one statement reads the last messages of; more wait for the next. */
const MAX_RECENT_ASKS = 100;

export class SequelizeMessageStore implements MessageStore {
  private readonly writer: MessageWriter;
  private readonly recentAsks = new StatementBatches<RecentAsk, HistoryMessageView[]>((asks) => this.recentMany(asks), { maxInFlight: 2, maxSize: MAX_RECENT_ASKS });

  constructor(
    private readonly models: Models,
    sequelize: Sequelize,
    private readonly statements: PgStatements,
  ) {
    this.writer = new MessageWriter(sequelize, models.Message);
  }

  async storeChat(sessionId: string, author: ParticipantView, text: string, opts: { owesAnswer?: string } = {}): Promise<ChatMessageView> {
    const timestamp = new Date();
    const ref = await this.writer.insert({ ...chatRow(sessionId, author, text, timestamp), answer_owner: opts.owesAnswer ?? null });
    return chatView(ref, sessionId, author, text, timestamp);
  }

  async storeOwedAnswer(sessionId: string, questionId: number, owner: string, text: string): Promise<HistoryMessageView | null> {
    const timestamp = new Date();
    const ref = await this.writer.insertOwedAnswer({ ...spiritRow(sessionId, text, timestamp), in_reply_to: questionId }, owner);
    return ref ? spiritView(ref, sessionId, text, timestamp) : null;
  }

  async owed(opts: { owner?: string; limit: number }): Promise<OwedQuestion[]> {
    const rows = await this.models.Message.findAll({
      where: { answer_owner: opts.owner ?? { [Op.ne]: null } },
      attributes: ['id', 'seq', 'session_id', 'user_name', 'text', 'timestamp', 'answer_owner'],
      order: [['id', 'ASC']],
      limit: opts.limit,
    });
    return rows.map((row) => ({ id: row.id, seq: row.seq, session_id: row.session_id, user_name: row.user_name, message: row.text, timestamp: iso(row.timestamp), owner: row.answer_owner! }));
  }

  async takeOver(questionId: number, from: string, to: string): Promise<boolean> {
    const [moved] = await this.writer.alone(() => this.models.Message.update({ answer_owner: to }, { where: { id: questionId, answer_owner: from } }));
    return moved === 1;
  }

  async giveUp(questionId: number, owner: string): Promise<boolean> {
    const [cleared] = await this.writer.alone(() => this.models.Message.update({ answer_owner: null }, { where: { id: questionId, answer_owner: owner } }));
    return cleared === 1;
  }

  async storeSpirit(sessionId: string, inReplyTo: number, text: string): Promise<HistoryMessageView> {
    const timestamp = new Date();
    const ref = await this.writer.insert({ ...spiritRow(sessionId, text, timestamp), in_reply_to: inReplyTo });
    return spiritView(ref, sessionId, text, timestamp);
  }

  async answerTo(sessionId: string, questionId: number): Promise<HistoryMessageView | null> {
    const row = await this.models.Message.findOne({ where: { session_id: sessionId, in_reply_to: questionId, is_spirit: true }, order: [['seq', 'ASC']] });
    return row ? historyMessageView(row) : null;
  }

  /** One statement on PostgreSQL. */
  async storeExchange(sessionId: string, author: ParticipantView, question: string, answer: string): Promise<{ message: ChatMessageView; answer: HistoryMessageView }> {
    const timestamp = new Date();
    const [asked, answered] = await this.writer.insertExchange(chatRow(sessionId, author, question, timestamp), spiritRow(sessionId, answer, timestamp));
    return { message: chatView(asked, sessionId, author, question, timestamp), answer: spiritView(answered, sessionId, answer, timestamp) };
  }

  /** The text of one of the spirit's answers in this session, or null when there is no such answer. */
  async spiritText(sessionId: string, id: number): Promise<string | null> {
    const row = await this.models.Message.findOne({ where: { id, session_id: sessionId, is_spirit: true }, attributes: ['text'] });
    return row?.text ?? null;
  }

  async recent(sessionId: string, limit: number): Promise<HistoryMessageView[]> {
    if (this.statements.enabled) return this.recentAsks.add({ sessionId, limit });
    return (await this.page(sessionId, { limit })).messages;
  }

  /** One named statement for a batch of asks; the same ask twice is read once. */
  private async recentMany(asks: RecentAsk[]): Promise<HistoryMessageView[][]> {
    const keyOf = (ask: RecentAsk) => `${ask.sessionId.toLowerCase()} ${ask.limit}`;
    const distinct = [...new Map(asks.map((ask) => [keyOf(ask), ask])).values()];
    const rows = await this.statements.run<MessageRow & { n: string | number }>('seance_messages_recent_many', RECENT_SQL, [distinct.map((ask) => ask.sessionId), distinct.map((ask) => ask.limit)]);
    const byAsk = new Map<string, HistoryMessageView[]>(distinct.map((ask) => [keyOf(ask), []]));
    for (const row of rows) byAsk.get(keyOf(distinct[Number(row.n) - 1]))!.push(historyMessageView(row));
    // Each caller gets its own array: callers may change what they are given.
    return asks.map((ask) => [...byAsk.get(keyOf(ask))!]);
  }

  async page(sessionId: string, opts: { limit: number; before?: string }): Promise<HistoryPage> {
    const where: WhereOptions<Message> = opts.before ? { session_id: sessionId, seq: { [Op.lt]: Number(opts.before) } } : { session_id: sessionId };
    // One row more than asked tells whether an older page exists.
    const rows = await this.models.Message.findAll({ where, order: [['seq', 'DESC']], limit: opts.limit + 1 });
    const hasOlder = rows.length > opts.limit;
    const page = rows.slice(0, opts.limit).reverse();
    return {
      messages: page.map(historyMessageView),
      nextCursor: hasOlder && page.length > 0 ? String(page[0].seq) : null,
    };
  }

  async after(sessionId: string, afterSeq: number, limit: number): Promise<StoredMessage[]> {
    if (this.statements.enabled) {
      // Resumes and the ordering's repairs: a named statement on PostgreSQL.
      const found = await this.statements.run<MessageRow>('seance_messages_after', `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3`, [
        sessionId,
        afterSeq,
        limit,
      ]);
      return found.map((row) => ({ ...historyMessageView(row), in_reply_to: row.in_reply_to }));
    }
    const rows = await this.models.Message.findAll({ where: { session_id: sessionId, seq: { [Op.gt]: afterSeq } }, order: [['seq', 'ASC']], limit });
    return rows.map((row) => ({ ...historyMessageView(row), in_reply_to: row.in_reply_to }));
  }

  async latestSeq(sessionId: string): Promise<number> {
    if (this.statements.enabled) {
      const [found] = await this.statements.run<{ last_seq: number }>('seance_session_last_seq', 'SELECT last_seq FROM sessions WHERE id = $1', [sessionId]);
      return found?.last_seq ?? 0;
    }
    const row = await this.models.Session.findByPk(sessionId, { attributes: ['last_seq'] });
    return row?.last_seq ?? 0;
  }
}

function chatRow(sessionId: string, author: ParticipantView, text: string, timestamp: Date): NewMessage {
  return { session_id: sessionId, user_id: author.id, user_name: author.name, text, is_spirit: false, in_reply_to: null, timestamp };
}

function spiritRow(sessionId: string, text: string, timestamp: Date): Omit<NewMessage, 'in_reply_to'> {
  return { session_id: sessionId, user_id: null, user_name: null, text, is_spirit: true, timestamp };
}

function chatView(ref: StoredRef, sessionId: string, author: ParticipantView, text: string, timestamp: Date): ChatMessageView {
  return { id: ref.id, seq: ref.seq, session_id: sessionId, user_id: author.id, user_name: author.name, message: text, timestamp: iso(timestamp) };
}

function spiritView(ref: StoredRef, sessionId: string, text: string, timestamp: Date): HistoryMessageView {
  return { id: ref.id, seq: ref.seq, session_id: sessionId, user_id: null, user_name: null, message: text, is_spirit: true, timestamp: iso(timestamp) };
}
