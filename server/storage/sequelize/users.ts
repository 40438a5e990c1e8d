/**
 * The users table remembers each participant identity as of its latest join.
 *
 * On PostgreSQL the joins asked for within one turn of the event loop are written together,
 * one statement and one commit for all of them: when a node dies its clients all join again
 * at once, and a commit per join made PostgreSQL flush its log thousands of times.
 */
import type { Models } from '../../../models';
import type { ParticipantView } from '../../events';
import type { UserStore } from '../ports';
import type { PgStatements } from './pgStatements';

const UPSERT = [
  'INSERT INTO users (id, name, joined_at)',
  '  SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::timestamptz[])',
  '  ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, joined_at = EXCLUDED.joined_at',
].join('\n');
/** Bounded so one statement stays small; more joins wait for the next. */
const MAX_BATCH = 500;

interface PendingJoin {
  participant: ParticipantView;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SequelizeUserStore implements UserStore {
  private queue: PendingJoin[] = [];
  private writing = false;
  private scheduled = false;

  constructor(
    private readonly models: Models,
    private readonly statements: PgStatements,
  ) {}

  async recordJoin(participant: ParticipantView): Promise<void> {
    if (!this.statements.enabled) {
      await this.models.User.upsert({ id: participant.id, name: participant.name, joined_at: new Date(participant.joined_at) });
      return;
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ participant, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.writing || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.write();
    });
  }

  /** One statement at a time: what arrives meanwhile goes in the next, together. */
  private async write(): Promise<void> {
    const batch = this.queue.splice(0, MAX_BATCH);
    this.writing = true;
    try {
      // One row per id (the latest join wins): an upsert may not touch a row twice.
      const latest = new Map(batch.map(({ participant }) => [participant.id, participant]));
      const rows = [...latest.values()];
      await this.statements.run('seance_user_joins', UPSERT, [rows.map((p) => p.id), rows.map((p) => p.name), rows.map((p) => p.joined_at)]);
      for (const pending of batch) pending.resolve();
    } catch (err) {
      for (const pending of batch) pending.reject(err);
    } finally {
      this.writing = false;
      this.schedule();
    }
  }
}
