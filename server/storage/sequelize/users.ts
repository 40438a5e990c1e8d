/** The users table remembers each participant identity as of its latest join. */
import type { Models } from '../../../models';
import type { ParticipantView } from '../../events';
import type { UserStore } from '../ports';
import type { PgStatements } from './pgStatements';

export class SequelizeUserStore implements UserStore {
  constructor(
    private readonly models: Models,
    private readonly statements: PgStatements,
  ) {}

  async recordJoin(participant: ParticipantView): Promise<void> {
    if (this.statements.enabled) {
      // Every new participant's join: a named statement on PostgreSQL (the same upsert the model makes).
      await this.statements.run('seance_user_join', 'INSERT INTO users (id, name, joined_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, joined_at = EXCLUDED.joined_at', [
        participant.id,
        participant.name,
        participant.joined_at,
      ]);
      return;
    }
    await this.models.User.upsert({ id: participant.id, name: participant.name, joined_at: new Date(participant.joined_at) });
  }
}
