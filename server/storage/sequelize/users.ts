/** The users table remembers each participant identity as of its latest join. */
import type { Models } from '../../../models';
import type { ParticipantView } from '../../events';
import type { UserStore } from '../ports';

export class SequelizeUserStore implements UserStore {
  constructor(private readonly models: Models) {}

  async recordJoin(participant: ParticipantView): Promise<void> {
    await this.models.User.upsert({ id: participant.id, name: participant.name, joined_at: new Date(participant.joined_at) });
  }
}
