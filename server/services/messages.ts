/**
 * Message storage and history. Storing is one (batched) INSERT ... RETURNING, the only
 * database work on the message path; the integer id orders a session's history and serves
 * as the pagination cursor.
 */
import { Op, type Sequelize } from 'sequelize';
import type { Models } from '../../models';
import type { ChatMessageView, HistoryMessageView, ParticipantView } from '../events';
import { MessageWriter } from './messageWriter';
import { historyMessageView, iso } from './views';

export interface HistoryPage {
  messages: HistoryMessageView[];
  /** The `before` value for the next (older) page; null once the start is reached. */
  nextCursor: string | null;
}

export class MessageService {
  private readonly writer: MessageWriter;

  constructor(
    private readonly models: Models,
    sequelize: Sequelize,
  ) {
    this.writer = new MessageWriter(sequelize, models.Message);
  }

  async storeChat(sessionId: string, author: ParticipantView, text: string): Promise<ChatMessageView> {
    const timestamp = new Date();
    const row = { session_id: sessionId, user_id: author.id, user_name: author.name, text, is_spirit: false, in_reply_to: null, timestamp };
    const id = await this.writer.insert(row);
    return { id, session_id: sessionId, user_id: author.id, user_name: author.name, message: text, timestamp: iso(timestamp) };
  }

  async storeSpirit(sessionId: string, inReplyTo: number, text: string): Promise<HistoryMessageView> {
    const timestamp = new Date();
    const id = await this.writer.insert({ session_id: sessionId, user_id: null, user_name: null, text, is_spirit: true, in_reply_to: inReplyTo, timestamp });
    return { id, session_id: sessionId, user_id: null, user_name: null, message: text, is_spirit: true, timestamp: iso(timestamp) };
  }

  /** The last `limit` messages, oldest first. */
  async recent(sessionId: string, limit: number): Promise<HistoryMessageView[]> {
    return (await this.page(sessionId, { limit })).messages;
  }

  async page(sessionId: string, opts: { limit: number; before?: string }): Promise<HistoryPage> {
    const where = opts.before
      ? { session_id: sessionId, id: { [Op.lt]: Number(opts.before) } }
      : { session_id: sessionId };
    // One row more than asked tells whether an older page exists.
    const rows = await this.models.Message.findAll({ where, order: [['id', 'DESC']], limit: opts.limit + 1 });
    const hasOlder = rows.length > opts.limit;
    const page = rows.slice(0, opts.limit).reverse();
    return {
      messages: page.map(historyMessageView),
      nextCursor: hasOlder && page.length > 0 ? String(page[0].id) : null,
    };
  }
}
