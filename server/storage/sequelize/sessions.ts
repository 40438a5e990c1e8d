/**
 * Sessions in the database. On PostgreSQL the lookups asked for together (StatementBatches)
 * share one statement: every join reads its session, and when a node dies its clients all
 * join again at once.
 */
import type { Models } from '../../../models';
import type { SessionView } from '../../events';
import type { SessionStore } from '../ports';
import type { PgStatements } from './pgStatements';
import { isSessionId } from '../../validation/schemas';
import { StatementBatches } from './statementBatches';
import { sessionView } from './views';

interface SessionRow {
  id: string;
  name: string;
  created_at: Date | string;
  max_users: number;
  is_active: boolean;
}

/** Lookups one statement reads at most; more wait for the next. */
const MAX_LOOKUPS = 200;

export class SequelizeSessionStore implements SessionStore {
  private readonly lookups = new StatementBatches<string, SessionView | null>((ids) => this.findMany(ids), { maxInFlight: 2, maxSize: MAX_LOOKUPS });

  constructor(
    private readonly models: Models,
    private readonly statements: PgStatements,
  ) {}

  async create(input: { name: string; max_users: number }): Promise<SessionView> {
    const row = await this.models.Session.create({ name: input.name, max_users: input.max_users, ended_at: null });
    return sessionView(row);
  }

  async find(id: string): Promise<SessionView | null> {
    if (this.statements.enabled) return this.lookups.add(id);
    const row = await this.models.Session.findByPk(id);
    return row ? sessionView(row) : null;
  }

  /** One named statement for a batch of lookups; what is no session id finds nothing (and cannot fail the others). */
  private async findMany(ids: string[]): Promise<Array<SessionView | null>> {
    const wanted = [...new Set(ids.filter(isSessionId).map((id) => id.toLowerCase()))];
    if (wanted.length === 0) return ids.map(() => null);
    const rows = await this.statements.run<SessionRow>('seance_sessions_find', 'SELECT id, name, created_at, max_users, is_active FROM sessions WHERE id = ANY($1::uuid[])', [wanted]);
    // PostgreSQL writes a uuid in lower case, whatever case it was asked in.
    const found = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => {
      const row = found.get(id.toLowerCase());
      return row ? sessionView(row) : null;
    });
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
