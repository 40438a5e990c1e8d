/**
 * The sweep of owed answers on the in-memory stores: a question owed by a node that is gone is
 * taken over and answered once; one owed by a live node is left to it; one whose session ended,
 * or that is too old, is given up and never answered; each counted on /metrics. The real
 * cluster (SIGKILL, SIGTERM, both transports) is in test/cluster/owedAnswers.test.ts.
 */
import { expect } from 'chai';
import type { ServerEventName } from '../../server/events';
import { createLogger } from '../../server/logger';
import { Metrics } from '../../server/metrics';
import type { Broadcaster } from '../../server/services/ports';
import { LocalLease } from '../../server/services/maintenanceLease';
import { OwedAnswers } from '../../server/services/owedAnswers';
import { createSpiritService } from '../../server/services/spirit';
import { SpiritAnswers } from '../../server/services/spiritAnswers';
import { memoryStores } from '../../server/storage/memory';
import { loadConfig } from '../../config';

const asker = { id: 'asker', name: 'Asker', joined_at: new Date().toISOString() };

function world(opts: { alive?: boolean; maxAgeMs?: number } = {}) {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'fatal', SPIRIT_ORACLE_DELAY_MS: '0', NODE_ID: 'node-b' });
  const logger = createLogger(config);
  const stores = memoryStores();
  const sent: Array<{ event: ServerEventName; data: any }> = [];
  const broadcaster: Broadcaster = { toSession: (_s, event, data) => void sent.push({ event, data }), endSession: () => undefined };
  const metrics = new Metrics();
  const answers = new SpiritAnswers({ nodeId: 'node-b', messages: stores.messages, spirit: createSpiritService(config.spirit, logger), broadcaster, logger, audioUrl: () => null });
  const sweep = new OwedAnswers({
    config: { intervalMs: 1000, maxAgeMs: opts.maxAgeMs ?? 600_000 },
    messages: stores.messages,
    sessions: stores.sessions,
    presence: { isNodeAlive: async () => opts.alive ?? false },
    answers,
    lease: new LocalLease(),
    logger,
    metrics,
  });
  const counted = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
  return { stores, sent, answers, sweep, counted };
}

describe('owed answers sweep', () => {
  it('takes over a question owed by a node that is gone and answers it once, after it', async () => {
    const { stores, sent, answers, sweep, counted } = world();
    const session = await stores.sessions.create({ name: 's', max_users: 6 });
    const q = await stores.messages.storeChat(session.id, asker, 'Is it you?', { owesAnswer: 'node-a' });
    await sweep.runRound();
    await answers.drain();
    await sweep.runRound();
    await answers.drain();
    const responses = sent.filter((s) => s.event === 'spirit_response').map((s) => s.data);
    expect(responses).to.have.length(1);
    expect(responses[0]).to.include({ in_reply_to: q.id, seq: q.seq + 1 });
    expect(await stores.messages.owed({ limit: 10 })).to.deep.equal([]);
    expect(await counted('seance_spirit_answers_taken_over_total')).to.equal(1);
  });

  it('leaves a question owed by a live node to it', async () => {
    const { stores, sent, sweep } = world({ alive: true });
    const session = await stores.sessions.create({ name: 's', max_users: 6 });
    await stores.messages.storeChat(session.id, asker, 'Still there?', { owesAnswer: 'node-a' });
    await sweep.runRound();
    expect(sent).to.deep.equal([]);
    expect((await stores.messages.owed({ limit: 10 })).map((q) => q.owner)).to.deep.equal(['node-a']);
  });

  it('gives up a question whose session ended, and one older than the bound: never answered', async () => {
    const ended = world();
    const session = await ended.stores.sessions.create({ name: 's', max_users: 6 });
    await ended.stores.messages.storeChat(session.id, asker, 'Too late?', { owesAnswer: 'node-a' });
    await ended.stores.sessions.end(session.id);
    await ended.sweep.runRound();

    const old = world({ maxAgeMs: 1 });
    const active = await old.stores.sessions.create({ name: 's', max_users: 6 });
    await old.stores.messages.storeChat(active.id, asker, 'Long ago?', { owesAnswer: 'node-a' });
    await new Promise((resolve) => setTimeout(resolve, 10));
    await old.sweep.runRound();

    for (const w of [ended, old]) {
      await w.answers.drain();
      expect(w.sent).to.deep.equal([]);
      expect(await w.stores.messages.owed({ limit: 10 })).to.deep.equal([]);
      expect(await w.counted('seance_spirit_answers_given_up_total')).to.equal(1);
    }
  });
});
