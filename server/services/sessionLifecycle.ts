/**
 * Sessions over months: a session nobody joins or speaks in for the idle timeout ends by
 * itself (`session_ended` with reason "idle", to whoever is still connected), and the
 * messages of sessions that ended longer ago than the retention are deleted.
 *
 * Every node runs the timer, but only the holder of the maintenance lease does the work,
 * so the cluster does each job once; ending a session is also a conditional update
 * (`WHERE is_active`), so even two holders in a hand-over could not end one twice.
 */
import { Op, literal } from 'sequelize';
import type { Config } from '../../config';
import type { Database } from '../db';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Broadcaster } from '../realtime/broadcaster';
import type { Lease } from './maintenanceLease';
import type { Presence } from './presence/types';

export interface SessionLifecycleDeps {
  config: Config['lifecycle'];
  db: Database;
  presence: Presence;
  broadcaster: Broadcaster;
  lease: Lease;
  logger: Logger;
  metrics: Metrics;
}

/** Bounded work per round, so one round never holds the database long. */
const BATCH = 500;

export class SessionLifecycle {
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> | null = null;

  constructor(private readonly deps: SessionLifecycleDeps) {}

  start(): void {
    this.timer = setInterval(() => void this.runRound(), this.deps.config.sweepIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.round;
    await this.deps.lease.release();
    this.deps.metrics.maintenanceHolder(false);
  }

  /** One round now (the timer calls this; a round still running is not doubled). */
  runRound(): Promise<void> {
    this.round ??= this.work().finally(() => (this.round = null));
    return this.round;
  }

  private async work(): Promise<void> {
    const held = await this.deps.lease.acquire();
    this.deps.metrics.maintenanceHolder(held);
    if (!held) return;
    try {
      await this.endIdleSessions();
      if (this.deps.config.messageRetentionMs !== null) await this.deleteExpiredMessages(this.deps.config.messageRetentionMs);
    } catch (err) {
      this.deps.logger.error({ err }, 'session maintenance failed; retrying next round');
    }
  }

  /** Sessions created before the cutoff with no message and no present participant who joined since. */
  private async endIdleSessions(): Promise<void> {
    const { Session } = this.deps.db.models;
    const { sequelize } = this.deps.db;
    const cutoff = new Date(Date.now() - this.deps.config.sessionIdleTimeoutMs);
    const candidates = await Session.findAll({
      attributes: ['id'],
      where: {
        is_active: true,
        created_at: { [Op.lt]: cutoff },
        [Op.and]: [literal(`NOT EXISTS (SELECT 1 FROM messages m WHERE m.session_id = "Session"."id" AND m.timestamp >= ${sequelize.escape(cutoff)})`)],
      },
      limit: BATCH,
    });
    for (const { id } of candidates) {
      const present = await this.deps.presence.list(id);
      if (present.some((p) => Date.parse(p.joined_at) >= cutoff.getTime())) continue;
      await this.endIdle(id);
    }
  }

  private async endIdle(sessionId: string): Promise<void> {
    const endedAt = new Date();
    const [changed] = await this.deps.db.models.Session.update({ is_active: false, ended_at: endedAt }, { where: { id: sessionId, is_active: true } });
    if (changed !== 1) return;
    await this.deps.presence.clear(sessionId);
    this.deps.broadcaster.endSession(sessionId, { session_id: sessionId, ended_at: endedAt.toISOString(), reason: 'idle' });
    this.deps.metrics.sessionEndedIdle();
    this.deps.logger.info({ session_id: sessionId }, 'idle session ended');
  }

  private async deleteExpiredMessages(retentionMs: number): Promise<void> {
    const { Message, Session } = this.deps.db.models;
    const cutoff = new Date(Date.now() - retentionMs);
    for (;;) {
      const expired = await Message.findAll({
        attributes: ['id'],
        include: [{ model: Session, as: 'session', attributes: [], where: { is_active: false, ended_at: { [Op.lt]: cutoff } } }],
        limit: BATCH * 10,
      });
      if (expired.length === 0) return;
      const deleted = await Message.destroy({ where: { id: expired.map((m) => m.id) } });
      this.deps.metrics.messagesExpired(deleted);
      this.deps.logger.info({ deleted }, 'expired messages deleted');
      if (expired.length < BATCH * 10) return;
    }
  }
}
