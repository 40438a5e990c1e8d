/**
 * Sessions over months: a session with nobody connected and no new message for the idle
 * timeout ends by itself (`session_ended` with reason "idle"), and the messages of sessions
 * that ended longer ago than the retention are deleted. Anyone connected keeps a session
 * alive, however quiet: a table of people thinking is not an abandoned one.
 *
 * Every node runs the timer, but only the holder of the maintenance lease does the work,
 * so the cluster does each job once; ending a session is also a conditional update
 * (`WHERE is_active`), so even two holders in a hand-over could not end one twice.
 */
import type { Config } from '../../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Broadcaster } from './ports';
import type { MaintenanceStore } from '../storage/ports';
import type { Lease } from './maintenanceLease';
import type { Presence } from './presence/types';
import { Rounds } from './rounds';

export interface SessionLifecycleDeps {
  config: Config['lifecycle'];
  store: MaintenanceStore;
  presence: Presence;
  broadcaster: Broadcaster;
  lease: Lease;
  logger: Logger;
  metrics: Metrics;
  /** The time now, in ms (tests move it forward). */
  now?: () => number;
}

/** Bounded work per round, so one round never holds the database long. */
const BATCH = 500;

export class SessionLifecycle {
  private readonly rounds: Rounds;
  /**
   * When this holder last saw someone in each quiet session: the timeout runs from the moment
   * the last participant left, not from the last message. Entries go once older than the
   * timeout, so the map holds only quiet sessions that had someone within it.
   */
  private readonly lastOccupied = new Map<string, number>();

  constructor(private readonly deps: SessionLifecycleDeps) {
    this.rounds = new Rounds(deps.config.sweepIntervalMs, () => this.work());
  }

  start(): void {
    this.rounds.start();
  }

  async stop(): Promise<void> {
    await this.rounds.stop();
    await this.deps.lease.release();
    this.deps.metrics.maintenanceHolder(false);
  }

  /** One round now (the timer calls this; a round still running is not doubled). */
  runRound(): Promise<void> {
    return this.rounds.run();
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

  /** Sessions with no message since the cutoff, nobody connected, and nobody seen connected since the cutoff. */
  private async endIdleSessions(): Promise<void> {
    const now = (this.deps.now ?? Date.now)();
    const cutoff = now - this.deps.config.sessionIdleTimeoutMs;
    for (const [id, seen] of this.lastOccupied) if (seen < cutoff) this.lastOccupied.delete(id);
    for (const id of await this.deps.store.idleCandidates(new Date(cutoff), BATCH)) {
      if ((await this.deps.presence.count(id)) > 0) {
        this.lastOccupied.set(id, now);
        continue;
      }
      if (this.lastOccupied.has(id)) continue;
      await this.endIdle(id);
    }
  }

  private async endIdle(sessionId: string): Promise<void> {
    const endedAt = new Date();
    this.lastOccupied.delete(sessionId);
    if (!(await this.deps.store.endIfActive(sessionId, endedAt))) return;
    await this.deps.presence.clear(sessionId);
    this.deps.broadcaster.endSession(sessionId, { session_id: sessionId, ended_at: endedAt.toISOString(), reason: 'idle' });
    this.deps.metrics.sessionEndedIdle();
    this.deps.logger.info({ session_id: sessionId }, 'idle session ended');
  }

  private async deleteExpiredMessages(retentionMs: number): Promise<void> {
    const cutoff = new Date(Date.now() - retentionMs);
    for (;;) {
      const deleted = await this.deps.store.deleteExpiredMessages(cutoff, BATCH * 10);
      if (deleted === 0) return;
      this.deps.metrics.messagesExpired(deleted);
      this.deps.logger.info({ deleted }, 'expired messages deleted');
      if (deleted < BATCH * 10) return;
    }
  }
}
