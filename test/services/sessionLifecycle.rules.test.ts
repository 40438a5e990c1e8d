/**
 * The lifecycle's rules in milliseconds, on in-memory presence and a small in-memory
 * MaintenanceStore: who ends, who stays, who does the work.
 */
import bunyan from 'bunyan';
import { expect } from 'chai';
import type { ServerEventData } from '../../server/events';
import { Metrics } from '../../server/metrics';
import type { Broadcaster } from '../../server/services/ports';
import type { Lease } from '../../server/services/maintenanceLease';
import { MemoryPresence } from '../../server/services/presence/memory';
import { SessionLifecycle } from '../../server/services/sessionLifecycle';
import type { MaintenanceStore } from '../../server/storage/ports';

const MINUTE = 60_000;

/** Sessions as the store sees them: when each was last active (created or last message), and whether it ended. */
class FakeStore implements MaintenanceStore {
  readonly sessions = new Map<string, { lastActivity: number; active: boolean; endedAt: number | null; messages: number }>();

  idleCandidates(cutoff: Date, limit: number): Promise<string[]> {
    return Promise.resolve(
      [...this.sessions]
        .filter(([, s]) => s.active && s.lastActivity < cutoff.getTime())
        .map(([id]) => id)
        .slice(0, limit),
    );
  }

  endIfActive(id: string, endedAt: Date): Promise<boolean> {
    const s = this.sessions.get(id);
    if (!s?.active) return Promise.resolve(false);
    s.active = false;
    s.endedAt = endedAt.getTime();
    return Promise.resolve(true);
  }

  deleteExpiredMessages(cutoff: Date, limit: number): Promise<number> {
    let deleted = 0;
    for (const s of this.sessions.values()) {
      if (s.active || s.endedAt === null || s.endedAt >= cutoff.getTime()) continue;
      const n = Math.min(s.messages, limit - deleted);
      s.messages -= n;
      deleted += n;
    }
    return Promise.resolve(deleted);
  }
}

function setup(opts: { held?: boolean; retentionMs?: number | null; now?: () => number } = {}) {
  const store = new FakeStore();
  const presence = new MemoryPresence();
  const ended: Array<ServerEventData<'session_ended'> & { sessionId: string }> = [];
  const broadcaster = {
    toSession: () => undefined,
    endSession: (sessionId: string, data: ServerEventData<'session_ended'>) => ended.push({ sessionId, ...data }),
  } as unknown as Broadcaster;
  const lease: Lease = { acquire: () => Promise.resolve(opts.held ?? true), release: () => Promise.resolve() };
  const metrics = new Metrics();
  const lifecycle = new SessionLifecycle({
    config: { sessionIdleTimeoutMs: 10 * MINUTE, messageRetentionMs: opts.retentionMs ?? null, sweepIntervalMs: MINUTE },
    store,
    presence,
    broadcaster,
    lease,
    logger: bunyan.createLogger({ name: 'test', level: 'fatal' }),
    metrics,
    now: opts.now,
  });
  return { store, presence, ended, lifecycle };
}

describe('session lifecycle rules', () => {
  it('ends a session idle past the timeout once, with reason "idle", and leaves a recent one alone', async () => {
    const { store, ended, lifecycle } = setup();
    store.sessions.set('old', { lastActivity: Date.now() - 11 * MINUTE, active: true, endedAt: null, messages: 2 });
    store.sessions.set('recent', { lastActivity: Date.now() - 9 * MINUTE, active: true, endedAt: null, messages: 2 });
    await lifecycle.runRound();
    await lifecycle.runRound();
    expect(ended.map((e) => [e.sessionId, e.reason])).to.deep.equal([['old', 'idle']]);
    expect(store.sessions.get('recent')!.active).to.equal(true);
  });

  it('keeps a session in which someone present joined within the timeout', async () => {
    const { store, presence, ended, lifecycle } = setup();
    store.sessions.set('s', { lastActivity: Date.now() - 11 * MINUTE, active: true, endedAt: null, messages: 0 });
    await presence.admit('s', { id: 'late', name: 'Late', joined_at: new Date(Date.now() - MINUTE).toISOString() }, 'c1', 6);
    await lifecycle.runRound();
    expect(ended).to.deep.equal([]);
  });

  it('keeps a quiet session while anyone is connected, and ends it a full timeout after the last one left', async () => {
    let clock = Date.now();
    const { store, presence, ended, lifecycle } = setup({ now: () => clock });
    store.sessions.set('s', { lastActivity: clock - 11 * MINUTE, active: true, endedAt: null, messages: 0 });
    // Joined long ago and silent since (an open tab, people thinking): still a session.
    await presence.admit('s', { id: 'early', name: 'Early', joined_at: new Date(clock - 20 * MINUTE).toISOString() }, 'c1', 6);
    await lifecycle.runRound();
    clock += 30 * MINUTE;
    await lifecycle.runRound();
    expect(ended).to.deep.equal([]);

    await presence.release('s', 'early', 'c1');
    clock += 9 * MINUTE;
    await lifecycle.runRound();
    expect(ended, 'the timeout runs from the last departure').to.deep.equal([]);
    clock += 2 * MINUTE;
    await lifecycle.runRound();
    expect(ended.map((e) => [e.sessionId, e.reason])).to.deep.equal([['s', 'idle']]);
  });

  it('does nothing on a node that does not hold the lease', async () => {
    const { store, ended, lifecycle } = setup({ held: false, retentionMs: MINUTE });
    store.sessions.set('old', { lastActivity: 0, active: true, endedAt: null, messages: 1 });
    store.sessions.set('gone', { lastActivity: 0, active: false, endedAt: 0, messages: 3 });
    await lifecycle.runRound();
    expect(ended).to.deep.equal([]);
    expect(store.sessions.get('gone')!.messages).to.equal(3);
  });

  it('deletes the messages of sessions ended before the retention, and only those', async () => {
    const { store, lifecycle } = setup({ retentionMs: 60 * MINUTE });
    store.sessions.set('long-ago', { lastActivity: 0, active: false, endedAt: Date.now() - 61 * MINUTE, messages: 7 });
    store.sessions.set('just-now', { lastActivity: 0, active: false, endedAt: Date.now() - MINUTE, messages: 4 });
    await lifecycle.runRound();
    expect(store.sessions.get('long-ago')!.messages).to.equal(0);
    expect(store.sessions.get('just-now')!.messages).to.equal(4);
  });
});
