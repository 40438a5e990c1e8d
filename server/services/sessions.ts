/** Séance sessions: create, read, end. Participant counts come from presence (cluster-wide). */
import { AppError } from '../errors';
import type { SessionView } from '../events';
import type { SessionStore } from '../storage/ports';
import { isSessionId } from '../validation/schemas';
import type { Presence } from './presence/types';

export class SessionService {
  constructor(
    private readonly store: SessionStore,
    private readonly presence: Presence,
  ) {}

  create(input: { name: string; max_users: number }): Promise<SessionView> {
    return this.store.create(input);
  }

  /**
   * Any id that is not a UUID is simply not found: never a query with it, never a 500. A UUID
   * is the same in either case (RFC 9562): it is looked up, and answered, in lower case.
   */
  async get(id: unknown): Promise<SessionView> {
    const session = isSessionId(id) ? await this.store.find(id.toLowerCase()) : null;
    if (!session) throw new AppError('SESSION_NOT_FOUND', 'Session not found');
    return session;
  }

  async getWithCount(id: unknown): Promise<SessionView & { participant_count: number }> {
    const session = await this.get(id);
    return { ...session, participant_count: session.is_active ? await this.presence.count(session.id) : 0 };
  }

  /** Marks the session ended; returns the view and when it ended. Ending twice keeps the first time. */
  async end(id: string): Promise<{ session: SessionView; endedAt: Date }> {
    const ended = await this.store.end(id);
    if (!ended) throw new AppError('SESSION_NOT_FOUND', 'Session not found');
    return ended;
  }
}
