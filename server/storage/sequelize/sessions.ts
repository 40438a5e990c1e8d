/** Sessions in the database. */
import type { Models } from '../../../models';
import type { SessionView } from '../../events';
import type { SessionStore } from '../ports';
import { sessionView } from './views';

export class SequelizeSessionStore implements SessionStore {
  constructor(private readonly models: Models) {}

  async create(input: { name: string; max_users: number }): Promise<SessionView> {
    const row = await this.models.Session.create({ name: input.name, max_users: input.max_users, ended_at: null });
    return sessionView(row);
  }

  async find(id: string): Promise<SessionView | null> {
    const row = await this.models.Session.findByPk(id);
    return row ? sessionView(row) : null;
  }

  async end(id: string): Promise<{ session: SessionView; endedAt: Date } | null> {
    const row = await this.models.Session.findByPk(id);
    if (!row) return null;
    if (row.is_active) {
      row.is_active = false;
      row.ended_at = new Date();
      await row.save();
    }
    return { session: sessionView(row), endedAt: row.ended_at ?? new Date() };
  }
}
