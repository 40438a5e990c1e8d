/** Model rows → the contract's JSON shapes. Timestamps are ISO 8601 UTC with milliseconds. */
import type { Message, Session } from '../../../models';
import type { ChatMessageView, HistoryMessageView, SessionView } from '../../events';

export const iso = (date: Date | string): string => new Date(date).toISOString();

/** The columns the session view reads: a model instance, or a row a named statement returned. */
type SessionFields = Pick<Session, 'id' | 'name' | 'max_users' | 'is_active'> & { created_at: Date | string };

export function sessionView(row: SessionFields): SessionView {
  return { id: row.id, name: row.name, created_at: iso(row.created_at), max_users: row.max_users, is_active: row.is_active };
}

/** The columns the views read: a model instance, or a row a named statement returned. */
type MessageFields = Pick<Message, 'id' | 'seq' | 'session_id' | 'user_id' | 'user_name' | 'text' | 'is_spirit' | 'timestamp'>;

export function chatMessageView(row: MessageFields): ChatMessageView {
  return {
    id: row.id,
    seq: row.seq,
    session_id: row.session_id,
    user_id: row.user_id,
    user_name: row.user_name,
    message: row.text,
    timestamp: iso(row.timestamp),
  };
}

export function historyMessageView(row: MessageFields): HistoryMessageView {
  return { ...chatMessageView(row), is_spirit: row.is_spirit };
}
