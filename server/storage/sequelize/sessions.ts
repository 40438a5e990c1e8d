/** Sessions in the database. */
import type { Models } from '../../../models';
import type { SessionView } from '../../events';
import type { SessionStore } from '../ports';
import type { PgStatements } from './pgStatements';
import { iso, sessionView } from './views';

interface SessionRow {
  id: string;
  name: string;
  created_at: Date | string;
  max_users: number;
  is_active: boolean;
}

export class SequelizeSessionStore implements SessionStore {
  constructor(
    private readonly models: Models,
    private readonly statements: PgStatements,
  ) {}

  async create(input: { name: string; max_users: number }): Promise<SessionView> {
    const row = await this.models.Session.create({ name: input.name, max_users: input.max_users, ended_at: null });
    return sessionView(row);
  }

  async find(id: string): Promise<SessionView | null> {
    if (this.statements.enabled) {
      // Every join reads its session: a named statement on PostgreSQL.
      const [found] = await this.statements.run<SessionRow>('seance_session_find', 'SELECT id, name, created_at, max_users, is_active FROM sessions WHERE id = $1', [id]);
      return found ? { id: found.id, name: found.name, created_at: iso(found.created_at), max_users: found.max_users, is_active: found.is_active } : null;
    }
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
