/** Housekeeping queries on the database (see MaintenanceStore): bounded batches, conditional updates. */
import { Op, literal, type Sequelize } from 'sequelize';
import type { Models } from '../../../models';
import type { MaintenanceStore } from '../ports';

export class SequelizeMaintenanceStore implements MaintenanceStore {
  constructor(
    private readonly models: Models,
    private readonly sequelize: Sequelize,
  ) {}

  async idleCandidates(cutoff: Date, limit: number): Promise<string[]> {
    const rows = await this.models.Session.findAll({
      attributes: ['id'],
      where: {
        is_active: true,
        created_at: { [Op.lt]: cutoff },
        // Idle: its latest message (by seq, one step down the (session_id, seq) index) is older
        // than the cutoff, or it has none. Nodes stamp messages with their own clocks, so only a
        // skew between them could order timestamps differently from seqs: seconds, against a
        // timeout in minutes.
        [Op.and]: [
          literal(
            `NOT EXISTS (SELECT 1 FROM (SELECT m.timestamp FROM messages m WHERE m.session_id = "Session"."id" ORDER BY m.seq DESC LIMIT 1) latest WHERE latest.timestamp >= ${this.sequelize.escape(cutoff)})`,
          ),
        ],
      },
      limit,
    });
    return rows.map((r) => r.id);
  }

  async endIfActive(id: string, endedAt: Date): Promise<boolean> {
    const [changed] = await this.models.Session.update({ is_active: false, ended_at: endedAt }, { where: { id, is_active: true } });
    return changed === 1;
  }

  async deleteExpiredMessages(cutoff: Date, limit: number): Promise<number> {
    const expired = await this.models.Message.findAll({
      attributes: ['id'],
      include: [{ model: this.models.Session, as: 'session', attributes: [], where: { is_active: false, ended_at: { [Op.lt]: cutoff } } }],
      limit,
    });
    if (expired.length === 0) return 0;
    const ids = expired.map((m) => m.id);
    // The answers' audio first: a message left behind by a failure is expired again, orphan audio never would be.
    await this.models.SpokenAudio.destroy({ where: { message_id: ids } });
    return this.models.Message.destroy({ where: { id: ids } });
  }
}
