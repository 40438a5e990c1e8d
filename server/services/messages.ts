/**
 * Message storage and history. Storing is one INSERT ... RETURNING; the integer id orders a
 * session's history and serves as the pagination cursor.
 */
import { Op } from 'sequelize';
import type { Models } from '../../models';
import type { ChatMessageView, HistoryMessageView, ParticipantView } from '../events';
import { chatMessageView, historyMessageView } from './views';

export interface HistoryPage {
  messages: HistoryMessageView[];
  /** The `before` value for the next (older) page; null once the start is reached. */
  nextCursor: string | null;
}

export class MessageService {
  constructor(private readonly models: Models) {}

  async storeChat(sessionId: string, author: ParticipantView, text: string): Promise<ChatMessageView> {
    const row = await this.models.Message.create({
      session_id: sessionId,
      user_id: author.id,
      user_name: author.name,
      text,
      in_reply_to: null,
    });
    return chatMessageView(row);
  }

  async storeSpirit(sessionId: string, inReplyTo: number, text: string): Promise<HistoryMessageView> {
    const row = await this.models.Message.create({
      session_id: sessionId,
      user_id: null,
      user_name: null,
      text,
      is_spirit: true,
      in_reply_to: inReplyTo,
    });
    return historyMessageView(row);
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
