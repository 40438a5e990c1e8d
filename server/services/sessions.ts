/** Séance sessions: create, read, end. Participant counts come from presence (cluster-wide). */
import type { Models } from '../../models';
import { AppError } from '../errors';
import type { SessionView } from '../events';
import { isSessionId } from '../validation/schemas';
import type { Presence } from './presence/types';
import { sessionView } from './views';

export class SessionService {
  constructor(
    private readonly models: Models,
    private readonly presence: Presence,
  ) {}

  async create(input: { name: string; max_users: number }): Promise<SessionView> {
    const row = await this.models.Session.create({ name: input.name, max_users: input.max_users, ended_at: null });
    return sessionView(row);
  }

  /** Any id that is not a UUID is simply not found: never a query with it, never a 500. */
  async get(id: unknown): Promise<SessionView> {
    if (!isSessionId(id)) throw new AppError('SESSION_NOT_FOUND', 'Session not found');
    const row = await this.models.Session.findByPk(id);
    if (!row) throw new AppError('SESSION_NOT_FOUND', 'Session not found');
    return sessionView(row);
  }

  async getWithCount(id: unknown): Promise<SessionView & { participant_count: number }> {
    const session = await this.get(id);
    return { ...session, participant_count: session.is_active ? await this.presence.count(session.id) : 0 };
  }

  /** Marks the session ended; returns the view and when it ended. Ending twice keeps the first time. */
  async end(id: string): Promise<{ session: SessionView; endedAt: Date }> {
    const row = await this.models.Session.findByPk(id);
    if (!row) throw new AppError('SESSION_NOT_FOUND', 'Session not found');
    if (row.is_active) {
      row.is_active = false;
      row.ended_at = new Date();
      await row.save();
    }
    return { session: sessionView(row), endedAt: row.ended_at ?? new Date() };
  }
}
