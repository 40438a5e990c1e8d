/**
 * The users table remembers each participant identity as of its latest join.
 *
 * On PostgreSQL the joins asked for together (StatementBatches) are written together,
 * one statement and one commit for all of them: when a node dies its clients all join again
 * at once, and a commit per join made PostgreSQL flush its log thousands of times.
 */
import type { Models } from '../../../models';
import type { ParticipantView } from '../../events';
import type { UserStore } from '../ports';
import type { PgStatements } from './pgStatements';
import { StatementBatches } from './statementBatches';

const UPSERT = [
  'INSERT INTO users (id, name, joined_at)',
  '  SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::timestamptz[])',
  '  ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, joined_at = EXCLUDED.joined_at',
].join('\n');
/** Bounded so one statement stays small; more joins wait for the next. */
const MAX_BATCH = 500;

export class SequelizeUserStore implements UserStore {
  /** One statement at a time: the joins that arrive meanwhile go in the next, together. */
  private readonly joins = new StatementBatches<ParticipantView, void>((participants) => this.writeJoins(participants), { maxInFlight: 1, maxSize: MAX_BATCH });

  constructor(
    private readonly models: Models,
    private readonly statements: PgStatements,
  ) {}

  async recordJoin(participant: ParticipantView): Promise<void> {
    if (this.statements.enabled) return this.joins.add(participant);
    await this.models.User.upsert({ id: participant.id, name: participant.name, joined_at: new Date(participant.joined_at) });
  }

  private async writeJoins(participants: ParticipantView[]): Promise<void[]> {
    // One row per id (the latest join wins): an upsert may not touch a row twice.
    const rows = [...new Map(participants.map((p) => [p.id, p])).values()];
    await this.statements.run('seance_user_joins', UPSERT, [rows.map((p) => p.id), rows.map((p) => p.name), rows.map((p) => p.joined_at)]);
    return participants.map(() => undefined);
  }
}
